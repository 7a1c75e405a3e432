// Package demo runs mtconsole demo: the whole failback path on one host,
// as an unprivileged user, on loopback, in one directory: a process server
// serving file-backed source disks that a workload writes (with crash- and
// application-consistent tags), a configuration server (as cs init and cs
// serve make it) with the host registered, and an agent, from an
// agent.toml a user can run again, that resyncs each empty target and
// then replicates; the caller shows it (the console, or the status
// table).
//
// What it promises:
//
//   - Nothing outside the directory is written, and nothing listens
//     beyond 127.0.0.1; a temporary directory is removed at the end unless
//     Options.Keep (a given Options.Dir is kept).
//   - DIR/tags.sha256 lists every tag the master target took with the
//     SHA-256 of its source at that tag, as the tag is sent.
//   - At the end the demo exports each pair's latest tag through the
//     running agent, then stops the workload, drains the backlog, stops
//     the agent and the process server, and compares (SHA-256) each
//     target in Differential Sync with its source, and the last
//     Options.Verify tags of each pair with the source at that tag; a
//     pair rolled back from the console is compared with the source at
//     the tag it was rolled back to. Run fails when a comparison does.
package demo
