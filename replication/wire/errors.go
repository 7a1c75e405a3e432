package wire

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every failure the package detects wraps one of them, so
// callers act with errors.Is and users read the wrapping context. Any error
// from a Decoder, an Encoder or a Conn leaves that object unusable: the
// connection must be closed, and nothing the bad frame carried was
// returned.
var (
	// ErrMagic is a frame that does not start with the magic: the peer
	// speaks another protocol, or the stream lost its framing.
	ErrMagic = errors.New("bad frame magic")
	// ErrFrameVersion is a frame whose header version this build does not
	// know.
	ErrFrameVersion = errors.New("unsupported frame version")
	// ErrHeaderCRC is a frame header that fails its CRC-32C.
	ErrHeaderCRC = errors.New("frame header checksum mismatch")
	// ErrPayloadCRC is a frame payload that fails its CRC-32C.
	ErrPayloadCRC = errors.New("frame payload checksum mismatch")
	// ErrTooLarge is a frame whose payload length exceeds the maximum.
	// A Decoder reports it before allocating anything for the payload.
	ErrTooLarge = errors.New("frame too large")
	// ErrUnknownType is a frame or message type this build does not know.
	ErrUnknownType = errors.New("unknown frame type")
	// ErrSequence is a frame or disk sequence out of order: a frame
	// sequence that is not the previous one plus one, a disk sequence that
	// does not increase, or an acknowledgement of something never sent.
	ErrSequence = errors.New("sequence out of order")
	// ErrMalformed is a frame or payload that passes its checksums but
	// breaks a rule of the format: nonzero reserved bits or padding, a
	// length that does not match, a string that is not UTF-8, a value out
	// of range.
	ErrMalformed = errors.New("malformed message")
	// ErrDecompress is a compressed payload that does not decompress to
	// exactly its declared length (corrupt data, or a decompression bomb).
	ErrDecompress = errors.New("bad compressed data")
	// ErrUnexpected is a valid message that the protocol does not allow
	// here: at this step of the handshake, in this direction, or after the
	// handshake.
	ErrUnexpected = errors.New("unexpected message")
	// ErrUnknownDisk is a message about a disk that is not paired on this
	// connection.
	ErrUnknownDisk = errors.New("disk not paired on this connection")
	// ErrOutOfRange is a write, a resync range or a hash request beyond
	// the end of its disk (the size in the disk list).
	ErrOutOfRange = errors.New("range beyond the end of the disk")

	// ErrAuth is a failed proof of the shared key: the passphrases of the
	// two hosts differ, or something between them altered or replayed the
	// handshake. Both sides report it and neither learns more.
	ErrAuth = errors.New("authentication failed (the passphrases differ, or the handshake was tampered with)")
	// ErrNoCommonVersion is a handshake where the two sides share no
	// protocol version.
	ErrNoCommonVersion = errors.New("no protocol version in common")
	// ErrRole is a handshake between two hosts of the same role, or a peer
	// whose role this side does not serve.
	ErrRole = errors.New("peer has the wrong role")
	// ErrRefused is a pairing refused: by this side's Accept, or by the
	// peer (its Error message says why).
	ErrRefused = errors.New("pairing refused")
	// ErrPeer matches every *Error: an error the peer reported.
	ErrPeer = errors.New("error from peer")
	// ErrClosed is an operation on a closed Conn.
	ErrClosed = errors.New("connection closed")

	// ErrCertChanged is a server certificate that differs from the one
	// pinned for its address. The error is a *CertChangedError that
	// shows both fingerprints.
	ErrCertChanged = errors.New("server certificate changed")
	// ErrUntrusted is a server certificate seen for the first time that
	// the confirmation callback declined (or there was no callback).
	ErrUntrusted = errors.New("server certificate not trusted")
	// ErrTrustFile is a trust file that cannot be used: unreadable,
	// malformed, or writable by others.
	ErrTrustFile = errors.New("bad trust file")
)

// wrap adds context to err. The package's errors start with "wire: "; the
// context does too, so wrap drops err's own, and a chain reads
// "wire: handshake with 10.0.0.5:9443: frame 2: hello: malformed message: ...".
// An err that already starts with the context (crypto/tls's errors start
// with "tls: ") is not given it twice.
func wrap(err error, format string, args ...any) error {
	return &wrapped{ctx: fmt.Sprintf(format, args...), err: err}
}

type wrapped struct {
	ctx string
	err error
}

func (w *wrapped) Error() string {
	msg := strings.TrimPrefix(w.err.Error(), "wire: ")
	if strings.HasPrefix(msg, w.ctx+": ") {
		return msg
	}
	return w.ctx + ": " + msg
}
func (w *wrapped) Unwrap() error { return w.err }
