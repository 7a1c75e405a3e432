package wire

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"time"
)

// ProtocolVersion is the protocol version this build speaks: what the
// messages of this package mean. It is negotiated in the handshake.
//
// Version 2 adds HashXXH3 (with Session.HashSeed) and the disks'
// application-consistent intervals in the DiskList (an optional trailer;
// a version 1 peer is sent the list without it); the rest is version 1.
const ProtocolVersion = 2

// MinProtocolVersion is the oldest version this build still speaks.
const MinProtocolVersion = 1

// Role is what a host does in replication. The values are the ones the
// installer's role menu shows.
type Role uint8

// Roles. The values are part of the protocol.
const (
	RoleProcessServer Role = 1 // serves source disks: sends
	RoleMasterTarget  Role = 2 // receives, journals and retains
)

func (r Role) known() bool { return r == RoleProcessServer || r == RoleMasterTarget }

func (r Role) String() string {
	switch r {
	case RoleProcessServer:
		return "process server"
	case RoleMasterTarget:
		return "master target"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// Key is the handshake key derived from the shared passphrase. It is a
// secret: it prints and logs as "REDACTED".
type Key [32]byte

// String, GoString, LogValue and Format keep the key out of logs and
// error messages, whatever the verb. Use k[:] for the bytes themselves.
func (Key) String() string               { return "REDACTED" }
func (Key) GoString() string             { return "wire.Key{REDACTED}" }
func (Key) LogValue() slog.Value         { return slog.StringValue("REDACTED") }
func (k Key) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, k.String()) }

// Key derivation parameters. Both hosts must use the same ones; they are
// part of the protocol.
const (
	// KeyIterations is the PBKDF2 iteration count: about 0.1 s on a
	// current core, so a guessed passphrase costs the guesser that much.
	KeyIterations = 600_000
	// KeySalt is the PBKDF2 salt. It is fixed (both hosts derive the key
	// alone) and names its use, so a key derived for the handshake is
	// never the key of another use of the same passphrase.
	KeySalt = "mtconsole wire v1 handshake key"
)

// DeriveKey derives the handshake key from the passphrase:
// PBKDF2-HMAC-SHA256(passphrase, KeySalt, KeyIterations, 32 bytes).
// Derive it once and keep the Key: it stands for the passphrase, and a
// host may store it (root-only) instead of the passphrase.
func DeriveKey(passphrase string) (Key, error) {
	if passphrase == "" {
		return Key{}, errors.New("wire: empty passphrase")
	}
	b, err := pbkdf2.Key(sha256.New, passphrase, []byte(KeySalt), KeyIterations, len(Key{}))
	if err != nil {
		return Key{}, fmt.Errorf("wire: derive key: %w", err)
	}
	return Key(b), nil
}

// Config is one side's part of a handshake.
type Config struct {
	// Key proves this side knows the passphrase (DeriveKey). Required.
	Key Key
	// Role is this side's role; the peer must have the other one.
	Role Role
	// HostID and HostName identify this host to the peer.
	HostID, HostName string
	// Versions are the protocol versions this side speaks; nil means
	// MinProtocolVersion to ProtocolVersion.
	Versions []uint16
	// ServerCert is the fingerprint of the TLS server's certificate, which
	// the proofs cover: a relay that terminates TLS with its own
	// certificate cannot pass them along. The TLS server sets it to its
	// own certificate's fingerprint (required when the connection is a
	// *tls.Conn); a TLS client ignores it and takes the certificate the
	// server presented. On a connection without TLS (tests) both sides
	// set the same value, or leave it zero.
	ServerCert Fingerprint
	// MaxPayload lowers the largest frame payload this side accepts
	// after the handshake (0: MaxPayload).
	MaxPayload int
	// ReuseBuffer makes Recv return messages whose byte slices (a Write's
	// or a ResyncData's uncompressed Data) are valid only until the next
	// Recv: see Decoder.SetReuseBuffer. Off, each message owns its data.
	ReuseBuffer bool
	// PayloadPool, if set (and ReuseBuffer is not), lends the memory of
	// large ResyncData payloads: the receiver gives it back with
	// ResyncData.Release (Decoder.SetPayloadPool).
	PayloadPool *PayloadPool
	// Disks are the disks a process server offers.
	Disks []Disk
	// Accept is the master target's choice: given the peer and its disk
	// list, the disks to pair and where each resumes. An error refuses
	// the connection (the peer gets ErrRefused and the error's text).
	// Required for a master target.
	Accept func(peer Peer, disks []Disk) ([]Pair, error)
	// Rand is the source of nonces; nil means crypto/rand. Tests only.
	Rand io.Reader
}

