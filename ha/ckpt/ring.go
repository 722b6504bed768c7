package ckpt

import (
	"encoding/binary"
	"errors"
	"runtime"
	"unsafe"
)

// ring is the replication stream's fixed budget: one preallocated byte
// buffer holding the most recent records of every checkpoint in order.
// Positions are absolute byte offsets (they only grow); a record lives at
// pos%len(buf) and never wraps (a pad fills the end instead). Appending
// evicts the oldest records; the Service resyncs any replica that had not
// taken an evicted record from the compacted sections.
//
// Record layout: len u32 (whole record), op u8, flags u8, checkpoint name
// length u8, section name length u8, seq u64, checkpoint name, section
// name, data. A len of padMark fills the rest of the buffer.
type ring struct {
	buf        []byte
	head, tail uint64
	// mask is len(buf)-1 if len(buf) is a power of two (as the default
	// is), else 0: an offset is then pos&mask, not a division (off).
	mask    uint64
	records int
	// The last record decoded: a record is sent, then stepped over, at
	// the same position (one decode, not two).
	memo   record
	memoOK bool
	// evicted: the record append is evicting.
	evicted record
	// reclaim, if set, is called before bytes that held the records
	// before a position are reused (they may still be being sent).
	reclaim func(before uint64)
	// sup marks superseded records (a later record replaced or deleted
	// their section, so evicting one needs no look-up of the section),
	// one bit per supGrain bytes of the buffer: no record is shorter, so
	// no two start in one grain. The mark is kept beside the
	// records, not in them: a record's bytes are sent as they lie in the
	// ring (runs), and may be being hashed or written while it is marked.
	sup []uint64
	// idx notes where each of the last idxSize records appended starts
	// (idxPos) and its length with its sync flag (idxLen, idxSync), entry
	// j of idxN ever appended at j%idxSize: sendRun walks a run's records
	// here, a few dense lines, rather than through their headers in the
	// buffer, a line each, written moments before on another core, where
	// each miss waits for the one before (a header gives the next one's
	// place). idxHint is where the last walk stopped.
	idxPos  []uint64
	idxLen  []uint32
	idxN    uint64
	idxHint uint64
	// idxTail is the index entry of the record at tail, if the index
	// still holds it (checked: idxPos[idxTail%idxSize] == tail): a
	// superseded record is evicted from its entry, its header in the
	// buffer not read. That header was written a whole ring ago and is
	// out of every cache; reading it was most of an eviction's cost.
	idxTail uint64
	// seeSuperseded: append passes superseded records to evicted too
	// (a snapshot in progress may still hold their data).
	seeSuperseded bool
}

// idxSize: entries of the record index, 12 bytes each. 4096 holds a whole
// 4 MiB ring of 1 KiB records (evictions read no header) and four of a
// Link's 512 KiB batches (sendRun finds where the Link's window starts:
// the Link pulls what was appended while it wrote the batches before).
const idxSize = 4096

// idxSync marks a synchronous record's length in ring.idxLen.
const idxSync = 1 << 31

const (
	recHeader = 16
	padMark   = 0xffffffff
	// supGrain: a record is at least recHeader bytes.
	supGrain = recHeader
)

// record is a decoded ring record; its slices alias the ring and are only
// valid until the next append.
type record struct {
	op      Op
	flags   uint8
	seq     uint64
	ckpt    []byte
	section []byte
	data    []byte
	pos     uint64 // where it starts
	next    uint64 // where the next record starts
}

var errRecordTooBig = errors.New("ckpt: record larger than half the ring")

// newRing makes a ring of size bytes. Its buffer is mapped memory outside
// the Go heap where the platform allows (ringMemory): a pointer-free
// buffer of fixed size needs no collector, and in the heap it would count
// as live data, so the collector would let as much garbage again pile up
// before collecting (GOGC=100 paces on twice the live heap): with a 4 MiB
// ring a blade's RSS grew by about twice the ring instead of once.
func newRing(size int) *ring {
	buf, unmap := ringMemory(size)
	r := &ring{buf: buf, sup: make([]uint64, (size/supGrain+63)/64), idxPos: make([]uint64, idxSize), idxLen: make([]uint32, idxSize)}
	if size > 0 && size&(size-1) == 0 {
		r.mask = uint64(size - 1)
	}
	if unmap != nil {
		runtime.AddCleanup(r, unmap, buf) // buf is not in the heap: it does not keep r alive
	}
	return r
}

