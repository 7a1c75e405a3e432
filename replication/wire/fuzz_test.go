package wire

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the seed corpus under testdata/fuzz")

// FuzzDecodeFrame feeds arbitrary bytes to a Decoder. Every failure is a
// named error or a truncation; every frame accepted is canonical (encoding
// it again gives the bytes read); every message accepted marshals and
// decodes back to itself.
func FuzzDecodeFrame(f *testing.F) {
	f.Add(smallFrameBytes(&Credit{Bytes: 1}))
	f.Fuzz(func(t *testing.T, data []byte) {
		d := NewDecoder(bytes.NewReader(data))
		d.SetMaxPayload(1 << 20)
		at := 0
		for {
			fr, err := d.ReadFrame()
			if err != nil {
				if err != io.EOF && err != io.ErrUnexpectedEOF && !isFrameError(err) {
					t.Fatalf("unnamed error: %v", err)
				}
				return
			}
			enc := AppendFrame(nil, fr)
			if !bytes.Equal(enc, data[at:at+len(enc)]) {
				t.Fatalf("frame %d accepted but not canonical", fr.Seq)
			}
			at += len(enc)
			m, err := decodeMessage(fr, 1<<20)
			if err != nil {
				if !isFrameError(err) {
					t.Fatalf("unnamed message error: %v", err)
				}
				continue
			}
			want := canonical(m)
			p, err := Marshal(want)
			if err != nil {
				t.Fatalf("%v accepted but does not marshal: %v", fr.Type, err)
			}
			back, err := DecodeMessage(Frame{Type: fr.Type, Seq: fr.Seq, Disk: fr.Disk, Payload: p})
			if err != nil || !reflect.DeepEqual(back, want) {
				t.Fatalf("%v does not round trip: %v\n got %+v\nwant %+v", fr.Type, err, back, want)
			}
		}
	})
}

// canonical is m with its data uncompressed, so it marshals to one form.
func canonical(m Message) Message {
	switch m := m.(type) {
	case *Write:
		c := *m
		c.Compression = CompressNone
		return &c
	case *ResyncData:
		c := *m
		c.Compression = CompressNone
		return &c
	}
	return m
}

// Nonces the seed corpus was recorded with: a fuzzed handshake that
// replays the recorded client meets a server drawing the same nonce, so
// the seed reaches the end of the handshake and the streaming checks.
var (
	seedClientNonce = bytes.Repeat([]byte{0xc1}, NonceSize)
	seedServerNonce = bytes.Repeat([]byte{0x5e}, NonceSize)
)

// FuzzHandshake feeds arbitrary bytes to the server side of a handshake
// (a process server), then to its Conn: it never panics, never hangs, and
// succeeds only with a session that makes sense.
func FuzzHandshake(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := psConfig(fixedKey)
		cfg.Rand = bytes.NewReader(seedServerNonce)
		fuzzSide(t, data, cfg, Server)
	})
}

// FuzzHandshakeClient is FuzzHandshake for the client side (a master
// target).
func FuzzHandshakeClient(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := mtConfig(fixedKey)
		cfg.Rand = bytes.NewReader(seedClientNonce)
		fuzzSide(t, data, cfg, Client)
	})
}

func fuzzSide(t *testing.T, data []byte, cfg *Config, side func(context.Context, net.Conn, *Config) (*Conn, error)) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := side(ctx, newScriptConn(data), cfg)
	if err != nil {
		if c != nil {
			t.Fatal("a Conn came back with an error")
		}
		return
	}
	s := c.Session()
	if s.Version != ProtocolVersion || s.Peer.Role == cfg.Role || !s.Peer.Role.known() {
		t.Fatalf("nonsense session %+v", s)
	}
	if err := checkPaired(s.Disks, s.Pairs); err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		if _, err := c.Recv(); err != nil {
			return
		}
	}
}

