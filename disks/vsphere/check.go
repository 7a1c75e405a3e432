package vsphere

import "github.com/mtconsole/mtconsole/setup"

// Status of a Check: the setup package's.
const (
	Pass = setup.Pass
	Warn = setup.Warn
	Fail = setup.Fail
	Skip = setup.Skip
)

// GroupVSphere is the group of the checks this package makes.
const GroupVSphere = "vsphere"

// Check is one judged fact, the same value the setup package's checks
// are, so the setup wizard and `mtconsole check` show both alike.
type Check = setup.Check

// Failed reports whether any check failed.
func Failed(checks []Check) bool {
	for _, c := range checks {
		if c.Status == Fail {
			return true
		}
	}
	return false
}