// Peer is the other side of a connection as it introduced itself. Its
// identity is proven only in that it knows the passphrase.
type Peer struct {
	Role     Role
	HostID   string
	HostName string
}

// Session is what a handshake established.
type Session struct {
	Version    uint16      // negotiated protocol version
	Peer       Peer        // the other side
	ServerCert Fingerprint // the TLS server certificate the proofs covered
	Disks      []Disk      // the process server's disk list
	Pairs      []Pair      // the disks the master target paired, with resume points
	// HashSeed seeds HashXXH3 (version 2 on): HMAC-SHA256(K, "mtconsole
	// wire v2 hash seed" ‖ T), first 8 bytes little-endian. Both sides
	// know it; nobody without the passphrase does, and it is new for each
	// connection.
	HashSeed uint64
}

func (cfg *Config) versions() []uint16 {
	if cfg.Versions == nil {
		return []uint16{MinProtocolVersion, ProtocolVersion}
	}
	vs := slices.Clone(cfg.Versions)
	slices.Sort(vs)
	return slices.Compact(vs)
}

func (cfg *Config) check() error {
	switch {
	case cfg.Key == Key{}:
		return errors.New("wire: handshake config: no key")
	case !cfg.Role.known():
		return fmt.Errorf("wire: handshake config: unknown role %d", cfg.Role)
	case cfg.Role == RoleMasterTarget && cfg.Accept == nil:
		return errors.New("wire: handshake config: a master target needs Accept")
	}
	if err := checkPeer(TypeHello, cfg.Role, cfg.versions(), cfg.HostID, cfg.HostName); err != nil {
		return fmt.Errorf("wire: handshake config: %w", err)
	}
	if cfg.Role == RoleProcessServer {
		if err := checkDisks(cfg.Disks); err != nil {
			return fmt.Errorf("wire: handshake config: %w", err)
		}
	}
	return nil
}

// Client runs the handshake on nc as the side that dialed (for a
// *tls.Conn, the TLS client) and returns the established Conn. On error
// the caller closes nc. The context bounds the whole handshake, including
// the TLS handshake.
func Client(ctx context.Context, nc net.Conn, cfg *Config) (*Conn, error) {
	return handshake(ctx, nc, cfg, true)
}

// Server runs the handshake on nc as the side that accepted it.
func Server(ctx context.Context, nc net.Conn, cfg *Config) (*Conn, error) {
	return handshake(ctx, nc, cfg, false)
}

// aLongTimeAgo is a deadline in the past: it makes blocked I/O return at
// once.
var aLongTimeAgo = time.Unix(1, 0)

func handshake(ctx context.Context, nc net.Conn, cfg *Config, client bool) (*Conn, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(aLongTimeAgo) })
	c, err := runHandshake(ctx, nc, cfg, client)
	if !stop() && err == nil {
		// The context ended as the handshake succeeded: the deadline is
		// in the past, or about to be, so the connection is no use.
		err = ctx.Err()
	}
	if err != nil {
		if cerr := ctxErr(ctx); cerr != nil && !errors.Is(err, cerr) {
			err = fmt.Errorf("%w (%w)", cerr, err)
		}
		return nil, wrap(err, "wire: handshake with %v", nc.RemoteAddr())
	}
	_ = nc.SetDeadline(time.Time{})
	return c, nil
}

// ctxErr is the context's error, or DeadlineExceeded once its deadline has
// passed even if its timer has not fired yet: the connection's deadline,
// set from it, may fire first.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

func runHandshake(ctx context.Context, nc net.Conn, cfg *Config, client bool) (*Conn, error) {
	fp := cfg.ServerCert
	if tc, ok := nc.(*tls.Conn); ok {
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, wrap(err, "tls")
		}
		st := tc.ConnectionState()
		if st.Version != tls.VersionTLS13 {
			return nil, fmt.Errorf("tls: version %s, TLS 1.3 required", tls.VersionName(st.Version))
		}
		if client {
			if len(st.PeerCertificates) == 0 {
				return nil, errors.New("tls: server presented no certificate")
			}
			fp = CertFingerprint(st.PeerCertificates[0].Raw)
		} else if fp.IsZero() {
			return nil, errors.New("config: ServerCert is required on a TLS server")
		}
	}
	c := newConn(nc, cfg.Role)
	c.dec.SetMaxPayload(handshakePayload)
	hs := &hsState{c: c, cfg: cfg, fp: fp}
	if err := hs.random(); err != nil {
		return nil, err
	}
	var err error
	if client {
		err = hs.client()
	} else {
		err = hs.server()
	}
	if err == nil {
		c.dec.SetMaxPayload(pairingPayload)
		err = hs.pair()
	}
	if err != nil {
		if ctxErr(ctx) == nil {
			c.tell(err)
		}
		return nil, err
	}
	c.dec.SetMaxPayload(cfg.MaxPayload)
	c.dec.SetReuseBuffer(cfg.ReuseBuffer)
	c.dec.SetPayloadPool(cfg.PayloadPool)
	c.start(hs.sess)
	return c, nil
}