func (r *ring) size() uint64 { return uint64(len(r.buf)) }

// off is position pos's offset in the buffer. Every record appended or
// evicted takes a few: as a 64-bit division each, they were about a
// tenth of a write's own cost (BenchmarkServiceWrite).
func (r *ring) off(pos uint64) uint64 {
	if r.mask != 0 {
		return pos & r.mask
	}
	return pos % uint64(len(r.buf))
}

// used is the number of bytes between tail and head (records and pads).
func (r *ring) used() uint64 { return r.head - r.tail }

// reset drops every record (a writer's new generation starts afresh).
func (r *ring) reset() {
	r.tail, r.records, r.memoOK = r.head, 0, false
	r.idxN, r.idxHint, r.idxTail = 0, 0, 0
}

// indexed returns the index entry of the record that starts at pos, if
// the index still holds it.
func (r *ring) indexed(pos uint64) (uint64, bool) {
	if j := r.idxHint; r.idxHolds(j) && r.idxPos[j%idxSize] == pos {
		return j, true
	}
	lo, hi := r.idxOldest(), r.idxN
	for lo < hi {
		m := lo + (hi-lo)/2
		switch p := r.idxPos[m%idxSize]; {
		case p == pos:
			return m, true
		case p < pos:
			lo = m + 1
		default:
			hi = m
		}
	}
	return 0, false
}

// at decodes the record at pos (tail <= pos < head), skipping a pad.
func (r *ring) at(pos uint64) (record, bool) {
	if r.memoOK && r.memo.pos == pos && pos >= r.tail {
		return r.memo, true
	}
	if !r.decode(pos, &r.memo) {
		return record{}, false // (the memo is as it was: decode writes only a record it found)
	}
	r.memoOK = true
	return r.memo, true
}

// decode decodes the record at pos into rec, skipping a pad (no memo);
// false if there is none. (Into rec, not returned: a record returned by
// value was copied twice on its way to evictOne's caller, a third of the
// cost of evicting one.)
func (r *ring) decode(pos uint64, rec *record) bool {
	for pos < r.head {
		off := r.off(pos)
		if r.size()-off < recHeader || binary.BigEndian.Uint32(r.buf[off:]) == padMark {
			pos += r.size() - off
			continue
		}
		b := r.buf[off:]
		n := binary.BigEndian.Uint32(b)
		c, s := int(b[6]), int(b[7])
		rec.op, rec.flags, rec.seq, rec.pos, rec.next = Op(b[4]), b[5], binary.BigEndian.Uint64(b[8:]), pos, pos+uint64(n)
		rec.ckpt = b[recHeader : recHeader+c]
		rec.section = b[recHeader+c : recHeader+c+s]
		rec.data = b[recHeader+c+s : n]
		return true
	}
	return false
}

// evictOne drops the oldest record into r.evicted; false if there is
// none. (The memo is left alone: it holds the record being sent.)
func (r *ring) evictOne() bool {
	if !r.decode(r.tail, &r.evicted) {
		r.tail = r.head
		return false
	}
	r.followTail(r.evicted.pos)
	r.dropTo(r.evicted.next)
	return true
}

// dropTo moves tail past the record just evicted, to next.
func (r *ring) dropTo(next uint64) {
	r.tail = next
	r.records--
	if r.memoOK && r.memo.pos < r.tail {
		r.memoOK = false // its bytes are about to be reused
	}
}

// idxHolds reports whether index entry j is one the index still holds.
func (r *ring) idxHolds(j uint64) bool {
	return j >= r.idxOldest() && j < r.idxN
}

// idxOldest is the oldest entry the index holds (idxN if it is empty).
func (r *ring) idxOldest() uint64 { return r.idxN - min(r.idxN, idxSize) }

// followTail moves idxTail past the entry of the record at pos, just
// evicted: the next one's. A hint that went stale (the index did not reach
// the tail) is found again by a search once the index's oldest entry is
// no later than the tail.
func (r *ring) followTail(pos uint64) {
	j := r.idxTail
	if !r.idxHolds(j) || r.idxPos[j%idxSize] != pos {
		lo := r.idxOldest()
		if lo == r.idxN || r.idxPos[lo%idxSize] > pos {
			return
		}
		var ok bool
		if j, ok = r.indexed(pos); !ok {
			return
		}
	}
	r.idxTail = j + 1
}

