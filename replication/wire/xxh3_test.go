package wire

import (
	"bytes"
	"errors"
	"net"
	"testing"

	"github.com/zeebo/xxh3"
)

// Two version-2 sides agree on version 2 and on a hash seed; a new
// connection gets another seed; a version-1 side gets version 1, no seed.
func TestHashSeedNegotiated(t *testing.T) {
	mt, ps := pipePair(t)
	ms, pss := mt.Session(), ps.Session()
	if ms.Version != 2 || pss.Version != 2 {
		t.Fatalf("versions %d, %d; want 2", ms.Version, pss.Version)
	}
	if ms.HashSeed != pss.HashSeed || ms.HashSeed == 0 {
		t.Fatalf("hash seeds %x, %x: want equal, non-zero", ms.HashSeed, pss.HashSeed)
	}
	mt2, _ := pipePair(t) // fresh random nonces
	if mt2.Session().HashSeed == ms.HashSeed {
		t.Fatal("two connections share a hash seed")
	}

	cn, sn := net.Pipe()
	old := mtConfig(fixedKey)
	old.Versions = []uint16{1}
	c, s := handshakePair(t, cn, sn, old, psConfig(fixedKey))
	if c.err != nil || s.err != nil {
		t.Fatalf("v1 client: %v, %v", c.err, s.err)
	}
	if v := s.c.Session().Version; v != 1 {
		t.Fatalf("a v1 client and a v2 server agree on %d", v)
	}
}

// XXH3 hashes exist from version 2 on: on a version-1 connection neither
// side may send them, and a peer that does has its connection refused.
func TestXXH3RefusedOnVersion1(t *testing.T) {
	cn, sn := net.Pipe()
	old := mtConfig(fixedKey)
	old.Versions = []uint16{1}
	c, s := handshakePair(t, cn, sn, old, psConfig(fixedKey))
	if c.err != nil || s.err != nil {
		t.Fatalf("handshake: %v, %v", c.err, s.err)
	}
	mt, ps := c.c, s.c
	req := &HashRequest{Disk: 2, Algo: HashXXH3, ChunkSize: 4096, Offset: 0, Count: 1}
	if err := ps.Send(req); !errors.Is(err, ErrMalformed) {
		t.Fatalf("send on v1: %v, want ErrMalformed", err)
	}
	inject(ps, req)
	if m, err := mt.Recv(); !errors.Is(err, ErrMalformed) || m != nil {
		t.Fatalf("recv on v1: %v, %v; want ErrMalformed", m, err)
	}
}

// An XXH3 response carries 16 bytes a hash; a 32-byte layout, or a hash
// with more than 16 bytes set, is refused.
func TestHashResponseXXH3Layout(t *testing.T) {
	m := &HashResponse{Disk: 1, Algo: HashXXH3, ChunkSize: 4096, Hashes: [][HashSize]byte{{1}, {15: 2}}}
	p, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != hashFixed+2*16 {
		t.Fatalf("payload %d bytes, want %d", len(p), hashFixed+32)
	}
	var back HashResponse
	if err := back.Unmarshal(p); err != nil || back.Hashes[1] != m.Hashes[1] {
		t.Fatalf("round trip: %v, %+v", err, back)
	}
	if err := back.Unmarshal(append(bytes.Clone(p), make([]byte, 32)...)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("trailing bytes: %v, want ErrMalformed", err)
	}
	m.Hashes[0][16] = 1
	if _, err := Marshal(m); !errors.Is(err, ErrMalformed) {
		t.Fatalf("17th byte set: %v, want ErrMalformed", err)
	}
}

// HashChunksAlgo with XXH3 gives each chunk's seeded 128-bit XXH3.
func TestHashChunksXXH3(t *testing.T) {
	data := make([]byte, 5*4096+100)
	for i := range data {
		data[i] = byte(i * 13)
	}
	got, err := HashChunksAlgo(HashXXH3, 99, bytes.NewReader(data), 0, 4096, 6, int64(len(data)), make([]byte, 8192))
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range got {
		want := xxh3.Hash128Seed(data[i*4096:min((i+1)*4096, len(data))], 99).Bytes()
		if !bytes.Equal(h[:16], want[:]) || [16]byte(h[16:]) != [16]byte{} {
			t.Errorf("chunk %d: %x, want %x", i, h, want)
		}
	}
	if other := SumChunk(HashXXH3, 100, data[:4096]); other == got[0] {
		t.Error("the seed does not change the hash")
	}
	if _, err := HashChunksAlgo(HashBLAKE2b256, 0, bytes.NewReader(data), 0, 4096, 1, int64(len(data)), make([]byte, 4096)); err == nil {
		t.Error("an algorithm it cannot compute was taken")
	}
}
