// Package api is the agent's status API: HTTP+JSON on a unix socket, the
// server that serves a Backend and the client the CLI and the console use.
//
// Routes (errors are {"error": "...", "field": "..."} with 400 for bad
// input naming the field, 403 for a peer that may only look, 404 for an
// unknown pair or job, 409 for a conflict):
//
//	GET  /v1/status             Status
//	GET  /v1/events[?history=N] server-sent events (the N most recent first, of the
//	                            last 256 kept, then live): "event: <kind>\ndata: <json Event>\n\n",
//	                            a ": heartbeat" comment every 15 s; a job's events
//	                            (kinds job, progress) carry a typed JobEvent in "job"
//	POST /v1/tag                TagRequest → TagResult
//	POST /v1/pairs/{id}/pause   PauseRequest (optional) → PairStatus
//	POST /v1/pairs/{id}/resume  → PairStatus
//	GET  /v1/pairs/{id}/tags    []journal.Tag, oldest first
//	POST /v1/resolve            ResolveRequest → Resolution: where Recover would find the point
//	POST /v1/recover            RecoverRequest → Job (202)
//	GET  /v1/jobs/{id}          Job
//	POST /v1/views              ViewRequest → View (201): a point-in-time view served over NBD
//	GET  /v1/views              []View, the open views (also in Status.Views)
//	DELETE /v1/views/{id}       close a view (404 for an unknown one)
//
// The socket is 0600, or 0660 owned by a configured group, in a directory
// made 0755. The routes that change something (POST, but for /v1/resolve, which only looks) answer only root and
// the agent's own user (SO_PEERCRED): the group gets a read-only view. The server never deletes a socket another agent answers on,
// nor a path that is not a socket. Recovery runs in the agent as a job, so
// a client that goes away does not cut it in half; its progress is
// published on the event stream as typed JobEvents (Client.FollowJob
// follows one to its end); the events' Message is a line for the log,
// not a format to parse.
//
// Views (views.go) run in the agent: OpenView resolves the point as
// Recover does (a group's pairs to one point), refuses one outside a
// pair's retention window naming the nearest points kept, opens a
// recovery.View per pair while its applier is held (nothing staged), and
// serves them as one NBD server (replication/nbd), one export per pair
// named after it, on a unix socket in the runtime directory (SetViewDir;
// the daemon's is beside the API socket) or the address asked for. A
// writable view puts a recovery.Scratch over each disk, its overlay file
// in .views beside the pair's retention directory. A pair has one view at
// most; a rollback of a pair with a view open is refused, and a view of
// a pair being rolled back. CloseView, CloseViews (the agent stopping,
// the pair removed) disconnect the clients, remove the socket and the
// overlays, and say so on the event stream.
//
// Metrics (NewMetrics, then Serve on a TCP address, by convention port
// 9460; off unless the agent is given one) exposes in the Prometheus text
// format, named by Prometheus' conventions (testutil.GatherAndLint finds
// nothing): mtconsole_build_info; per pair the gauges
// mtconsole_pair_rpo_seconds, _backlog_bytes, _retention_used_bytes,
// _applied_sequence, _state{state} and _health{health} (one series per
// possible value, 0 or 1), mtconsole_retention_window_start_timestamp_seconds
// and mtconsole_resync_remaining_bytes; the counters
// mtconsole_pair_acks_total, _journaled_bytes_total, _applied_bytes_total
// and _retained_bytes_total; and the histogram
// mtconsole_fsync_duration_seconds{file}. README.md lists them.
//
// The agent's log lines are events too (kind "log", LogHandler), and
// its alert and state events are log lines too (EventSink). The
// event stream never slows the writer: each subscriber has a bounded
// buffer that drops its oldest events and then says how many it dropped.
package api