// dropSuperseded evicts the record at tail (after the pad there, if any)
// without reading it if the index holds it (idxTail) and it is
// superseded; false if it did not.
func (r *ring) dropSuperseded() bool {
	j := r.idxTail
	if !r.idxHolds(j) {
		return false
	}
	// The entry after the last record evicted: the record at tail, or
	// the one at the buffer's start if a pad fills tail to the end. (A
	// stale idxTail, left behind by followTail, is an earlier record's.)
	pos := r.idxPos[j%idxSize]
	if pad := r.size() - r.off(r.tail); pos != r.tail && (r.off(pos) != 0 || pos != r.tail+pad) {
		return false
	}
	if !r.superseded(pos) {
		return false
	}
	r.idxTail++
	r.dropTo(pos + uint64(r.idxLen[j%idxSize]&^idxSync))
	return true
}

// holds reports whether b's bytes are in the ring's buffer.
func (r *ring) holds(b []byte) bool {
	if len(b) == 0 || len(r.buf) == 0 {
		return false
	}
	p, lo := uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(unsafe.Pointer(unsafe.SliceData(r.buf)))
	return p >= lo && p < lo+uintptr(len(r.buf))
}

// recordAt returns the offset in the buffer of the record whose data
// (a slice the ring holds, its names names bytes long) is data; false if
// the ring does not hold it.
func (r *ring) recordAt(data []byte, names int) (uint64, bool) {
	if !r.holds(data) {
		return 0, false
	}
	off := int(uintptr(unsafe.Pointer(unsafe.SliceData(data))) - uintptr(unsafe.Pointer(unsafe.SliceData(r.buf))))
	if hdr := off - recHeader - names; hdr >= 0 {
		return uint64(hdr), true
	}
	return 0, false
}

// supersede marks the record whose data (a slice the ring holds, its
// names names bytes long) is as superseded.
func (r *ring) supersede(data []byte, names int) {
	if hdr, ok := r.recordAt(data, names); ok {
		g := hdr / supGrain
		r.sup[g/64] |= 1 << (g % 64)
	}
}

// superseded reports whether the record at ring position pos is marked.
func (r *ring) superseded(pos uint64) bool {
	g := r.off(pos) / supGrain
	return r.sup[g/64]&(1<<(g%64)) != 0
}

// append stores a record, first evicting as many old records as it needs
// (each one passed to evicted before its bytes are reused), and returns
// the record's data as stored in the ring (valid until it is evicted).
func (r *ring) append(op Op, flags uint8, seq uint64, ckpt, section string, data []byte, evicted func(*record)) ([]byte, error) {
	n := uint64(recHeader + len(ckpt) + len(section) + len(data))
	if n > r.size()/2 {
		return nil, errRecordTooBig
	}
	start := r.head
	if off := r.off(start); r.size()-off < n {
		start += r.size() - off // pad to the buffer's end
	}
	for start+n-r.tail > r.size() {
		if !r.seeSuperseded && r.dropSuperseded() {
			continue
		}
		if !r.evictOne() {
			break
		}
		evicted(&r.evicted) // (a pointer to a local would escape: garbage)
	}
	if r.reclaim != nil && start+n > r.size() {
		// The pad and the record overwrite what the previous lap held
		// from head-size to start+n-size.
		r.reclaim(start + n - r.size())
	}
	if off := r.off(r.head); start != r.head && r.size()-off >= 4 {
		binary.BigEndian.PutUint32(r.buf[off:], padMark)
	}
	if r.tail == r.head {
		r.tail, r.idxTail = start, r.idxN
	}
	so := r.off(start)
	g := so / supGrain
	r.sup[g/64] &^= 1 << (g % 64)
	b := r.buf[so:]
	binary.BigEndian.PutUint32(b, uint32(n))
	b[4], b[5], b[6], b[7] = byte(op), flags, byte(len(ckpt)), byte(len(section))
	binary.BigEndian.PutUint64(b[8:], seq)
	copy(b[recHeader:], ckpt)
	copy(b[recHeader+len(ckpt):], section)
	stored := b[recHeader+len(ckpt)+len(section) : n : n]
	copy(stored, data)
	r.head = start + n
	r.records++
	j := r.idxN % idxSize
	r.idxPos[j], r.idxLen[j] = start, uint32(n)
	if flags&FlagSync != 0 {
		r.idxLen[j] |= idxSync
	}
	r.idxN++
	return stored, nil
}
