package hostconfig

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/mtconsole/mtconsole/replication/wire"
)

// Headers of a signed request and its reply.
const (
	HeaderHost           = "X-Mtconsole-Host"   // the host id (may be empty for login)
	HeaderAction         = "X-Mtconsole-Action" // what the request does: login, register, ...
	HeaderNonce          = "X-Mtconsole-Nonce"  // 32 hex digits, fresh for every request
	HeaderTime           = "X-Mtconsole-Time"   // Unix seconds of the signer's clock
	HeaderSignature      = "X-Mtconsole-Signature"
	HeaderReplySignature = "X-Mtconsole-Reply-Signature"
)

// ReplayWindow is how far a request's time may differ from the server's
// clock; nonces are remembered at least twice as long, so a request can
// never be replayed: it is either too old or its nonce is known.
const ReplayWindow = 5 * time.Minute

// Request is what a request's signature covers.
type Request struct {
	Method, Path, Action, Host, Nonce string
	Time                              time.Time
	// Cert is the fingerprint of the TLS certificate the client saw (or
	// the server holds); zero over plain HTTP.
	Cert     wire.Fingerprint
	BodyHash [sha256.Size]byte
}

func certField(fp wire.Fingerprint) string {
	if fp.IsZero() {
		return "-"
	}
	return hex.EncodeToString(fp[:])
}

func (r Request) canonical() string {
	return strings.Join([]string{"mtconsole-cs-v1 request", r.Method, r.Path, r.Action, r.Host, r.Nonce,
		strconv.FormatInt(r.Time.Unix(), 10), certField(r.Cert), hex.EncodeToString(r.BodyHash[:])}, "\n")
}

// Sign is the request's signature: lower-case hex of
// HMAC-SHA256(key, canonical form). The canonical form is the fields
// above, one a line, after the line "mtconsole-cs-v1 request"; the time is
// Unix seconds, the certificate and body hash hex ("-" for no
// certificate).
func (r Request) Sign(k SigningKey) string { return mac(k, r.canonical()) }

// Reply is what a reply's signature covers: the request's signature (so a
// reply answers exactly one request), the status, the server's clock, the
// certificate the server holds and the body's hash.
type Reply struct {
	RequestSignature string
	Status           int
	Time             time.Time
	Cert             wire.Fingerprint
	BodyHash         [sha256.Size]byte
}

// Sign is the reply's signature, made as Request.Sign under the line
// "mtconsole-cs-v1 reply".
func (r Reply) Sign(k SigningKey) string {
	return mac(k, strings.Join([]string{"mtconsole-cs-v1 reply", r.RequestSignature, strconv.Itoa(r.Status),
		strconv.FormatInt(r.Time.Unix(), 10), certField(r.Cert), hex.EncodeToString(r.BodyHash[:])}, "\n"))
}

func mac(k SigningKey, s string) string {
	m := hmac.New(sha256.New, k[:])
	m.Write([]byte(s))
	return hex.EncodeToString(m.Sum(nil))
}

// SignatureEqual compares two hex signatures in constant time, ignoring
// case.
func SignatureEqual(a, b string) bool {
	return hmac.Equal([]byte(strings.ToLower(a)), []byte(strings.ToLower(b)))
}

// NewNonce is 16 random bytes in hex.
func NewNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ValidNonce reports whether s looks like a nonce of NewNonce.
func ValidNonce(s string) bool {
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
