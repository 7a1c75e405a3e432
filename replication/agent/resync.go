package agent

import (
	"context"

	"github.com/mtconsole/mtconsole/replication/wire"
)

// direct takes a step I resync message straight to the target
// (writer.Pair.WriteDirect): a full copy needs no before-image and no
// journal round trip while the pair's retention store holds nothing it
// could make wrong. It reports false when the message must be journaled
// instead: not step I, or the store holds recoverable points.
func (c *Client) direct(ctx context.Context, s *session, l *link, m wire.Message) (bool, error) {
	if l == nil || l.pair == nil {
		return false, nil
	}
	l.mu.Lock()
	step := l.state
	l.mu.Unlock()
	if step != wire.StateResync1 {
		return false, nil
	}
	var (
		seq  uint64
		off  int64
		data []byte
		zero bool
	)
	switch m := m.(type) {
	case *wire.ResyncData:
		seq, off, data = m.Seq, m.Offset, m.Data
	case *wire.ZeroRange:
		if m.Length > MaxZeroRange {
			return false, nil // refused by the journaled path
		}
		seq, off, data, zero = m.Seq, m.Offset, zeros[:m.Length], true
	default:
		return false, nil
	}
	var ok bool
	var err error
	if rd, isData := m.(*wire.ResyncData); isData {
		// The memory the chunk was received into goes to the pair,
		// which writes from it and gives it back to the pool once the
		// write has landed. Not taken, the journal gets the chunk (and
		// the memory is left to the collector).
		ok, err = l.pair.WriteDirectBuf(ctx, seq, off, c.cfg.Writer.Now(), data, rd.TakeBuffer())
	} else {
		ok, err = l.pair.WriteDirect(ctx, seq, off, c.cfg.Writer.Now(), data, zero)
	}
	if !ok || err != nil {
		if err != nil {
			return true, &pairError{disk: l.disk, err: err}
		}
		return false, nil
	}
	n := int64(len(data))
	if zero {
		c.zeroBytes.Add(n)
		n = 0
	} else {
		c.resyncBytes.Add(n)
	}
	s.touched(m.DiskID(), off, int64(len(data)))
	s.journaled(m.DiskID(), seq, n)
	return true, nil
}

// endDirect commits, when a connection ends, l's direct resync writes
// not yet committed, so the next connection resumes after them. A
// failure stops the pair (the writer says why); it resumes from its
// last commit.
func endDirect(c *Client, l *link) {
	if l.pair == nil || l.isEnded() {
		return
	}
	if err := l.pair.EndDirect(); err != nil {
		c.cfg.Logger.Warn("committing direct resync writes as the connection ended", "pair", l.id, "disk", l.disk, "err", err)
	}
}
