package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/recovery"
	"github.com/mtconsole/mtconsole/replication/writer"
)

// Event kinds the API adds to the writer's (writer.EventState, ...).
const (
	EventProgress = "progress" // a job's progress: Event.Job says how far
	EventJob      = "job"      // a job started or ended: Event.Job says which and how
	EventDropped  = "dropped"  // this subscriber was too slow: "dropped N events"
)

// Event is one event of the stream: a writer.Event, and for the job
// kinds (EventJob, EventProgress) the typed JobEvent. Its Message is a
// line for the log, read by people: programs follow Job (or FollowJob).
type Event struct {
	writer.Event
	Job *JobEvent `json:"job,omitempty"`
}

// JobEvent is a step of a recovery job, as the event stream carries it.
type JobEvent struct {
	ID   string `json:"id"`
	Kind string `json:"kind"` // JobStarted, JobProgress, or the state it ended in: JobDone, JobFailed, JobInterrupted
	// Mode, Point and Pairs say what the job does (on JobStarted).
	Mode  string   `json:"mode,omitempty"`
	Point string   `json:"point,omitempty"`
	Pairs []string `json:"pairs,omitempty"`
	// Pair is the pair being recovered (JobProgress).
	Pair string `json:"pair,omitempty"`
	// Done and Total are the bytes of the whole job.
	Done  int64  `json:"done"`
	Total int64  `json:"total"`
	Err   string `json:"error,omitempty"` // JobFailed, JobInterrupted
}

// Job event kinds besides the end states.
const (
	JobStarted  = "started"
	JobProgress = "progress"
)

// Ended reports whether e is a job's last event.
func (e JobEvent) Ended() bool { return e.Kind != JobStarted && e.Kind != JobProgress }

// Recovery modes.
const (
	ModeRollback = "rollback"
	ModeExport   = "export"
)

// Job states.
const (
	JobRunning = "running"
	JobDone    = "done"
	JobFailed  = "failed"
	// JobInterrupted is a job the agent was running when it stopped
	// (killed, crashed): found so by the next agent.
	JobInterrupted = "interrupted"
)

// Errors the server maps to status codes and the client maps back.
var (
	ErrUnknownPair = errors.New("no such pair")     // 404
	ErrUnknownJob  = errors.New("no such job")      // 404
	ErrConflict    = errors.New("conflict")         // 409
	ErrNoAgent     = errors.New("no agent answers") // the socket does not answer
	ErrBadInput    = errors.New("bad input")        // 400, see FieldError
	// ErrReload is a reload the agent refused (ReloadResult.Error): the
	// file has an error, nothing changed.
	ErrReload = errors.New("reload refused, the running configuration stays")
)

// FieldError is bad input: Field names the JSON field (or path part) at fault.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Is makes every FieldError an ErrBadInput.
func (e *FieldError) Is(target error) bool { return target == ErrBadInput }

func badField(field, format string, a ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, a...)}
}

// HostInfo says which agent answers.
type HostInfo struct {
	Host    string    `json:"host"`
	Version string    `json:"agent_version"`
	Started time.Time `json:"started"`
}

// Status is GET /v1/status.
type Status struct {
	HostInfo
	UptimeSeconds float64      `json:"uptime_seconds"`
	Pairs         []PairStatus `json:"pairs"`
	// CS is the host's registration with a configuration server; absent
	// when the agent runs no heartbeats (the host is not registered).
	CS *CSStatus `json:"cs,omitempty"`
	// Views are the point-in-time views open (mtconsole view).
	Views []View `json:"views"`
}

// CSStatus is the agent's view of this host's registration with the
// configuration server, from its heartbeats.
type CSStatus struct {
	Server string `json:"server"`  // host:port of the configuration server
	HostID string `json:"host_id"` // the host's id there
	// OK tells whether the last heartbeat was accepted.
	OK bool `json:"ok"`
	// LastHeartbeat is the last heartbeat the server accepted.
	LastHeartbeat time.Time `json:"last_heartbeat,omitzero"`
	// LastAttempt is the last heartbeat sent, accepted or not.
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	// Problem names what failed in a few words ("unreachable", "passphrase
	// rejected", "clock skew", ...) and Error says it in full, with what to
	// do; FailingSince is the first failure of the current run of them.
	Problem      string    `json:"problem,omitempty"`
	Error        string    `json:"error,omitempty"`
	FailingSince time.Time `json:"failing_since,omitzero"`
}

// PairStatus is the writer's snapshot of a pair plus what the network
// layer knows: the replication state (Queued, Resync Step I, Resync Step II,
// Differential Sync) and resync progress. Both are absent when no network
// layer fills them.
type PairStatus struct {
	writer.PairStatus
	// Group is the protected machine the pair belongs to (a pair in no
	// [[group]] is a group of its own, named by its id); absent when no
	// network layer fills it.
	Group  string          `json:"group,omitempty"`
	State  string          `json:"state,omitempty"`
	Resync *ResyncProgress `json:"resync,omitempty"`
	// AppConsistentSeconds is the source's application-consistent tag
	// interval as the process server reports it (0: none reported);
	// absent while the agent has no connection to the process server.
	AppConsistentSeconds *float64 `json:"app_consistent_interval_seconds,omitempty"`
}

