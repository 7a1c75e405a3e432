package wire

import (
	"sync"
	"sync/atomic"
	"unsafe"
)

// DataAlign is the alignment of the Data of a ResyncData decoded into a
// PayloadPool's memory: enough for direct I/O (O_DIRECT) on any logical
// block size up to 4 KiB.
const DataAlign = 4096

// resyncDataHead is the bytes of a ResyncData payload before its data:
// sequence u64, offset u64, declared length u32, codec u8, reserved 3.
const resyncDataHead = 24

// pooledMin is the smallest ResyncData payload a Decoder takes from its
// PayloadPool: smaller ones are cheap to allocate.
const pooledMin = 64 << 10

// A PayloadPool lends a Decoder the memory it reads large ResyncData
// payloads into, so that a receiver that copies the data on (or writes
// it out) before it lets go of the message reuses the same memory
// instead of fresh pages for every chunk. The data of such a message
// starts at a DataAlign boundary. The receiver gives the memory back
// with ResyncData.Release once nothing refers to Data any more; a
// message never released is simply collected. A PayloadPool is safe for
// concurrent use.
type PayloadPool struct {
	p sync.Pool // *payloadBuf
}

// NewPayloadPool returns an empty pool.
func NewPayloadPool() *PayloadPool { return &PayloadPool{} }

// payloadBuf is one lent buffer: mem is the whole allocation; the body
// of a frame is a slice of it placed so its data is aligned.
type payloadBuf struct {
	mem  []byte
	pool *PayloadPool
}

// get lends a frame body of size bytes (payload, checksum, padding) whose
// byte at head sits at a DataAlign boundary.
func (p *PayloadPool) get(size, head int) (*payloadBuf, []byte) {
	pb, _ := p.p.Get().(*payloadBuf)
	if pb == nil || len(pb.mem) < size+DataAlign {
		// Rounded up to a MiB, so chunks a little apart share buffers.
		pb = &payloadBuf{mem: make([]byte, (size+DataAlign+(1<<20)-1)&^((1<<20)-1)), pool: p}
	}
	k := (DataAlign - int((uintptr(unsafe.Pointer(&pb.mem[0]))+uintptr(head))&(DataAlign-1))) & (DataAlign - 1)
	return pb, pb.mem[k : k+size : k+size]
}

// put takes a lent buffer back.
func (p *PayloadPool) put(pb *payloadBuf) { p.p.Put(pb) }

// SetPayloadPool makes the Decoder read ResyncData payloads of 64 KiB
// and more into memory lent by p (nil: fresh memory, the default). It has
// no effect while SetReuseBuffer is on.
func (d *Decoder) SetPayloadPool(p *PayloadPool) { d.pool = p }

// Release gives the memory Data was decoded into back to the Decoder's
// PayloadPool, if it came from one, and clears Data. Call it only once
// nothing refers to Data (or to Data's bytes) any more: the memory is
// lent for the next frame. It does nothing for a message that did not
// come from a pool, and nothing the second time.
func (m *ResyncData) Release() {
	pb := m.pb
	m.pb, m.Data = nil, nil
	if pb != nil {
		pb.pool.put(pb)
	}
}

// TakeBuffer hands over the pool memory Data was decoded into: from then
// on Release does nothing, and the function returned gives the memory
// back to the pool (once, however often it is called) when whoever took
// it is done with Data. It returns nil for a message that did not come
// from a pool.
func (m *ResyncData) TakeBuffer() func() {
	pb := m.pb
	if pb == nil {
		return nil
	}
	m.pb = nil
	var done atomic.Bool
	return func() {
		if !done.Swap(true) {
			pb.pool.put(pb)
		}
	}
}
