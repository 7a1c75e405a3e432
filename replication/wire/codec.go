package wire

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// appendStr appends a string as a uint16 length and its bytes. Callers
// check the length first (checkStr).
func appendStr(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func appendU16(b []byte, v uint16) []byte { return binary.LittleEndian.AppendUint16(b, v) }
func appendU32(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }
func appendU64(b []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(b, v) }

// checkStr refuses a string that Unmarshal would refuse.
func checkStr(t Type, field, s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("wire: %v: %w: %s is %d bytes, maximum %d", t, ErrMalformed, field, len(s), max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("wire: %v: %w: %s is not UTF-8", t, ErrMalformed, field)
	}
	return nil
}

// String limits: names (hosts, disks, tags) and free text (error
// messages).
const (
	maxName = 1024
	maxText = 4096
)

// reader takes a payload apart. The first failure sticks: later reads
// return zero values and done reports the failure, so Unmarshal methods
// read every field and check once.
type reader struct {
	t   Type
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("wire: %v: %w: %s", r.t, ErrMalformed, fmt.Sprintf(format, args...))
	}
}

func (r *reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.fail("short payload reading %s (%d bytes left, need %d)", what, len(r.b), n)
		return nil
	}
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

func (r *reader) u8(what string) uint8 {
	if p := r.take(1, what); p != nil {
		return p[0]
	}
	return 0
}

func (r *reader) u16(what string) uint16 {
	if p := r.take(2, what); p != nil {
		return binary.LittleEndian.Uint16(p)
	}
	return 0
}

func (r *reader) u32(what string) uint32 {
	if p := r.take(4, what); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (r *reader) u64(what string) uint64 {
	if p := r.take(8, what); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}

// nonNeg reads an int64 that must not be negative (an offset or a size).
func (r *reader) nonNeg(what string) int64 {
	v := int64(r.u64(what))
	if v < 0 {
		r.fail("negative %s %d", what, v)
		return 0
	}
	return v
}

// zero reads n reserved bytes that must be zero.
func (r *reader) zero(n int) {
	for _, c := range r.take(n, "reserved bytes") {
		if c != 0 {
			r.fail("nonzero reserved bytes")
			return
		}
	}
}

func (r *reader) str(what string, max int) string {
	n := int(r.u16(what + " length"))
	if n > max {
		r.fail("%s is %d bytes, maximum %d", what, n, max)
		return ""
	}
	p := r.take(n, what)
	if r.err != nil {
		return ""
	}
	if !utf8.Valid(p) {
		r.fail("%s is not UTF-8", what)
		return ""
	}
	return string(p)
}

// count reads a uint32 element count and checks that the rest of the
// payload can hold that many elements of at least size bytes, so a claimed
// count never sizes an allocation the payload cannot back.
func (r *reader) count(size int, what string) int {
	n := r.u32(what + " count")
	if r.err == nil && uint64(n)*uint64(size) > uint64(len(r.b)) {
		r.fail("%d %s cannot fit in %d bytes", n, what, len(r.b))
		return 0
	}
	return int(n)
}

func (r *reader) rest() []byte {
	p := r.b
	r.b = nil
	return p
}

// done reports the first failure, or trailing bytes.
func (r *reader) done() error {
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d trailing bytes", len(r.b))
	}
	return r.err
}
