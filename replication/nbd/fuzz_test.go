package nbd

import (
	"bytes"
	"net"
	"testing"
	"time"
)

// FuzzOption: the option decoder never panics, and a GO/INFO it accepts
// reads back to the bytes it came from.
func FuzzOption(f *testing.F) {
	f.Add(uint32(OptGo), goData("v1", infoBlockSize))
	f.Add(uint32(OptInfo), goData(""))
	f.Add(uint32(OptGo), []byte{0xff, 0xff, 0xff, 0xff, 0, 0})
	f.Add(uint32(OptList), []byte{1})
	f.Add(uint32(OptExportName), []byte("x"))
	f.Fuzz(func(t *testing.T, code uint32, data []byte) {
		o, err := DecodeOption(code, data)
		if err != nil || (code != OptGo && code != OptInfo) {
			return
		}
		if again := goData(o.Name, o.Infos...); !bytes.Equal(again, data) {
			t.Fatalf("decoded %+v re-encodes to % x, not % x", o, again, data)
		}
	})
}

// FuzzRequest: the request decoder never panics and round-trips; the
// server fed the bytes after a GO answers or hangs up, never panics.
func FuzzRequest(f *testing.F) {
	f.Add(EncodeRequest(Request{Type: CmdRead, Length: 512}))
	f.Add(EncodeRequest(Request{Type: CmdWrite, Length: 4, Offset: 1}))
	f.Add(append(EncodeRequest(Request{Type: CmdWrite, Length: 4}), 1, 2, 3, 4))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := DecodeRequest(b); err == nil {
			if !bytes.Equal(EncodeRequest(r), b[:RequestSize]) {
				t.Fatal("request does not round-trip")
			}
		}
		s := &Server{Exports: []Export{{Name: "f", Dev: &memDev{b: make([]byte, 8192)}}}}
		cs, ss := net.Pipe()
		done := make(chan struct{})
		go func() { s.ServeConn(ss); close(done) }()
		go func() {
			// drain whatever the server says
			buf := make([]byte, 64<<10)
			for {
				if _, err := cs.Read(buf); err != nil {
					return
				}
			}
		}()
		cs.SetDeadline(time.Now().Add(5 * time.Second))
		hs := []byte{0, 0, 0, 3}
		hs = append(hs, 0x49, 0x48, 0x41, 0x56, 0x45, 0x4f, 0x50, 0x54, 0, 0, 0, OptGo)
		g := goData("f")
		hs = append(hs, byte(len(g)>>24), byte(len(g)>>16), byte(len(g)>>8), byte(len(g)))
		hs = append(hs, g...)
		cs.Write(hs)
		cs.Write(b)
		cs.Close()
		<-done
	})
}
