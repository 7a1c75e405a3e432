// Package wire is the replication protocol between a process server and a
// master target: frames, messages, the handshake and the TLS around them.
// It is the only code that touches bytes on the wire.
//
// It promises that nothing reaches its caller unchecked: a frame is
// returned only after its magic, version, length, checksums, padding and
// sequence pass; a message only after every length and range in it does;
// a Conn only after the peer proved it knows the passphrase. Whatever
// fails is reported with a sentinel error (errors.Is) and leaves the
// connection unusable; the caller closes it and changes no state. It never
// dials, listens, retries or stores replication state: the process server
// and the agent do, on top of it.
//
// # Frames
//
// A connection carries, in each direction, a stream of frames. All
// integers are little-endian. A frame is a 32-byte header, the payload, the
// payload's checksum and zero padding to a multiple of 8 bytes:
//
//	offset size field
//	 0     4    magic "MTWR" (4d 54 57 52)
//	 4     1    frame version, 1
//	 5     1    type (TypeHello … TypeError)
//	 6     2    flags, reserved: zero in version 1
//	 8     8    sequence: 1 for the first frame in this direction, then +1
//	16     4    disk id: 0 for the connection, else the disk the message is about
//	20     4    payload length n, at most MaxPayload (16 MiB) or lower if set
//	24     4    reserved: zero
//	28     4    header CRC-32C (Castagnoli) of bytes 0-27
//	32     n    payload
//	32+n   4    payload CRC-32C: crc32.Update(header CRC, Castagnoli, payload)
//	36+n   p    zero padding, p = (8 - (n+4) % 8) % 8
//
// The frame takes FrameSize(n) = 32 + align8(n+4) bytes. A decoder checks,
// in order: the magic (ErrMagic), the header CRC (ErrHeaderCRC), the
// version (ErrFrameVersion), the reserved bits (ErrMalformed), the type
// (ErrUnknownType), the length against its maximum (ErrTooLarge, before
// anything is allocated for the payload), the sequence (ErrSequence), then
// reads the payload and checks its CRC (ErrPayloadCRC) and the padding
// (ErrMalformed). Because the payload CRC continues the header's, a payload
// never passes behind another frame's header. A stream that ends between
// two frames is io.EOF; inside a frame, io.ErrUnexpectedEOF. Before the peer
// is authenticated a side accepts payloads of at most 8 KiB, so a stranger
// cannot make it allocate more; the disk list and the pair acceptance may
// take 1 MiB; after the handshake, Config.MaxPayload. A payload is fresh
// memory the message owns, unless the receiver asks otherwise: one buffer
// valid until the next frame (Config.ReuseBuffer), or, for ResyncData of
// 64 KiB and more, memory lent by a PayloadPool, its data aligned for
// direct I/O, which the receiver gives back with ResyncData.Release once
// nothing refers to it.
//
// Frame sequences are per connection and per direction, and strict: each
// frame is the previous plus one, so a lost, repeated or reordered frame
// stops the connection. Disk sequences are separate: they number the
// messages that change a disk (Write, Tag, ResyncData and ZeroRange share
// one sequence per disk) and they too run on by one, from the last durable
// sequence the master target gave for the pair in PairAccept. So the
// receiver can journal each message under its own sequence, and a lost one
// shows at once. A process server that no longer holds what follows that
// point resyncs, numbering from there all the same. State messages take no
// sequence. Conn enforces both kinds.
//
// # Messages
//
// Payload layouts (u8…u64 little-endian integers; i64 times are Unix
// nanoseconds, 0 for unknown; str is a u16 length and that many bytes of
// UTF-8, at most 1024 bytes for names and 4096 for messages; "res" bytes
// are zero):
//
//	Hello        role u8, n u8 (1-16), n × version u16 (ascending), nonce [32], host id str, host name str
//	Welcome      chosen version u16, then as Hello (the server's side)
//	Auth         proof [32]
//	DiskList     count u32, count × (id u32, block size u32, size u64, name str),
//	             then, from version 2 and only when one is not 0: count u32, count × app-consistent interval u32 (seconds, 0 none)
//	PairAccept   count u32, count × (disk u32, start u8, res [3], last durable seq u64)
//	ResyncData   seq u64, offset u64, length u32, codec u8, res [3], data
//	ZeroRange    seq u64, offset u64, length u64
//	HashRequest  algo u8, res [3], chunk size u32, offset u64, count u32, res [4]
//	HashResponse as HashRequest, then count × hash [32] (HashXXH3: [16])
//	State        state u8, res [7], seq u64, done u64, total u64
//	Write        seq u64, offset u64, source time i64, length u32, codec u8, res [3], data
//	Tag          seq u64, time i64, name str, app str, id str
//	Ack          durable seq u64, backlog bytes u64, free journal bytes u64
//	Credit       bytes u64 (1 to 2^40)
//	Heartbeat    time i64, count u32, count × (disk u32, latest seq u64)
//	Error        code u16, fatal u8 (0 or 1), message str
//	TagRequest   count u32, count × disk u32, name str, app str, id str
//
// The disk of ResyncData, ZeroRange, HashRequest, HashResponse, State,
// Write, Tag and Ack (and optionally Error) is the header's disk id. For
// Write and ResyncData, length is the uncompressed length of the data and
// codec is CompressNone, CompressZstd or CompressS2 (klauspost/compress);
// compressed data must decompress to exactly length bytes, and never
// produces more (a decompression bomb fails with ErrDecompress). Data that
// does not shrink is sent uncompressed. Hashes are SHA-256 or
// BLAKE2b-256 of each chunk of the target, the last one possibly short,
// or (protocol version 2 on) HashXXH3: the 128-bit XXH3 seeded with the
// connection's Session.HashSeed, 16 bytes a chunk. Conn refuses HashXXH3
// on a version 1 connection (ErrMalformed).
//
// # Versions
//
// Version 1 is the protocol above without HashXXH3 and without the disk
// list's app-consistent intervals. Version 2 adds both: HashXXH3 with
// the hash seed HMAC-SHA256(K, "mtconsole wire v2 hash seed" ‖ T), its
// first 8 bytes little-endian (K and T as in the handshake), so the seed
// is new for each connection and unknown without the passphrase; and the
// DiskList's trailer of intervals. A build offers both versions; a peer
// that offers only 1 gets 1: the process server then asks for SHA-256
// and sends the disk list without the trailer.
//
// # Handshake
//
// The master target dials the process server (in failback, the process
// server has the public address), so the TLS client is normally the master
// target; the protocol does not depend on it. Over TLS 1.3 (ALPN
// "mtconsole-wire/1"):
//
//	client → server  Hello    versions, role, host, nonce Nc (32 random bytes)
//	server → client  Welcome  highest common version, versions, role, host, nonce Ns
//	client → server  Auth     HMAC-SHA256(K, "mtconsole wire v1 client proof" ‖ T)
//	server → client  Auth     HMAC-SHA256(K, "mtconsole wire v1 server proof" ‖ T)
//	ps → mt          DiskList the process server's disks
//	mt → ps          PairAccept  the disks paired, each with its last durable
//	                          sequence and how to start (stream, full or hash resync)
//
// A master target may send PairAccept again once the handshake is done,
// for disks of the list it did not pair then (a pair added to a running
// master target): each is paired from that point, the others go on
// untouched. A disk already paired on the connection, ended ones
// included, is refused (ErrMalformed): it is paired again on a new one.
//
// K = PBKDF2-HMAC-SHA256(passphrase, "mtconsole wire v1 handshake key",
// 600000 iterations, 32 bytes), see DeriveKey. T = SHA-256("mtconsole wire v1
// transcript" ‖ u32 len ‖ Hello payload ‖ u32 len ‖ Welcome payload ‖
// SHA-256 of the TLS server certificate): the proofs bind both nonces,
// both roles, both hosts, the offered and chosen versions and the
// certificate, so a recorded proof fails against any fresh nonce (no
// replay) and a relay that terminates TLS with another certificate cannot
// forward the proofs. The client proves first, so only a server the client
// already pinned sees a proof it could attack offline. A failed proof is
// ErrAuth on both sides (the side that detects it sends Error CodeAuth) and
// neither side learns which passphrase was wrong. No common version is
// ErrNoCommonVersion, two hosts of one role ErrRole, a refused pairing
// ErrRefused.
//
// # Streaming
//
// After the handshake the process server sends ResyncData, ZeroRange and
// HashRequest during resync (State marks Resync Step I, Step II and
// Differential Sync), then Write and Tag; the master target answers
// HashRequest with HashResponse, in the order asked (a hash resync keeps
// several requests in flight), acknowledges each disk cumulatively with
// Ack once its journal holds the messages durably, and grants Credit as
// its journal and buffers drain (Window, Cost: only data costs credit).
// Both send Heartbeat (the process server's clock gives the master target
// its RPO) and Error (fatal ends the connection; non-fatal is about one
// disk or request). A master target whose pair of a disk ends (a rollback)
// sends a non-fatal Error CodeEnded for that disk: the process server stops
// sending it and the other disks stream on, undisturbed; messages of the
// disk already on their way are dropped (their data still earns credit).
// A tag an admin takes on the master target travels as
// TagRequest: the process server places it in each disk's write order and
// it comes back as Tag, so the master target never numbers a sequence of
// its own.
//
// Conn enforces this on both sides: each type flows one way only, every
// disk named is paired, no range runs past the end of its disk (ErrOutOfRange),
// disk sequences run on by one from the resume point, acknowledgements never go backwards nor past what was sent, and
// the handshake messages never come again. A Conn is used like this (the
// master target's side; the process server's is the mirror image):
//
//	nc, _ := dialer.DialContext(ctx, "tcp", addr)
//	c, err := wire.Client(ctx, tls.Client(nc, wire.ClientTLSConfig(addr, store, ask)), &wire.Config{
//		Key: key, Role: wire.RoleMasterTarget, HostID: id, HostName: name,
//		Accept: func(p wire.Peer, ds []wire.Disk) ([]wire.Pair, error) { ... },
//	})
//	for {
//		m, err := c.Recv()
//		if err != nil {
//			return c.Abort(err) // tells the peer why, closes
//		}
//		switch m := m.(type) {
//		case *wire.Write: // journal m, then, once durable: c.Send(&wire.Ack{...})
//		...
//		}
//	}
//
// # Fuzzing
//
// FuzzDecodeFrame, FuzzHandshake and FuzzHandshakeClient start from the
// seeds in testdata/fuzz (rewritten by go test -run TestSeedCorpus -update).
// The handshake seeds were recorded with fixed nonces, so they get past the
// proofs into the streaming checks. Run them with a short minimization,
// which the coverage snapshots of a large binary make slow:
//
//	go test -run '^$' -fuzz '^FuzzDecodeFrame$' -fuzzminimizetime 5s ./replication/wire/
//
// # Certificates
//
// The process server makes a self-signed ECDSA P-256 certificate once
// (LoadOrCreateCertificate). The master target trusts it on first use,
// as ssh does: ClientTLSConfig checks no CA but the TrustStore, asks a
// ConfirmFunc the first time (showing the fingerprint, SHA256:<base64>)
// and refuses a changed certificate with a CertChangedError that shows
// the pinned and the presented fingerprints.
package wire