// hsState is one handshake in progress.
type hsState struct {
	c     *Conn
	cfg   *Config
	fp    Fingerprint
	nonce [NonceSize]byte
	sess  Session
	// hello and welcome are the payloads as they crossed the wire: the
	// transcript covers them byte for byte.
	hello, welcome []byte
}

func (hs *hsState) random() error {
	r := hs.cfg.Rand
	if r == nil {
		r = rand.Reader
	}
	if _, err := io.ReadFull(r, hs.nonce[:]); err != nil {
		return fmt.Errorf("nonce: %w", err)
	}
	return nil
}

// send marshals and flushes one message, returning its payload.
func (hs *hsState) send(m Message) ([]byte, error) {
	p, err := Marshal(m)
	if err != nil {
		return nil, err
	}
	if err := hs.c.enc.WriteFrame(m.Type(), 0, p); err != nil {
		return nil, err
	}
	return p, hs.c.enc.Flush()
}

// expect reads the next frame, which must carry a message of type t (an
// Error from the peer is returned as the error), and returns it with its
// payload.
func (hs *hsState) expect(t Type) (Message, []byte, error) {
	f, err := hs.c.dec.ReadFrame()
	if err != nil {
		return nil, nil, err
	}
	m, err := DecodeMessage(f)
	if err != nil {
		return nil, nil, err
	}
	if e, ok := m.(*Error); ok {
		return nil, nil, e
	}
	if f.Type != t {
		return nil, nil, fmt.Errorf("%w: %v, expected %v", ErrUnexpected, f.Type, t)
	}
	return m, f.Payload, nil
}

func (hs *hsState) client() error {
	hello := &Hello{Versions: hs.cfg.versions(), Role: hs.cfg.Role, HostID: hs.cfg.HostID, HostName: hs.cfg.HostName, Nonce: hs.nonce}
	var err error
	if hs.hello, err = hs.send(hello); err != nil {
		return err
	}
	m, p, err := hs.expect(TypeWelcome)
	if err != nil {
		return err
	}
	w := m.(*Welcome)
	hs.welcome = p
	if w.Role == hs.cfg.Role {
		return fmt.Errorf("%w: both sides are a %v", ErrRole, w.Role)
	}
	if v, ok := highestCommon(hello.Versions, w.Versions); !ok || v != w.Version {
		return fmt.Errorf("%w: server chose version %d; this side offers %v, the server %v", ErrUnexpected, w.Version, hello.Versions, w.Versions)
	}
	hs.sess.Version = w.Version
	hs.sess.Peer = Peer{Role: w.Role, HostID: w.HostID, HostName: w.HostName}
	t := transcript(hs.hello, hs.welcome, hs.fp)
	hs.sess.HashSeed = hashSeed(&hs.cfg.Key, t)
	if _, err := hs.send(&Auth{Proof: proof(&hs.cfg.Key, labelClient, t)}); err != nil {
		return err
	}
	m, _, err = hs.expect(TypeAuth)
	if err != nil {
		return err
	}
	want := proof(&hs.cfg.Key, labelServer, t)
	if !hmac.Equal(m.(*Auth).Proof[:], want[:]) {
		return ErrAuth
	}
	return nil
}

