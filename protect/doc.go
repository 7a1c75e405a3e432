// Package protect turns a process server's disks into protected pairs of
// this master target without editing a file by hand: the library behind
// `mtconsole protect`, `mtconsole protection list` and the console's
// Protect screen.
//
// The flow is Discover, Plan, Apply:
//
//   - Discover connects to a process server with the agent's own handshake
//     and certificate pinning (the agent's trust store; a first-seen
//     certificate goes to a confirmation callback with its fingerprint, a
//     changed one is refused showing both), reads the disks it serves and
//     its host name, and leaves without pairing anything.
//   - Plan checks a request (a group, a map from source disks to local
//     targets, a policy) against the process server's disks, the current
//     agent.toml and the target rules, and returns the new agent.toml text:
//     the existing file kept byte for byte, comments included, with one
//     [[group]] and its [[pair]] tables appended (or a complete file on a
//     host that has none). A plan that would not pass agent.LoadConfig is
//     refused. Every refusal is named (RefusedError, errors.Is with the
//     Err* sentinels) and Plan writes nothing.
//   - Apply writes the planned file atomically (temporary file, fsync,
//     rename), keeping the previous file as agent.toml.bak, with the old
//     file's mode (0600 for a new file), after checking that the file did
//     not change since the plan; then it asks the running agent to reload.
//     No agent answering is not a failure: the agent picks the file up
//     when it starts.
//
// The package never touches a target disk, never removes or rewrites an
// existing pair or group, and never writes anything but agent.toml, its
// .bak and (when a first-seen certificate is confirmed, outside a dry
// run) the agent's trust store.
package protect
