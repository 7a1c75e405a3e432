package wire

import (
	"errors"
	"testing"
	"time"
)

// inject writes msgs, in order, to the peer through the raw encoder,
// skipping Send's checks: a misbehaving peer.
func inject(c *Conn, msgs ...Message) {
	go func() {
		c.wmu.Lock()
		defer c.wmu.Unlock()
		for _, m := range msgs {
			if c.enc.Encode(m) != nil {
				return
			}
		}
		c.enc.Flush()
	}()
}

// TestConnRefusesOnReceive: a peer that breaks the protocol gets its
// connection refused with a named error, and nothing of the bad message
// comes out.
func TestConnRefusesOnReceive(t *testing.T) {
	for _, tc := range []struct {
		name  string
		from  string // "ps" or "mt"
		setup []Message
		bad   Message
		want  error
	}{
		{"write from the master target", "mt", nil, &Write{Disk: 1, Seq: 42}, ErrUnexpected},
		{"ack from the process server", "ps", nil, &Ack{Disk: 1, Seq: 41}, ErrUnexpected},
		{"hello after the handshake", "ps", nil, &Hello{Versions: []uint16{1}, Role: RoleProcessServer}, ErrUnexpected},
		{"disk list after the handshake", "ps", nil, &DiskList{Disks: testDisks}, ErrUnexpected},
		{"write for an unpaired disk", "ps", nil, &Write{Disk: 7, Seq: 1}, ErrUnknownDisk},
		{"write for an unknown disk", "ps", nil, &Write{Disk: 99, Seq: 1}, ErrUnknownDisk},
		{"write at the resume point", "ps", nil, &Write{Disk: 1, Seq: 41}, ErrSequence},
		{"write before the resume point", "ps", nil, &Write{Disk: 1, Seq: 3}, ErrSequence},
		{"write repeated", "ps", []Message{&Write{Disk: 1, Seq: 42}}, &Write{Disk: 1, Seq: 42}, ErrSequence},
		{"write skipping one", "ps", nil, &Write{Disk: 1, Seq: 43}, ErrSequence},
		{"tag skipping one", "ps", []Message{&Write{Disk: 1, Seq: 42}}, &Tag{Disk: 1, Seq: 44, Name: "t"}, ErrSequence},
		{"resync data repeated", "ps", []Message{&ResyncData{Disk: 2, Seq: 1}}, &ResyncData{Disk: 2, Seq: 1}, ErrSequence},
		{"zero range repeated", "ps", []Message{&ZeroRange{Disk: 2, Seq: 1, Length: 1}}, &ZeroRange{Disk: 2, Seq: 1, Length: 1}, ErrSequence},
		{"state ahead of the data", "ps", nil, &State{Disk: 1, State: StateDiffSync, Seq: 42}, ErrSequence},
		{"heartbeat for an unknown disk", "ps", nil, &Heartbeat{Latest: []DiskSeq{{Disk: 7, Seq: 1}}}, ErrUnknownDisk},
		{"ack of what was never sent", "mt", nil, &Ack{Disk: 1, Seq: 42}, ErrSequence},
		{"ack behind the resume point", "mt", nil, &Ack{Disk: 1, Seq: 40}, ErrSequence},
		{"error about an unknown disk", "ps", nil, &Error{Disk: 9, Code: CodeIO, Message: "x"}, ErrUnknownDisk},
		{"write beyond the end", "ps", nil, &Write{Disk: 2, Seq: 1, Offset: 3<<20 - 1, Data: []byte{1, 2}}, ErrOutOfRange},
		{"write past the end", "ps", nil, &Write{Disk: 2, Seq: 1, Offset: 4 << 20, Data: []byte{1}}, ErrOutOfRange},
		{"zero range beyond the end", "ps", nil, &ZeroRange{Disk: 2, Seq: 1, Offset: 1 << 20, Length: 2<<20 + 1}, ErrOutOfRange},
		{"hash request past the end", "ps", nil, &HashRequest{Disk: 2, Algo: HashSHA256, ChunkSize: 4096, Offset: 3 << 20, Count: 1}, ErrOutOfRange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mt, ps := pipePair(t)
			from, to := ps, mt
			if tc.from == "mt" {
				from, to = mt, ps
			}
			inject(from, append(tc.setup, tc.bad)...)
			for range tc.setup {
				if _, err := to.Recv(); err != nil {
					t.Fatalf("setup: %v", err)
				}
			}
			m, err := to.Recv()
			if !errors.Is(err, tc.want) || m != nil {
				t.Fatalf("got %v, %v; want %v", m, err, tc.want)
			}
			if _, err2 := to.Recv(); !errors.Is(err2, tc.want) {
				t.Fatalf("the error does not stick: %v", err2)
			}
			// The receiver tells the peer, which sees a fatal error.
			go to.Abort(err)
			if _, err := from.Recv(); !errors.Is(err, ErrPeer) || !errors.As(err, new(*Error)) {
				t.Fatalf("peer after Abort: %v", err)
			}
		})
	}
}