func (hs *hsState) server() error {
	m, p, err := hs.expect(TypeHello)
	if err != nil {
		return err
	}
	h := m.(*Hello)
	hs.hello = p
	if h.Role == hs.cfg.Role {
		return fmt.Errorf("%w: both sides are a %v", ErrRole, h.Role)
	}
	mine := hs.cfg.versions()
	v, ok := highestCommon(mine, h.Versions)
	if !ok {
		return fmt.Errorf("%w: the client offers %v, the server %v", ErrNoCommonVersion, h.Versions, mine)
	}
	hs.sess.Version = v
	hs.sess.Peer = Peer{Role: h.Role, HostID: h.HostID, HostName: h.HostName}
	welcome := &Welcome{Version: v, Versions: mine, Role: hs.cfg.Role, HostID: hs.cfg.HostID, HostName: hs.cfg.HostName, Nonce: hs.nonce}
	if hs.welcome, err = hs.send(welcome); err != nil {
		return err
	}
	t := transcript(hs.hello, hs.welcome, hs.fp)
	hs.sess.HashSeed = hashSeed(&hs.cfg.Key, t)
	m, _, err = hs.expect(TypeAuth)
	if err != nil {
		return err
	}
	want := proof(&hs.cfg.Key, labelClient, t)
	if !hmac.Equal(m.(*Auth).Proof[:], want[:]) {
		return ErrAuth
	}
	_, err = hs.send(&Auth{Proof: proof(&hs.cfg.Key, labelServer, t)})
	return err
}

// pair exchanges the disk list and the pair acceptance, whichever side
// dialed: the process server offers, the master target accepts.
func (hs *hsState) pair() error {
	hs.sess.ServerCert = hs.fp
	if hs.cfg.Role == RoleProcessServer {
		hs.sess.Disks = slices.Clone(hs.cfg.Disks)
		dl := &DiskList{Disks: hs.sess.Disks}
		if hs.sess.Version < 2 {
			dl = dl.WithoutV2()
			hs.sess.Disks = dl.Disks
		}
		if _, err := hs.send(dl); err != nil {
			return err
		}
		m, _, err := hs.expect(TypePairAccept)
		if err != nil {
			return err
		}
		hs.sess.Pairs = m.(*PairAccept).Pairs
		return checkPaired(hs.sess.Disks, hs.sess.Pairs)
	}
	m, _, err := hs.expect(TypeDiskList)
	if err != nil {
		return err
	}
	hs.sess.Disks = m.(*DiskList).Disks
	pairs, err := hs.cfg.Accept(hs.sess.Peer, slices.Clone(hs.sess.Disks))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	if err := checkPairs(pairs); err != nil {
		return err
	}
	if err := checkPaired(hs.sess.Disks, pairs); err != nil {
		return err
	}
	hs.sess.Pairs = slices.Clone(pairs)
	_, err = hs.send(&PairAccept{Pairs: hs.sess.Pairs})
	return err
}

// checkPaired refuses a pair for a disk the list does not hold.
func checkPaired(disks []Disk, pairs []Pair) error {
	for _, p := range pairs {
		if !slices.ContainsFunc(disks, func(d Disk) bool { return d.ID == p.Disk }) {
			return fmt.Errorf("%w: pair for disk %d, which the disk list does not hold", ErrUnknownDisk, p.Disk)
		}
	}
	return nil
}

func highestCommon(a, b []uint16) (uint16, bool) {
	var best uint16
	for _, v := range a {
		if v > best && slices.Contains(b, v) {
			best = v
		}
	}
	return best, best != 0
}

// Transcript and proof labels. Distinct labels keep a server's proof from
// ever passing as a client's (a reflection attack).
const (
	labelTranscript = "mtconsole wire v1 transcript"
	labelClient     = "mtconsole wire v1 client proof"
	labelServer     = "mtconsole wire v1 server proof"
	labelHashSeed   = "mtconsole wire v2 hash seed"
)

// hashSeed is Session.HashSeed.
func hashSeed(k *Key, t [32]byte) uint64 {
	p := proof(k, labelHashSeed, t)
	return binary.LittleEndian.Uint64(p[:8])
}

// transcript hashes what both sides said: the Hello and Welcome payloads
// as they crossed the wire (both nonces, both roles, both hosts, the
// versions offered and the one chosen) and the TLS server certificate's
// fingerprint. Lengths prefix the payloads so no two transcripts encode
// alike.
func transcript(hello, welcome []byte, fp Fingerprint) [32]byte {
	h := sha256.New()
	h.Write([]byte(labelTranscript))
	var n [4]byte
	binary.LittleEndian.PutUint32(n[:], uint32(len(hello)))
	h.Write(n[:])
	h.Write(hello)
	binary.LittleEndian.PutUint32(n[:], uint32(len(welcome)))
	h.Write(n[:])
	h.Write(welcome)
	h.Write(fp[:])
	return [32]byte(h.Sum(nil))
}

// proof is HMAC-SHA256(key, label || transcript).
func proof(k *Key, label string, t [32]byte) [ProofSize]byte {
	m := hmac.New(sha256.New, k[:])
	m.Write([]byte(label))
	m.Write(t[:])
	return [ProofSize]byte(m.Sum(nil))
}