// recordSeedSession runs one deterministic handshake over net.Pipe and
// returns what the client (master target) and the server (process server)
// wrote.
func recordSeedSession(t *testing.T) (client, server []byte) {
	cn, sn := net.Pipe()
	rc, rs := &recordConn{Conn: cn}, &recordConn{Conn: sn}
	mcfg, pcfg := mtConfig(fixedKey), psConfig(fixedKey)
	mcfg.Rand, pcfg.Rand = bytes.NewReader(seedClientNonce), bytes.NewReader(seedServerNonce)
	c, s := handshakePair(t, rc, rs, mcfg, pcfg)
	if c.err != nil || s.err != nil {
		t.Fatalf("seed session: %v, %v", c.err, s.err)
	}
	return rc.recorded(), rs.recorded()
}

// appendMessages continues a recorded stream with more frames, numbered
// after its last one.
func appendMessages(t *testing.T, stream []byte, ms ...Message) []byte {
	t.Helper()
	n := uint64(len(frames(t, stream)))
	for i, m := range ms {
		p, err := Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		stream = AppendFrame(stream, Frame{Type: m.Type(), Seq: n + 1 + uint64(i), Disk: m.DiskID(), Payload: p})
	}
	return stream
}

// firstFrame is the first frame of a stream.
func firstFrame(b []byte) []byte {
	return b[:FrameSize(int(binary.LittleEndian.Uint32(b[20:])))]
}

// rewrite changes the second frame of a recorded stream (an Auth, or the
// first if it is a Welcome) and encodes the stream again, with valid
// checksums.
func rewrite(t *testing.T, stream []byte, change func(Message)) []byte {
	t.Helper()
	ms := frames(t, stream)
	i := 1
	if ms[0].Type() == TypeWelcome {
		i = 0
	}
	change(ms[i])
	var out []byte
	for j, m := range ms {
		p, err := Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		out = AppendFrame(out, Frame{Type: m.Type(), Seq: uint64(j + 1), Disk: m.DiskID(), Payload: p})
	}
	return out
}

func smallFrameBytes(m Message) []byte {
	var b bytes.Buffer
	e := NewEncoder(&b)
	if e.Encode(m) != nil || e.Flush() != nil {
		panic("seed does not encode")
	}
	return b.Bytes()
}

// seedCorpus is the committed seed corpus, by fuzz target and file name.
func seedCorpus(t *testing.T) map[string]map[string][]byte {
	client, server := recordSeedSession(t)
	frames := map[string][]byte{}
	var all bytes.Buffer
	e := NewEncoder(&all)
	for _, m := range sampleMessages() {
		name := m.Type().String()
		if _, dup := frames[name]; dup {
			name += "-2"
		}
		frames[name] = smallFrameBytes(m)
		if err := e.Encode(m); err != nil {
			t.Fatal(err)
		}
	}
	e.Flush()
	frames["all-messages"] = all.Bytes()
	frames["oversized"] = header(TypeWrite, 1, 1, MaxPayload+1)
	frames["truncated"] = frames["write"][:len(frames["write"])-5]
	bad := bytes.Clone(frames["tag"])
	bad[40] ^= 0x10
	frames["bad-payload-crc"] = bad
	frames["out-of-order"] = append(AppendFrame(nil, Frame{Type: TypeCredit, Seq: 1, Payload: []byte{1, 0, 0, 0, 0, 0, 0, 0}}),
		AppendFrame(nil, Frame{Type: TypeCredit, Seq: 3, Payload: []byte{1, 0, 0, 0, 0, 0, 0, 0}})...)

	hs := map[string][]byte{
		"valid-client": client,
		"valid-client-then-stream": appendMessages(t, client,
			&Ack{Disk: 1, Seq: 41, Backlog: 1, FreeJournal: 1 << 30},
			&Credit{Bytes: 1 << 20},
			&HashResponse{Disk: 2, Algo: HashSHA256, ChunkSize: 4096, Offset: 0, Hashes: [][HashSize]byte{{1}}},
			&HashResponse{Disk: 2, Algo: HashXXH3, ChunkSize: 4096, Offset: 4096, Hashes: [][HashSize]byte{{1}, {15: 2}}},
			&Heartbeat{Time: t0, Latest: []DiskSeq{{Disk: 1, Seq: 41}}},
			&Error{Code: CodeNoSpace, Disk: 2, Message: "journal full"},
			&Ack{Disk: 1, Seq: 40}),
		"hello-only":      firstFrame(client),
		"wrong-proof":     rewrite(t, client, func(m Message) { m.(*Auth).Proof[0] ^= 1 }),
		"hello-truncated": client[:50],
	}
	hsc := map[string][]byte{
		"valid-server": server,
		"valid-server-then-stream": appendMessages(t, server,
			&State{Disk: 2, State: StateResync1, Seq: 0, Total: 3 << 20},
			&ResyncData{Disk: 2, Seq: 1, Offset: 0, Data: []byte("block")},
			&ZeroRange{Disk: 2, Seq: 2, Offset: 4096, Length: 4096},
			&HashRequest{Disk: 2, Algo: HashSHA256, ChunkSize: 4096, Offset: 0, Count: 4},
			&HashRequest{Disk: 2, Algo: HashXXH3, ChunkSize: 4096, Offset: 4096, Count: 2},
			&Write{Disk: 1, Seq: 42, Offset: 512, Time: t0, Data: bytes.Repeat([]byte("ab"), 100), Compression: CompressS2},
			&Tag{Disk: 1, Seq: 43, Time: t0, Name: "t", App: "CRASH", ID: "g"},
			&Write{Disk: 1, Seq: 43, Offset: 0, Data: []byte{1}}),
		"welcome-only":      firstFrame(server),
		"wrong-server-role": rewrite(t, server, func(m Message) { m.(*Welcome).Role = RoleMasterTarget }),
	}
	return map[string]map[string][]byte{"FuzzDecodeFrame": frames, "FuzzHandshake": hs, "FuzzHandshakeClient": hsc}
}

