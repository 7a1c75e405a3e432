package vsphere

// Status is the outcome of a Check. The values are the setup package's
// (pass, warn, fail, skip), so a caller that shows both kinds of checks
// converts one to the other unchanged; this package imports nothing
// above disks.
type Status string

// The statuses of a Check.
const (
	Pass Status = "pass"
	Warn Status = "warn" // works, but not as the guidance wants
	Fail Status = "fail" // must be fixed first
	Skip Status = "skip" // does not apply, or could not be decided
)

// GroupVSphere is the group of the checks this package makes.
const GroupVSphere = "vsphere"

// Check is one judged fact, with the fields (and JSON names) of the
// setup package's checks, so the setup wizard and `mtconsole check`
// show both alike.
type Check struct {
	ID     string `json:"id"` // e.g. "vm.memory"
	Group  string `json:"group"`
	Title  string `json:"title"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Failed reports whether any check failed.
func Failed(checks []Check) bool {
	for _, c := range checks {
		if c.Status == Fail {
			return true
		}
	}
	return false
}