// TestConnRefusesOnSend: Send checks the same rules, so a bug on this side
// never reaches the peer.
func TestConnRefusesOnSend(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fromMT   bool
		before   []Message
		m        Message
		want     error
		recvBack int // messages the peer must read for before to complete
	}{
		{"write from the master target", true, nil, &Write{Disk: 1, Seq: 42}, ErrUnexpected, 0},
		{"credit from the process server", false, nil, &Credit{Bytes: 1}, ErrUnexpected, 0},
		{"write for an unpaired disk", false, nil, &Write{Disk: 7, Seq: 1}, ErrUnknownDisk, 0},
		{"write at the resume point", false, nil, &Write{Disk: 1, Seq: 41}, ErrSequence, 0},
		{"tag repeating a write's sequence", false, []Message{&Write{Disk: 1, Seq: 42}}, &Tag{Disk: 1, Seq: 42, Name: "t"}, ErrSequence, 1},
		{"write skipping one", false, nil, &Write{Disk: 1, Seq: 43}, ErrSequence, 0},
		{"write beyond the end", false, nil, &Write{Disk: 1, Seq: 42, Offset: 1 << 30, Data: []byte{1}}, ErrOutOfRange, 0},
		{"bad message", false, nil, &Tag{Disk: 1, Seq: 42}, ErrMalformed, 0},
		{"tag request from the process server", false, nil, &TagRequest{Disks: []uint32{1}, Name: "t", ID: "i"}, ErrUnexpected, 0},
		{"tag request for an unpaired disk", true, nil, &TagRequest{Disks: []uint32{1, 7}, Name: "t", ID: "i"}, ErrUnknownDisk, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mt, ps := pipePair(t)
			c, peer := ps, mt
			if tc.fromMT {
				c, peer = mt, ps
			}
			go func() {
				for range tc.recvBack {
					peer.Recv()
				}
			}()
			if err := c.Send(tc.before...); err != nil {
				t.Fatal(err)
			}
			if err := c.Send(tc.m); !errors.Is(err, tc.want) {
				t.Fatalf("send: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestConnAcks(t *testing.T) {
	mt, ps := pipePair(t)
	go func() {
		for range 3 {
			if _, err := mt.Recv(); err != nil {
				return
			}
		}
	}()
	if err := ps.Send(&Write{Disk: 1, Seq: 42}, &Write{Disk: 1, Seq: 43}, &Tag{Disk: 1, Seq: 44, Name: "t"}); err != nil {
		t.Fatal(err)
	}
	acks := []*Ack{{Disk: 1, Seq: 41}, {Disk: 1, Seq: 43}, {Disk: 1, Seq: 43, Backlog: 1}, {Disk: 1, Seq: 44}}
	go func() {
		for _, a := range acks {
			if err := mt.Send(a); err != nil {
				return
			}
		}
	}()
	for _, a := range acks {
		m, err := ps.Recv()
		if err != nil || m.(*Ack).Seq != a.Seq {
			t.Fatalf("ack %d: %v, %v", a.Seq, m, err)
		}
	}
	// Going backwards is refused.
	inject(mt, &Ack{Disk: 1, Seq: 43})
	if _, err := ps.Recv(); !errors.Is(err, ErrSequence) {
		t.Fatalf("ack backwards: %v", err)
	}
}

func TestConnErrorsAndClose(t *testing.T) {
	mt, ps := pipePair(t)
	// A non-fatal error is a message; a fatal one ends the connection.
	go ps.Send(&Error{Disk: 1, Code: CodeOutOfRange, Message: "beyond the end"}, &Error{Code: CodeShutdown, Fatal: true, Message: "bye"})
	m, err := mt.Recv()
	if e, ok := m.(*Error); err != nil || !ok || e.Disk != 1 || e.Fatal {
		t.Fatalf("non-fatal error: %v, %v", m, err)
	}
	_, err = mt.Recv()
	var pe *Error
	if !errors.As(err, &pe) || pe.Code != CodeShutdown || !errors.Is(err, ErrPeer) {
		t.Fatalf("fatal error: %v", err)
	}
	if _, err2 := mt.Recv(); err2 != err {
		t.Fatalf("after a fatal error: %v", err2)
	}
	// Close unblocks a Recv and later calls say ErrClosed.
	done := make(chan error, 1)
	go func() {
		_, err := ps.Recv()
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	ps.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("recv on close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Recv")
	}
	if err := ps.Send(&Heartbeat{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("send after close: %v", err)
	}
	if err := ps.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

// TestConnPairLater: a master target pairs a disk of the list after the
// handshake with a PairAccept; both sides then carry that disk's messages
// from its resume point, and the disks paired before go on untouched. A
// disk already paired, or not in the list, is refused on either side.
func TestConnPairLater(t *testing.T) {
	mt, ps := pipePair(t)
	if mt.Paired(7) || ps.Paired(7) {
		t.Fatal("disk 7 paired before it was asked for")
	}
	go func() {
		if err := mt.Send(&PairAccept{Pairs: []Pair{{Disk: 7, Start: StartFull}}}); err != nil {
			t.Error(err)
		}
	}()
	m, err := ps.Recv()
	if pa, ok := m.(*PairAccept); err != nil || !ok || len(pa.Pairs) != 1 || pa.Pairs[0].Disk != 7 {
		t.Fatalf("process server received %v, %v", m, err)
	}
	if !mt.Paired(7) || !ps.Paired(7) {
		t.Fatalf("disk 7 after the PairAccept: paired at the master target %v, at the process server %v", mt.Paired(7), ps.Paired(7))
	}
	// the new disk's sequence starts at its resume point; disk 1 runs on
	go func() {
		if err := ps.Send(&Tag{Disk: 7, Seq: 1, Name: "t"}, &Write{Disk: 1, Seq: 42}); err != nil {
			t.Error(err)
		}
	}()
	for _, want := range []uint32{7, 1} {
		if m, err := mt.Recv(); err != nil || m.DiskID() != want {
			t.Fatalf("master target received %v, %v; want a message for disk %d", m, err, want)
		}
	}

	for _, tc := range []struct {
		name string
		p    Pair
		want error
	}{
		{"already paired", Pair{Disk: 1, Start: StartFull}, ErrMalformed},
		{"not in the list", Pair{Disk: 9, Start: StartFull}, ErrUnknownDisk},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mt1, _ := pipePair(t)
			if err := mt1.Send(&PairAccept{Pairs: []Pair{tc.p}}); !errors.Is(err, tc.want) {
				t.Errorf("send: %v, want %v", err, tc.want)
			}
			mt2, ps2 := pipePair(t)
			inject(mt2, &PairAccept{Pairs: []Pair{tc.p}})
			if _, err := ps2.Recv(); !errors.Is(err, tc.want) {
				t.Errorf("receive: %v, want %v", err, tc.want)
			}
		})
	}
	// a process server never pairs
	_, ps3 := pipePair(t)
	if err := ps3.Send(&PairAccept{Pairs: []Pair{{Disk: 7, Start: StartFull}}}); !errors.Is(err, ErrUnexpected) {
		t.Errorf("a PairAccept from the process server: %v, want ErrUnexpected", err)
	}
}
