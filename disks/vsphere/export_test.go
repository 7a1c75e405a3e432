package vsphere

// SetCrashAt makes Execute stop on the spot, as a kill would, where f
// says: at a step's "before" or "after" phase. Tests only.
func SetCrashAt(f func(kind, phase string) bool) { crashAt = f }

// ErrCrash is what a run stopped by SetCrashAt returns.
var ErrCrash = errCrash

// SetOnTask calls f once a step's vSphere task is under way. Tests only.
func SetOnTask(f func(kind string)) { onTask = f }
