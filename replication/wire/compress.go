package wire

import (
	"fmt"
	"slices"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// Compression is the codec of a Write's or ResyncData's data on the wire.
type Compression uint8

// Codecs. The values are part of the protocol.
const (
	CompressNone Compression = 0
	CompressZstd Compression = 1 // zstd, fastest level: best ratio per CPU on slow links
	CompressS2   Compression = 2 // S2 (Snappy-compatible blocks): near memory speed on fast links
)

func (c Compression) String() string {
	switch c {
	case CompressNone:
		return "none"
	case CompressZstd:
		return "zstd"
	case CompressS2:
		return "s2"
	}
	return fmt.Sprintf("compression(%d)", uint8(c))
}

func (c Compression) known() bool { return c <= CompressS2 }

var zstdEncoder = sync.OnceValue(func() *zstd.Encoder {
	e, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithEncoderCRC(false), // the frame's CRC-32C covers the payload
		zstd.WithLowerEncoderMem(true))
	if err != nil {
		panic("wire: zstd encoder: " + err.Error()) // only on invalid options
	}
	return e
})

var zstdDecoder = sync.OnceValue(func() *zstd.Decoder {
	d, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(0),
		// DecodeAll never writes past cap(dst), which Decompress sets to
		// the declared length: a bomb stops at that many bytes.
		zstd.WithDecodeAllCapLimit(true),
		zstd.WithDecoderMaxMemory(MaxPayload),
		zstd.WithDecoderMaxWindow(MaxPayload))
	if err != nil {
		panic("wire: zstd decoder: " + err.Error()) // only on invalid options
	}
	return d
})

// compress appends src compressed with c to dst, and returns the codec
// used. When compression would not make the data smaller it returns dst
// unchanged and CompressNone: incompressible data travels as is.
func compress(dst, src []byte, c Compression) ([]byte, Compression) {
	if c == CompressNone || len(src) == 0 {
		return dst, CompressNone
	}
	start := len(dst)
	switch c {
	case CompressZstd:
		dst = zstdEncoder().EncodeAll(src, dst)
	case CompressS2:
		n := s2.MaxEncodedLen(len(src))
		if n < 0 {
			return dst, CompressNone
		}
		dst = slices.Grow(dst, n)[:start+n]
		enc := s2.Encode(dst[start:], src)
		dst = dst[:start+len(enc)]
	default:
		return dst, CompressNone
	}
	if len(dst)-start >= len(src) {
		return dst[:start], CompressNone
	}
	return dst, c
}

// decompress returns src decompressed with c, which must yield exactly n
// bytes. It never produces more than n bytes, whatever src claims, and n
// is bounded by MaxPayload by the caller.
func decompress(src []byte, c Compression, n int) ([]byte, error) {
	switch c {
	case CompressZstd:
		out, err := zstdDecoder().DecodeAll(src, make([]byte, 0, n))
		if err != nil {
			return nil, fmt.Errorf("wire: %w: zstd: %v", ErrDecompress, err)
		}
		if len(out) != n {
			return nil, fmt.Errorf("wire: %w: zstd data is %d bytes, declared %d", ErrDecompress, len(out), n)
		}
		return out, nil
	case CompressS2:
		// The block states its decoded length first: check it before s2
		// allocates anything.
		m, err := s2.DecodedLen(src)
		if err != nil {
			return nil, fmt.Errorf("wire: %w: s2: %v", ErrDecompress, err)
		}
		if m != n {
			return nil, fmt.Errorf("wire: %w: s2 data is %d bytes, declared %d", ErrDecompress, m, n)
		}
		out, err := s2.Decode(make([]byte, n), src)
		if err != nil {
			return nil, fmt.Errorf("wire: %w: s2: %v", ErrDecompress, err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("wire: %w: unknown codec %d", ErrDecompress, c)
}
