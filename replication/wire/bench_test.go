package wire

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"testing"
)

// BenchmarkEncodeDecodeWrite measures the codec on the ack path's hot
// message: encode a Write, decode it back, through memory. The baseline
// beside it moves the same bytes through the same buffer with no framing,
// so the ratio is the codec's own cost. Random data: compression would not
// shrink it, as with most block data already compressed or encrypted.
func BenchmarkEncodeDecodeWrite(b *testing.B) {
	for _, size := range []int{64 << 10, 1 << 20} {
		data := make([]byte, size)
		rand.Read(data)
		name := fmt.Sprintf("%dKiB", size>>10)
		b.Run(name, func(b *testing.B) {
			var buf bytes.Buffer
			e, d := NewEncoder(&buf), NewDecoder(&buf)
			w := &Write{Disk: 1, Offset: 0, Time: t0, Data: data}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				w.Seq = uint64(i + 1)
				if err := e.Encode(w); err != nil {
					b.Fatal(err)
				}
				if err := e.Flush(); err != nil {
					b.Fatal(err)
				}
				m, err := d.Decode()
				if err != nil {
					b.Fatal(err)
				}
				if len(m.(*Write).Data) != size {
					b.Fatal("short write")
				}
			}
		})
		b.Run(name+"-reuse", func(b *testing.B) {
			var buf bytes.Buffer
			e, d := NewEncoder(&buf), NewDecoder(&buf)
			d.SetReuseBuffer(true)
			w := &Write{Disk: 1, Offset: 0, Time: t0, Data: data}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				w.Seq = uint64(i + 1)
				if err := e.Encode(w); err != nil {
					b.Fatal(err)
				}
				if err := e.Flush(); err != nil {
					b.Fatal(err)
				}
				m, err := d.Decode()
				if err != nil {
					b.Fatal(err)
				}
				if len(m.(*Write).Data) != size {
					b.Fatal("short write")
				}
			}
		})
		b.Run(name+"-baseline", func(b *testing.B) {
			var buf bytes.Buffer
			out := make([]byte, size)
			b.SetBytes(int64(size))
			for b.Loop() {
				buf.Write(data)
				buf.Read(out)
			}
		})
	}
	// Compressible data (a quarter zeros, the rest repeated text) with each
	// codec, 1 MiB.
	data := bytes.Repeat([]byte("block data, block data, "), (1<<20)/24+1)[:1<<20]
	clear(data[:256<<10])
	for _, c := range []Compression{CompressS2, CompressZstd} {
		b.Run("1024KiB-"+c.String(), func(b *testing.B) {
			var buf bytes.Buffer
			e, d := NewEncoder(&buf), NewDecoder(&buf)
			w := &Write{Disk: 1, Time: t0, Data: data, Compression: c}
			b.SetBytes(int64(len(data)))
			for i := 0; b.Loop(); i++ {
				w.Seq = uint64(i + 1)
				if err := e.Encode(w); err != nil {
					b.Fatal(err)
				}
				e.Flush()
				if _, err := d.Decode(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