// TestSeedCorpus keeps the committed seeds meaningful: the valid
// handshakes in it still authenticate (so the fuzzers start past the
// proofs) and the frame stream still decodes. Run with -update to rewrite
// the corpus after a format change.
func TestSeedCorpus(t *testing.T) {
	if *update {
		for target, files := range seedCorpus(t) {
			dir := filepath.Join("testdata", "fuzz", target)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for name, data := range files {
				body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(data)))
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	read := func(target, name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", "fuzz", target, name))
		if err != nil {
			t.Fatalf("%v (run go test -run TestSeedCorpus -update)", err)
		}
		s := strings.TrimSuffix(strings.TrimPrefix(string(b), "go test fuzz v1\n[]byte("), ")\n")
		v, err := strconv.Unquote(s)
		if err != nil {
			t.Fatalf("%s/%s: %v", target, name, err)
		}
		return []byte(v)
	}
	for _, side := range []struct {
		target, name string
		cfg          *Config
		nonce        []byte
		run          func(context.Context, net.Conn, *Config) (*Conn, error)
		stream       int
	}{
		{"FuzzHandshake", "valid-client-then-stream", psConfig(fixedKey), seedServerNonce, Server, 6},
		{"FuzzHandshakeClient", "valid-server-then-stream", mtConfig(fixedKey), seedClientNonce, Client, 7},
	} {
		side.cfg.Rand = bytes.NewReader(side.nonce)
		c, err := side.run(context.Background(), newScriptConn(read(side.target, side.name)), side.cfg)
		if err != nil {
			t.Fatalf("%s/%s no longer authenticates: %v", side.target, side.name, err)
		}
		// The stream's last message breaks a rule on purpose.
		for i := range side.stream {
			if _, err := c.Recv(); err != nil {
				t.Fatalf("%s/%s: message %d: %v", side.target, side.name, i+1, err)
			}
		}
		if _, err := c.Recv(); !errors.Is(err, ErrSequence) {
			t.Fatalf("%s/%s: last message: %v, want ErrSequence", side.target, side.name, err)
		}
	}
	if got := frames(t, read("FuzzDecodeFrame", "all-messages")); len(got) != len(sampleMessages()) {
		t.Fatalf("all-messages seed holds %d messages", len(got))
	}
}
