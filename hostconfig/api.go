package hostconfig

import "time"

// The configuration server's API: JSON over HTTPS, every request and every
// reply signed (sign.go). Paths and actions:
//
//	POST   /v1/login                   login           test connection; the reply proves the server knows the passphrase
//	PUT    /v1/hosts/{id}              register        register or update a host (HostInfo)
//	GET    /v1/hosts/{id}              get             read a host back (verify)
//	POST   /v1/hosts/{id}/heartbeat    heartbeat       the host is alive
//	DELETE /v1/hosts/{id}              unregister      forget the host
//	GET    /v1/hosts                   list            every host
//	GET    /v1/process-servers         process-servers the process servers and their data certificates
const (
	ActionLogin          = "login"
	ActionRegister       = "register"
	ActionGet            = "get"
	ActionHeartbeat      = "heartbeat"
	ActionUnregister     = "unregister"
	ActionList           = "list"
	ActionProcessServers = "process-servers"
)

// HeartbeatInterval is how often a master target tells the server it is
// alive (the original's RegisterHostInterval for an MT); LostAfter is the
// silence after which the server marks a host lost (the original's 900 s).
const (
	HeartbeatInterval = 180 * time.Second
	LostAfter         = 900 * time.Second
)

// Host states on the server.
const (
	StateRegistered = "registered"
	StateLost       = "lost"
)

// HostInfo is what a host registers.
type HostInfo struct {
	ID        string   `json:"id"`
	Hostname  string   `json:"hostname"`
	Addresses []string `json:"addresses,omitempty"`
	// NAT overrides: what the host asks to be known as instead.
	NATHostname string `json:"nat_hostname,omitempty"`
	NATIP       string `json:"nat_ip,omitempty"`
	Role        string `json:"role"`
	OS          string `json:"os,omitempty"`
	Version     string `json:"version,omitempty"`
	Disks       []Disk `json:"disks,omitempty"`
	// A process server's data address and certificate, for master
	// targets to dial and pin.
	DataAddr        string `json:"data_addr,omitempty"`
	DataFingerprint string `json:"data_fingerprint,omitempty"`
}

// Disk is one block device of a host.
type Disk struct {
	Name      string `json:"name"`
	SizeBytes int64  `json:"size_bytes"`
	Model     string `json:"model,omitempty"`
}

// Host is a registered host as the server keeps it.
type Host struct {
	HostInfo
	State         string    `json:"state"`
	RegisteredAt  time.Time `json:"registered_at"`
	LastHeartbeat time.Time `json:"last_heartbeat"`
	RemoteAddr    string    `json:"remote_addr,omitempty"`
}

// ProcessServer is an entry of the process-server list.
type ProcessServer struct {
	ID              string `json:"id"`
	Hostname        string `json:"hostname"`
	DataAddr        string `json:"data_addr"`
	DataFingerprint string `json:"data_fingerprint"`
	State           string `json:"state"`
}

// LoginReply is the answer to a login (test connection).
type LoginReply struct {
	Server  string    `json:"server"`
	Version string    `json:"version"`
	Time    time.Time `json:"time"`
	// Registered tells whether the host id of the request is known.
	Registered bool `json:"registered"`
}

// ErrorReply is the body of every error answer.
type ErrorReply struct {
	Code       string `json:"code"` // one of the Code constants
	Error      string `json:"error"`
	ServerTime int64  `json:"server_time,omitempty"` // Unix seconds, with CodeClockSkew
	RetryAfter int    `json:"retry_after,omitempty"` // seconds, with CodeRateLimited
}

// Error codes of ErrorReply.
const (
	CodeBadSignature = "bad_signature"
	CodeClockSkew    = "clock_skew"
	CodeReplay       = "replay"
	CodeRateLimited  = "rate_limited"
	CodeNotFound     = "not_found"
	CodeBadRequest   = "bad_request"
	CodeInternal     = "internal"
)