// ResyncProgress is how far a resync has come.
type ResyncProgress struct {
	Step       string  `json:"step"`
	DoneBytes  int64   `json:"done_bytes"`
	TotalBytes int64   `json:"total_bytes"`
	ETASeconds float64 `json:"eta_seconds,omitempty"`
}

// TagRequest is POST /v1/tag. No pairs means every pair.
type TagRequest struct {
	Name  string   `json:"name"`
	App   string   `json:"app,omitempty"` // default USERDEFINED
	Pairs []string `json:"pairs,omitempty"`
}

// TagResult says where the tag was journaled in each pair.
type TagResult struct {
	Name  string            `json:"name"`
	App   string            `json:"app"`
	ID    string            `json:"id"`
	Time  time.Time         `json:"time"`
	Pairs map[string]uint64 `json:"pairs"` // pair → sequence of the tag
}

// PauseRequest is the optional body of POST /v1/pairs/{id}/pause.
type PauseRequest struct {
	Reason string `json:"reason,omitempty"`
}

// RecoverRequest is POST /v1/recover. No pairs means every pair. For an
// export of one pair Dest is the new image file; of several, a directory
// that gets one <pair>.img each.
type RecoverRequest struct {
	Point string   `json:"point"` // as recovery.ParsePoint reads it
	Mode  string   `json:"mode"`  // rollback or export
	Dest  string   `json:"dest,omitempty"`
	Pairs []string `json:"pairs,omitempty"`
	// Group names a protected machine instead of Pairs: its pairs,
	// recovered to one point common to all its disks.
	Group string `json:"group,omitempty"`
}

// ResolveRequest is POST /v1/resolve. No pairs means every pair; Group,
// instead of Pairs, means a protected machine's pairs.
type ResolveRequest struct {
	Point string   `json:"point"` // as recovery.ParsePoint reads it
	Pairs []string `json:"pairs,omitempty"`
	Group string   `json:"group,omitempty"`
}

// ReloadRequest is the optional body of POST /v1/reload.
type ReloadRequest struct {
	// Purge removes the journal and retention directories of the pairs
	// the reload stops, once each has stopped (unprotect
	// --purge-retention); the targets are never touched.
	Purge bool `json:"purge,omitempty"`
}

// ReloadResult is what a reload of the agent's configuration file did
// (POST /v1/reload, and SIGHUP's log): the file is read again; settings
// applied at once are named in Applied, pairs started and stopped by id,
// changes that take effect only when the agent restarts in Restart (as
// the file spells them). A file with an error changes nothing: Error says
// why, with the file and line.
type ReloadResult struct {
	Applied []string `json:"applied"`
	Started []string `json:"started"`
	Stopped []string `json:"stopped"`
	Restart []string `json:"restart"`
	Error   string   `json:"error,omitempty"`
}

// Resolution is where a point lies in each pair: what a recovery of
// those pairs to that point, started now, recovers (Job.Points).
type Resolution struct {
	Point  string                       `json:"point"` // as the agent reads it
	Points map[string]recovery.Resolved `json:"points"`
}

// Job is a recovery running, or run, in the agent.
type Job struct {
	ID         string                       `json:"id"`
	Mode       string                       `json:"mode"`
	Point      string                       `json:"point"`
	Pairs      []string                     `json:"pairs"`
	Dest       string                       `json:"dest,omitempty"`
	State      string                       `json:"state"`
	Error      string                       `json:"error,omitempty"`
	DoneBytes  int64                        `json:"done_bytes"`
	TotalBytes int64                        `json:"total_bytes"`
	Started    time.Time                    `json:"started"`
	Finished   time.Time                    `json:"finished,omitzero"`
	Points     map[string]recovery.Resolved `json:"points"`
	Results    map[string]recovery.Result   `json:"results,omitempty"`
}

// Backend is what the server serves: an agent's pairs.
type Backend interface {
	Status() (Status, error)
	// Subscribe returns the event stream until ctx ends; it never blocks
	// the publisher.
	// history asks for that many recent events first.
	Subscribe(ctx context.Context, history int) <-chan Event
	Tag(req TagRequest) (TagResult, error)
	Pause(pair, reason string) (PairStatus, error)
	Resume(pair string) (PairStatus, error)
	// Resolve finds a point in pairs as Recover would, recovering nothing.
	Resolve(req ResolveRequest) (Resolution, error)
	// Recover validates req, starts the job and returns at once.
	Recover(req RecoverRequest) (Job, error)
	Job(id string) (Job, error)
	// Jobs lists the jobs known, oldest first.
	Jobs() ([]Job, error)
	// Tags lists a pair's tags in the retention store, oldest first.
	Tags(pair string) ([]journal.Tag, error)
}
