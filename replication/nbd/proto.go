package nbd

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Handshake magics and flags (doc/proto.md of the NBD project).
const (
	nbdMagic   = 0x4e42444d41474943 // "NBDMAGIC"
	optMagic   = 0x49484156454f5054 // "IHAVEOPT"
	replyMagic = 0x3e889045565a9    // option reply

	flagFixedNewstyle = 1 << 0
	flagNoZeroes      = 1 << 1

	clientFixedNewstyle = 1 << 0
	clientNoZeroes      = 1 << 1
)

// Options.
const (
	OptExportName      = 1
	OptAbort           = 2
	OptList            = 3
	OptStartTLS        = 5
	OptInfo            = 6
	OptGo              = 7
	OptStructuredReply = 8
)

// Option replies.
const (
	repAck           = 1
	repServer        = 2
	repInfo          = 3
	repErr           = 1 << 31
	repErrUnsup      = repErr | 1
	repErrPolicy     = repErr | 2
	repErrInvalid    = repErr | 3
	repErrUnknown    = repErr | 6
	repErrTooBig     = repErr | 9
	infoExport       = 0
	infoName         = 1
	infoDescription  = 2
	infoBlockSize    = 3
	transHasFlags    = 1 << 0
	transReadOnly    = 1 << 1
	transSendFlush   = 1 << 2
	transSendFUA     = 1 << 3
	transSendTrim    = 1 << 5
	transSendWZeroes = 1 << 6
	transMultiConn   = 1 << 8
)

// Commands.
const (
	CmdRead        = 0
	CmdWrite       = 1
	CmdDisc        = 2
	CmdFlush       = 3
	CmdTrim        = 4
	CmdCache       = 5
	CmdWriteZeroes = 6
)

// Error values of simple replies.
const (
	EPERM   = 1
	EIO     = 5
	ENOMEM  = 12
	EINVAL  = 22
	ENOSPC  = 28
	ENOTSUP = 95
)

const (
	requestMagic     = 0x25609513
	simpleReplyMagic = 0x67446698
	// RequestSize is the size of a request header.
	RequestSize = 28
	// MaxOptionLen bounds an option's data: names are at most 4 KiB.
	MaxOptionLen = 64 << 10
	// MaxRequest bounds a READ or WRITE: what clients ask when told
	// the maximum block size (32 MiB).
	MaxRequest = 32 << 20
)

// Option is a decoded option request (after IHAVEOPT, code and length).
type Option struct {
	Code  uint32
	Name  string   // GO, INFO, EXPORT_NAME: the export asked for
	Infos []uint16 // GO, INFO: the information requests
}

// ErrBadOption is option data that does not parse.
var ErrBadOption = errors.New("malformed option data")

// DecodeOption parses the data of option code. Options other than GO,
// INFO and EXPORT_NAME carry nothing the server reads; LIST and ABORT
// must carry nothing.
func DecodeOption(code uint32, data []byte) (Option, error) {
	o := Option{Code: code}
	switch code {
	case OptExportName:
		o.Name = string(data)
	case OptGo, OptInfo:
		if len(data) < 4 {
			return o, fmt.Errorf("%w: %d bytes, no name length", ErrBadOption, len(data))
		}
		n := binary.BigEndian.Uint32(data)
		if uint64(n) > uint64(len(data)-4) || len(data)-4-int(n) < 2 {
			return o, fmt.Errorf("%w: name of %d bytes in %d bytes of data", ErrBadOption, n, len(data))
		}
		o.Name = string(data[4 : 4+n])
		rest := data[4+n:]
		k := int(binary.BigEndian.Uint16(rest))
		rest = rest[2:]
		if len(rest) != 2*k {
			return o, fmt.Errorf("%w: %d information requests in %d bytes", ErrBadOption, k, len(rest))
		}
		for i := 0; i < k; i++ {
			o.Infos = append(o.Infos, binary.BigEndian.Uint16(rest[2*i:]))
		}
	case OptList, OptAbort:
		if len(data) != 0 {
			return o, fmt.Errorf("%w: option %d takes no data, got %d bytes", ErrBadOption, code, len(data))
		}
	}
	return o, nil
}

// Request is a decoded transmission request header.
type Request struct {
	Flags  uint16
	Type   uint16
	Cookie uint64
	Offset uint64
	Length uint32
}

// ErrBadMagic is a request that does not begin with the request magic:
// the stream is out of step and the connection must end.
var ErrBadMagic = errors.New("bad request magic")

// DecodeRequest parses a request header of RequestSize bytes.
func DecodeRequest(b []byte) (Request, error) {
	if len(b) < RequestSize {
		return Request{}, fmt.Errorf("request header of %d bytes, want %d", len(b), RequestSize)
	}
	if m := binary.BigEndian.Uint32(b); m != requestMagic {
		return Request{}, fmt.Errorf("%w %#x", ErrBadMagic, m)
	}
	return Request{
		Flags:  binary.BigEndian.Uint16(b[4:]),
		Type:   binary.BigEndian.Uint16(b[6:]),
		Cookie: binary.BigEndian.Uint64(b[8:]),
		Offset: binary.BigEndian.Uint64(b[16:]),
		Length: binary.BigEndian.Uint32(b[24:]),
	}, nil
}

// EncodeRequest is the inverse of DecodeRequest (clients and tests).
func EncodeRequest(r Request) []byte {
	b := make([]byte, RequestSize)
	binary.BigEndian.PutUint32(b, requestMagic)
	binary.BigEndian.PutUint16(b[4:], r.Flags)
	binary.BigEndian.PutUint16(b[6:], r.Type)
	binary.BigEndian.PutUint64(b[8:], r.Cookie)
	binary.BigEndian.PutUint64(b[16:], r.Offset)
	binary.BigEndian.PutUint32(b[24:], r.Length)
	return b
}
