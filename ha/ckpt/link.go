package ckpt

import (
	"bufio"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/cgoa/cgoa/ha/transport"
)

// A Link is a direct TCP replication link between the writer and one
// replica, beside the HA transport: the HA transport's datagrams carry at
// most transport.MaxPayload bytes each and every one is sealed, sent on
// both base paths and checked, which bounds a checkpoint stream far below
// what the backplane carries (see the bench). Over a Link the Service runs
// with large frames (Options.MaxFrame up to MaxLinkFrame) and a large
// window; the protocol above is the same (go-back-N, resync), so the HA
// transport remains the fallback. Node.ServeLink runs a Node over a Link.
//
// Messages travel in batches: whatever queued while the previous batch
// was being sealed goes out in one writev(2) under one tag, stream
// frames' data straight from the ring (outBatch, Reclaim; a run of
// records, Options.Runs, is one piece of the ring). Each side
// sends a hello (magic, slot, 16-byte nonce); keys for each direction are
// derived from the shelf key, both nonces and both slots (HMAC-SHA256);
// every batch is
//
//	len u32 | { msglen u32 | msg }... | tag (16 bytes)
//
// where the top bit of len (batchMore) says that the writer already has
// the next batch under way (its queue was found too full while this one
// queued): a replica then need not ack at this batch's end, and acks
// every linkAckBytes instead (an ack costs both sides a system call and
// the writer a walk over the acknowledged frames), and
// the tag is AES-128-GMAC (GCM with nothing to encrypt) over len and
// the messages, under the direction's key with the batch's counter as the
// nonce: nothing can be injected, replayed or reordered without the key.
// GMAC rather than HMAC-SHA256 because it runs at several GB/s where HMAC
// ran at about 0.5 GB/s here, and the tag is per batch, not per message
// (see make bench-ckpt). A bad batch ends the link (the writer's
// retransmission and resync cover what was lost with it).
//
// Two goroutines send: the sealer takes the queue as a batch and computes
// its tag while the writer writes the batch before (so GHASH overlaps the
// system call rather than adding to it: about a fifth of the time a
// sending goroutine did alone at a GB/s), then hands it to the writer.
//
// A receiving side authenticates and takes a small batch inside its read
// buffer (peekBatch: no copy; one read fetches as many batches as are
// waiting), growing that buffer to twice its largest batch, at most
// peekBuffer; a side that receives only acks keeps 4 KiB. A larger batch
// (a stream's) is read straight into a buffer of its own (readBatch).
//
// Send never blocks: messages queue up to a bound (linkQueue) and beyond
// it are dropped and counted (a loss the protocol retransmits), so a slow
// peer never holds the Node's lock; Room tells the Service how much the
// queue takes now, so a Service using it never has a message dropped, and
// the queue, not the kernel's socket buffer, is all the memory the stream
// needs beside the ring. Urgent messages (a synchronous record, an ack, a
// poll) found with nothing queued are written at once from Send (a
// non-blocking write) rather than by the writer goroutine: one goroutine
// hand-off less on the synchronous write's round trip. Reclaim does not
// wait for the socket either: at most for one tag or one non-blocking
// writev(2) under way.
type Link struct {
	conn net.Conn
	raw  syscall.RawConn // nil: no inline writes
	peer uint8
	tx   cipher.AEAD
	rx   cipher.AEAD
	// The same keys' GMAC by ghash_amd64.s (nil where the CPU lacks
	// it: tx and rx then compute the tags).
	txMAC *gmac
	rxMAC *gmac
	txN   uint64 // owned by whoever holds the writing token
	rxN   uint64
	// Buffers of the tag computations (not on the stack: they would
	// escape through the cipher.AEAD interface, one allocation each).
	txNonce [12]byte
	txTag   [tagLen]byte
	rxNonce [12]byte
	// The inline write and its result (one closure, made once).
	inlineWrite func(fd uintptr) bool
	inlineN     int
	inlineErr   error

	mu    sync.Mutex
	cond  *sync.Cond // the sealer waits here: something to seal or pull
	wcond *sync.Cond // the writer waits here: a sealed batch
	q     *outBatch  // the batch filling
	free  []*outBatch
	// ready is the batch sealed and not yet taken by the writer
	// (its ring slices guarded by mu).
	ready    *outBatch
	sealBusy bool   // the sealer has taken a batch and not yet made it ready
	sealMin  uint64 // that batch's lowest ring position (noRef: none)
	pending  []byte // sealed bytes an inline write left unwritten
	inline   []byte
	writing  bool // the writer goroutine or an inline write owns the socket
	pulling  bool // the sealer is pulling from the ring (OnRoom): Offer takes
	closed   bool
	starved  bool // Room was asked while something was queued
	onRoom   func()
	dropped  atomic.Uint64
	// held is the lowest ring position a queued or written batch still
	// refers to (noRef: none); Reclaim reads it without the lock.
	held atomic.Uint64
	// reclaimed counts the batches Reclaim copied out of the ring.
	reclaimed atomic.Uint64
	// batches and batchBytes count the batches written (the writer
	// goroutine's) and their bytes.
	batches, batchBytes atomic.Uint64
	// sealMu is held while the sealer computes a batch's tag (reads its
	// ring data); iovMu while a writev(2) is under way. Reclaim takes
	// them (after mu) to copy what a batch being sealed or written still
	// has to send out of the ring.
	sealMu  sync.Mutex
	sealing *outBatch // the batch the sealer has taken (under sealMu)
	iovMu   sync.Mutex
	flying  *outBatch // the batch being written (under iovMu)
	iovecs  []syscall.Iovec
	// The batch writeBatch writes, its error and writevOnce as a func
	// value (made once: no allocation per batch); the writer's own.
	wb       *outBatch
	wbErr    error
	writevFn func(fd uintptr) bool
	wdone    chan struct{} // closed when the sealer and the writer have stopped
	running  atomic.Int32  // of the two
	werr     error
	r        *bufio.Reader
	closeMu  sync.Once
}

// MaxLinkFrame bounds one message on a Link.
const MaxLinkFrame = 1 << 20

// maxLinkBatch bounds a batch as received: a full batch, or one message
// of MaxLinkFrame bytes.
const maxLinkBatch = MaxLinkFrame + 4 + linkBatchBytes

// linkQueue bounds the bytes a batch holds copied (heads and lengths,
// messages of Send, data that Offer does not leave in the ring), its tag
// included: the copies are part of the node's memory budget beside the
// ring. It is a batch's buffer from the start (outHeads), so a stream
// never grows it: a resync's sections go 8 KiB to a batch rather than 16,
// and only a message larger than that (a section over 8 KiB, copied in a
// resync) grows the buffer, once, to its size. At 16 KiB each of a
// Link's three batches grew to it in the resync every new replica gets,
// leaving its first 8 KiB as garbage: 72 KiB against 24; over 14
// alternating pairs of make bench-ckpt, rss.growth median 4.31 MiB and
// none over the 4.4 bound, against 4.36 and 3 over.
const linkQueue = outHeads

// linkBatchBytes bounds a batch (head, messages, tag) whose ring frames
// stay in the ring until written (Offer). Several 64 KiB sections go in
// one batch: one wake-up and one writev(2) for them. A receiver reads a
// batch this large straight into a buffer of its own (readBatch). At
// 512 KiB rather than 256 a stream of 1 KiB records costs the writer
// about a tenth less CPU per MB (fewer hand-offs between the writing
// goroutine, the sealer and the writer, fewer system calls): in 20 s
// async.1k streams (CGOA_BENCH_CKPT_ONLY), 4 alternating pairs with each
// process on a CPU of its own, 1363-1559 MB/s against 1178-1401, and 2
// pairs unpinned, 1192-1223 against 1099-1150.
const linkBatchBytes = 512 << 10

// minRef is the smallest ring data Offer leaves in the ring (writev
// from there); shorter data is copied (an iovec costs about as much).
const minRef = 512

// maxRefs bounds the ring slices of one batch (two iovecs each, within
// IOV_MAX): a batch of runs (Options.Runs) holds a handful; sent a
// frame per record, about 64 KiB of 1 KiB records. A batch's segments
// are sized once, and a Link has three batches (filling, sealing,
// writing): 64 keeps their segments within the budget's slack that 128
// overran (rss.growth up to 4.41 MiB against the 4.4 bound of a 4 MiB
// ring, 4.23-4.38 at 64 in six runs of make bench-ckpt).
const maxRefs = 64

// noRef: no ring memory referred to.
const noRef = math.MaxUint64

// An outBatch is a batch filling or being written: its bytes are buf's
// pieces (the batch head, each message's length and head, messages
// copied) with, between them, data slices left in the ring until
// written (refs). Ring slices are only read while Link.iovMu is held
// (tag, writev), and Link.Reclaim copies them out before the ring
// reuses their bytes.
type outBatch struct {
	buf    []byte
	segs   []outSeg
	mark   int      // start of buf's piece not yet in segs
	size   int      // bytes of head and messages (0: empty)
	refs   int      // ring slices
	minPos uint64   // lowest ring position referred to (noRef: none)
	iov    [][]byte // sealed: what remains to be written
	iovs   [][]byte // iov's storage (iov is consumed from the front)
	sealed bool
	// pend: sealed bytes of inline writes to write before this batch.
	pend []byte
}

type outSeg struct {
	lo, hi int    // buf[lo:hi], if ref is nil
	ref    []byte // ring data
}

func newOutBatch() *outBatch {
	// Sized once (no garbage growing them while a stream runs): a batch
	// of 1 KiB records' segments, and room for the heads of as many
	// (a stream of runs copies nothing else) or for linkQueue of copies
	// (a resync's sections); only a larger message grows buf (room).
	return &outBatch{buf: make([]byte, 0, outHeads), segs: make([]outSeg, 0, 2*maxRefs+2), iovs: make([][]byte, 0, 2*maxRefs+2), minPos: noRef}
}

// outHeads is a batch's buffer at first: its head, tag and maxRefs
// messages' lengths and heads.
const outHeads = 8 << 10

// room makes room in b.buf for n more bytes: a message larger than
// linkQueue grows it to that message's size.
func (b *outBatch) room(n int) {
	if len(b.buf)+n <= cap(b.buf) {
		return
	}
	nb := make([]byte, len(b.buf), max(linkQueue, len(b.buf)+n+tagLen))
	copy(nb, b.buf)
	b.buf = nb
}

func (b *outBatch) empty() bool { return b.size == 0 }

func (b *outBatch) reset() {
	clear(b.segs) // no references kept to ring memory
	b.buf, b.segs, b.mark, b.size, b.refs, b.minPos = b.buf[:0], b.segs[:0], 0, 0, 0, noRef
	clear(b.iovs[:cap(b.iovs)])
	b.iov = b.iovs[:0]
	b.sealed = false
}

// add appends a message of head and data: data stays where it is (the
// ring, at position pos) if ref, else it is copied.
func (b *outBatch) add(head, data []byte, ref bool, pos uint64) {
	if b.size == 0 {
		b.reset()
		b.buf = append(b.buf, 0, 0, 0, 0)
		b.size = batchHead
	}
	n := len(head) + len(data)
	if ref {
		b.room(4 + len(head))
	} else {
		b.room(4 + n)
	}
	b.buf = binary.BigEndian.AppendUint32(b.buf, uint32(n))
	b.buf = append(b.buf, head...)
	if ref {
		b.segs = append(b.segs, outSeg{lo: b.mark, hi: len(b.buf)}, outSeg{ref: data})
		b.mark = len(b.buf)
		b.refs++
		b.minPos = min(b.minPos, pos)
	} else {
		b.buf = append(b.buf, data...)
	}
	b.size += 4 + n
}

// fits reports whether a message of n bytes (left in the ring if ref)
// joins non-empty batch b.
func (b *outBatch) fits(n int, ref bool) bool {
	if b.size+4+n+tagLen > linkBatchBytes {
		return false
	}
	if ref {
		return b.refs < maxRefs
	}
	return len(b.buf)+4+n+tagLen <= linkQueue
}

// own copies the ring data of unsealed batch b into a buffer of its own.
func (b *outBatch) own() {
	if b.refs == 0 {
		return
	}
	nb := make([]byte, 0, b.size+tagLen)
	for _, sg := range b.segs {
		if sg.ref != nil {
			nb = append(nb, sg.ref...)
		} else {
			nb = append(nb, b.buf[sg.lo:sg.hi]...)
		}
	}
	nb = append(nb, b.buf[b.mark:]...)
	clear(b.segs)
	b.buf, b.segs, b.mark, b.refs, b.minPos = nb, b.segs[:0], 0, 0, noRef
}

// ownIOV copies what sealed batch b has still to write into a buffer of
// its own.
func (b *outBatch) ownIOV() {
	if b.refs == 0 {
		return
	}
	n := 0
	for _, v := range b.iov {
		n += len(v)
	}
	c := make([]byte, 0, n)
	for _, v := range b.iov {
		c = append(c, v...)
	}
	clear(b.iov)
	b.iov = append(b.iov[:0], c)
	b.refs, b.minPos = 0, noRef
}

const (
	linkMagic = "CKL4" // 4: the stream carries runs (KindRun), which a replica of CKL3 cannot take
	helloLen  = 4 + 1 + 16
	tagLen    = 16
	batchHead = 4
	batchMore = 1 << 31 // in len: the next batch follows at once
)

// linkAckBytes is how much a replica takes over a Link between acks while
// batches keep coming (a quarter of a 4 MiB ring's in-flight half: the
// writer's flow control never waits on it).
const linkAckBytes = 256 << 10

// linkAcks paces a replica's acks over a Link: at the end of a batch when
// no other follows at once (the writer may be waiting for this one), else
// every linkAckBytes while batches stream.
type linkAcks struct{ unacked int }

// took counts a batch of n bytes (batchMore: more) and reports whether to
// ack after it.
func (a *linkAcks) took(n int, more bool) bool {
	a.unacked += n
	if !more || a.unacked >= linkAckBytes {
		a.unacked = 0
		return true
	}
	return false
}

// Errors of a Link.
var (
	ErrLinkHello = errors.New("ckpt: link: bad hello")
	ErrLinkAuth  = errors.New("ckpt: link: batch fails authentication")
	ErrLinkFrame = errors.New("ckpt: link: malformed batch")
)

// NewLink runs the hello on conn (initiator: the side that dialled) and
// returns the Link to slot peer. The caller then starts Run (or
// Node.ServeLink).
func NewLink(conn net.Conn, key transport.Key, self, peer uint8, initiator bool) (*Link, error) {
	var mine [helloLen]byte
	copy(mine[:], linkMagic)
	mine[4] = self
	rand.Read(mine[5:])
	if _, err := conn.Write(mine[:]); err != nil {
		return nil, fmt.Errorf("ckpt: link: hello: %w", err)
	}
	var theirs [helloLen]byte
	if _, err := io.ReadFull(conn, theirs[:]); err != nil {
		return nil, fmt.Errorf("ckpt: link: hello: %w", err)
	}
	if string(theirs[:4]) != linkMagic || theirs[4] != peer {
		return nil, fmt.Errorf("%w: from slot %d, want %d", ErrLinkHello, theirs[4], peer)
	}
	ini, res := mine, theirs
	if !initiator {
		ini, res = theirs, mine
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("cgoa ckpt link 2"))
	m.Write(ini[:])
	m.Write(res[:])
	k := m.Sum(nil)
	// A small read buffer: a batch's body is read straight into the
	// batch buffer; this one holds headers and small batches (acks).
	l := &Link{conn: conn, peer: peer, wdone: make(chan struct{}), r: bufio.NewReaderSize(conn, 4<<10)}
	ib, ia := linkAEAD(k, "initiator")
	rb, ra := linkAEAD(k, "responder")
	l.tx, l.rx = ia, ra
	if fastGHASH {
		l.txMAC, l.rxMAC = newGMAC(ib), newGMAC(rb)
	}
	if !initiator {
		l.tx, l.rx = l.rx, l.tx
		l.txMAC, l.rxMAC = l.rxMAC, l.txMAC
	}
	if sc, ok := conn.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			l.raw = raw
		}
	}
	l.inlineWrite = func(fd uintptr) bool {
		l.inlineN, l.inlineErr = syscall.Write(int(fd), l.inline)
		return true // never wait for the socket here
	}
	l.writevFn = l.writevOnce
	l.iovecs = make([]syscall.Iovec, 0, 2*maxRefs+2)
	l.cond, l.wcond = sync.NewCond(&l.mu), sync.NewCond(&l.mu)
	// The three batches: one filling, one being sealed (or sealed,
	// ready), one being written.
	l.q, l.free = newOutBatch(), []*outBatch{newOutBatch(), newOutBatch()}
	l.held.Store(noRef)
	l.running.Store(2)
	go l.sealer()
	go l.writer()
	return l, nil
}

// linkAEAD is one direction's AES-128 block and GCM, keyed from the link
// key k.
func linkAEAD(k []byte, label string) (cipher.Block, cipher.AEAD) {
	m := hmac.New(sha256.New, k)
	m.Write([]byte(label))
	b, err := aes.NewCipher(m.Sum(nil)[:16])
	if err != nil {
		panic(err) // a 16-byte key always makes a cipher
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		panic(err) // AES is a 16-byte block cipher
	}
	return b, g
}

// sealBatch completes batch b with its length (and batchMore if more)
// and tag under the next counter, and sets what to write (b.iov). The
// caller is the sealer, holding sealMu.
func (l *Link) sealBatch(b *outBatch, more bool) {
	n := uint32(b.size - batchHead)
	if more {
		n |= batchMore
	}
	binary.BigEndian.PutUint32(b.buf, n)
	if b.mark < len(b.buf) {
		b.segs = append(b.segs, outSeg{lo: b.mark, hi: len(b.buf)})
		b.mark = len(b.buf)
	}
	l.txN++
	if g := l.txMAC; g != nil {
		g.reset()
		for _, sg := range b.segs {
			if sg.ref != nil {
				g.write(sg.ref)
			} else {
				g.write(b.buf[sg.lo:sg.hi])
			}
		}
		g.sum(&l.txTag, l.txN)
		b.room(tagLen)
		b.buf = append(b.buf, l.txTag[:]...)
	} else {
		b.own() // (no refs are made without the fast GMAC)
		b.buf = l.tx.Seal(b.buf, nonce(&l.txNonce, l.txN), nil, b.buf)
	}
	b.segs = append(b.segs, outSeg{lo: b.mark, hi: len(b.buf)})
	b.mark = len(b.buf)
	b.iov = b.iovs[:0]
	for _, sg := range b.segs {
		if sg.ref != nil {
			b.iov = append(b.iov, sg.ref)
		} else if sg.hi > sg.lo {
			b.iov = append(b.iov, b.buf[sg.lo:sg.hi])
		}
	}
	b.iovs = b.iov[:0]
	b.sealed = true
}

// writeBatch writes sealed batch b: writev(2) straight from the ring
// where its data lies (refs), iovMu held only during each system call
// (Reclaim may copy the rest out of the ring in between).
func (l *Link) writeBatch(b *outBatch, refs bool) error {
	if l.raw == nil || !refs {
		// One piece or a few: no ring data to guard.
		var err error
		for _, v := range b.iov {
			if _, err = l.conn.Write(v); err != nil {
				break
			}
		}
		return err
	}
	l.wb, l.wbErr = b, nil
	err := l.raw.Write(l.writevFn)
	if err == nil {
		err = l.wbErr
	}
	l.wb = nil
	return err
}

// writevOnce is l.writevFn: one writev(2) of what remains of l.wb (a
// RawConn.Write function: false waits until the socket takes more).
func (l *Link) writevOnce(fd uintptr) bool {
	b := l.wb
	l.iovMu.Lock()
	n, err := l.writev(int(fd), b.iov)
	if n > 0 {
		b.iov = consume(b.iov, n)
	}
	left := len(b.iov)
	l.iovMu.Unlock()
	switch {
	case err == syscall.EAGAIN || err == syscall.EINTR:
		return false
	case err != nil:
		l.wbErr = err
		return true
	}
	return left == 0
}

// writev writes iov to fd once, without allocating (l.iovecs is kept).
func (l *Link) writev(fd int, iov [][]byte) (int, error) {
	v := l.iovecs[:0]
	for _, b := range iov {
		if len(b) == 0 {
			continue
		}
		e := syscall.Iovec{Base: &b[0]}
		e.SetLen(len(b))
		v = append(v, e)
	}
	l.iovecs = v
	if len(v) == 0 {
		return 0, nil
	}
	n, _, errno := syscall.Syscall(syscall.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&v[0])), uintptr(len(v)))
	clear(v) // keep no pointers into the ring
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// consume drops the first n bytes of iov.
func consume(iov [][]byte, n int) [][]byte {
	i := 0
	for i < len(iov) && n >= len(iov[i]) {
		n -= len(iov[i])
		iov[i] = nil
		i++
	}
	iov = iov[i:]
	if len(iov) > 0 {
		iov[0] = iov[0][n:]
	}
	return iov
}

// Reclaim tells the Link that the ring is about to reuse the bytes of
// every record before ring position before (Options.Reclaim): a batch
// that still refers to them (queued, or not all written yet) copies
// them out first. Nothing happens when none does: the common case, as
// what the ring evicts is normally long acknowledged.
func (l *Link) Reclaim(before uint64) {
	if l.held.Load() >= before {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reclaimed.Add(1)
	l.q.own()
	l.sealMu.Lock()
	if b := l.sealing; b != nil && b.sealed {
		b.ownIOV() // (not sealed cannot be: sealMu is held from taking to sealing)
	}
	l.sealMu.Unlock()
	l.sealMin = noRef
	if b := l.ready; b != nil {
		b.ownIOV()
	}
	l.iovMu.Lock()
	if b := l.flying; b != nil {
		b.ownIOV()
	}
	l.iovMu.Unlock()
	l.held.Store(noRef)
}

// nonce puts batch counter n into a GCM nonce.
func nonce(b *[12]byte, n uint64) []byte {
	binary.BigEndian.PutUint64(b[4:], n)
	return b[:]
}

// seal completes batch b (header room, messages) with its length (and
// batchMore if more) and tag under the next counter. The caller holds the writing token.
func (l *Link) seal(b []byte, more bool) []byte {
	n := uint32(len(b) - batchHead)
	if more {
		n |= batchMore
	}
	binary.BigEndian.PutUint32(b, n)
	l.txN++
	if g := l.txMAC; g != nil {
		g.reset()
		g.write(b)
		g.sum(&l.txTag, l.txN)
		return append(b, l.txTag[:]...)
	}
	return append(b, l.tx.Seal(l.txTag[:0], nonce(&l.txNonce, l.txN), nil, b)...)
}

// open authenticates batch b (header, messages) against its tag under
// counter n.
func open(aead cipher.AEAD, g *gmac, nc *[12]byte, n uint64, b, tag []byte) bool {
	if g != nil {
		g.reset()
		g.write(b)
		return g.verify(tag, n)
	}
	_, err := aead.Open(nil, nonce(nc, n), tag, b)
	return err == nil
}

// urgent reports whether msg should not wait for the writer goroutine: a
// record of a synchronous write, an ack, a poll.
func urgent(msg []byte) bool {
	if len(msg) < 2 {
		return false
	}
	switch Kind(msg[0]) {
	case KindAck, KindPoll:
		return true
	case KindData, KindRun:
		return msg[1]&FlagSync != 0
	}
	return false
}

// Send queues one message (Options.Send; to is ignored: a Link has one
// peer). Messages over MaxLinkFrame, or beyond the queue's bound, are
// dropped and counted.
func (l *Link) Send(_ uint8, msg []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || len(msg) > MaxLinkFrame || (!l.q.empty() && !l.q.fits(len(msg), false)) {
		l.dropped.Add(1)
		return
	}
	l.put(msg, nil, false, 0)
}

// Offer queues head followed by data as one message if the batch has
// room for it now, and reports whether it did (Options.Offer: a stream
// frame of the ring record, or a run of records, at position pos). Data
// of minRef bytes or more stays in the ring until written (no copy;
// Reclaim guards it); less is copied. It takes nothing while a batch is
// being sealed, waits sealed or is being written: the sealer pulls what
// queued in the ring meanwhile (the OnRoom function) once the writer has
// taken its batch, in runs, rather than the writing application offering
// it record by record. When it had no room it calls the OnRoom function
// then.
func (l *Link) Offer(_ uint8, head, data []byte, pos uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(head) + len(data)
	if l.closed || n > MaxLinkFrame {
		l.dropped.Add(1)
		return true // as good as sent: the protocol recovers (or the link is gone)
	}
	if l.busy() && !l.pulling {
		l.starved = true
		return false
	}
	ref := l.txMAC != nil && l.raw != nil && len(data) >= minRef
	if !l.q.empty() && !l.q.fits(n, ref) {
		l.starved = true
		return false
	}
	l.put(head, data, ref, pos)
	return true
}

// put queues a message of two parts (l.mu held, room checked): written at
// once if urgent and nothing is queued, else queued for the writer (data
// left in the ring at pos if ref).
func (l *Link) put(head, data []byte, ref bool, pos uint64) {
	if l.q.empty() && len(l.pending) == 0 && !l.busy() && l.raw != nil && urgent(head) {
		l.writeInline(head, data)
		return
	}
	was := l.q.empty()
	l.q.add(head, data, ref, pos)
	if ref && pos < l.held.Load() {
		l.held.Store(pos)
	}
	if was {
		l.cond.Signal()
	}
}

// busy reports whether a batch is being sealed, waits sealed or is being
// written (l.mu held).
func (l *Link) busy() bool { return l.sealBusy || l.ready != nil || l.writing }

// writeInline writes a message as a batch of its own without waiting (l.mu
// held, nothing queued, sealed or being written). What the socket does not take at
// once is left for the writer goroutine.
func (l *Link) writeInline(head, data []byte) {
	l.writing = true
	b := append(l.inline[:0], 0, 0, 0, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(len(head)+len(data)))
	b = append(b, head...)
	b = append(b, data...)
	b = l.seal(b, false)
	l.inline = b
	err := l.raw.Write(l.inlineWrite)
	n, werr := l.inlineN, l.inlineErr
	l.writing = false
	if err == nil && werr != nil && werr != syscall.EAGAIN && werr != syscall.EINTR {
		err = werr
	}
	if err != nil {
		l.werr = err
		l.closed = true
		l.conn.Close()
		l.cond.Broadcast()
		l.wcond.Broadcast()
		return
	}
	n = max(n, 0)
	if n < len(b) {
		l.pending = append(l.pending, b[n:]...)
		l.cond.Signal()
	}
}

// Room is how large a message Send takes now without dropping it
// (Options.Room; to is ignored). When it is less than a message the
// Service wanted to send, the Link calls the function given to OnRoom once
// the writer has taken the queue.
func (l *Link) Room(_ uint8) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.q.empty() {
		return MaxLinkFrame
	}
	l.starved = true
	return max(min(linkQueue-len(l.q.buf), linkBatchBytes-l.q.size)-4-tagLen, 0)
}

// OnRoom sets the function the Link calls (from its sealer goroutine,
// no lock of the Link held) when Offer refused a message (the queue was
// full, or a batch was being sealed or written) and the sealer is free
// again: the Service pumps again (Node.ServeLink sets it), filling the
// queue (Offer takes from it then).
func (l *Link) OnRoom(f func()) {
	l.mu.Lock()
	l.onRoom = f
	l.mu.Unlock()
}

// Reclaimed counts the times the ring was about to reuse data the Link
// was still to send (Reclaim copied it out).
func (l *Link) Reclaimed() uint64 { return l.reclaimed.Load() }

// Batches reports the batches the writer goroutine wrote and their bytes
// (inline writes not counted).
func (l *Link) Batches() (n, bytes uint64) { return l.batches.Load(), l.batchBytes.Load() }

// Dropped counts messages Send dropped.
func (l *Link) Dropped() uint64 { return l.dropped.Load() }

// stopped closes wdone once both the sealer and the writer have stopped.
func (l *Link) stopped() {
	if l.running.Add(-1) == 0 {
		close(l.wdone)
	}
}

// sealer takes what Send and Offer queued as a batch, seals it (its tag)
// and hands it to the writer, while the writer writes the batch before:
// the tag's GHASH overlaps the writev(2) rather than adding to it on one
// goroutine. When Offers were refused while it had a batch sealed and
// waiting, it pulls what queued in the ring since (the OnRoom function)
// as soon as the writer takes that batch, in runs.
func (l *Link) sealer() {
	defer l.stopped()
	for {
		l.mu.Lock()
		for !l.closed && (l.ready != nil || (l.q.empty() && len(l.pending) == 0 && !l.starved)) {
			l.cond.Wait()
		}
		if l.closed {
			l.mu.Unlock()
			return
		}
		if l.starved && l.q.empty() && len(l.pending) == 0 {
			// Offers were refused while the last batch was sealed or
			// waited: pull what queued in the ring since, on this
			// goroutine (a hand-off to another costs a wake-up per
			// batch, and on a busy machine a wait for a core).
			l.starved = false
			f := l.onRoom
			l.pulling = true
			l.mu.Unlock()
			if f != nil {
				f()
			}
			l.mu.Lock()
			l.pulling = false
			l.mu.Unlock()
			continue
		}
		b := l.q
		l.q = l.free[len(l.free)-1]
		l.free = l.free[:len(l.free)-1]
		l.q.reset()
		b.pend = append(b.pend[:0], l.pending...)
		l.pending = l.pending[:0]
		l.sealBusy, l.sealMin = true, b.minPos
		// More is waiting in the ring (the queue was found full): the
		// next batch follows this one at once (batchMore: the replica
		// need not ack at this one's end).
		more := l.starved
		// Taken under sealMu, held until sealed: Reclaim finds the
		// batch either queued or sealing, sealed.
		l.sealMu.Lock()
		l.sealing = b
		l.mu.Unlock()
		if !b.empty() {
			l.sealBatch(b, more)
		} else {
			b.sealed = true
		}
		l.sealMu.Unlock()
		l.mu.Lock()
		l.sealMu.Lock()
		l.sealing = nil
		l.sealMu.Unlock()
		l.sealBusy = false
		l.ready = b
		l.wcond.Signal()
		l.mu.Unlock()
	}
}

// writer writes the batches the sealer sealed, in order.
func (l *Link) writer() {
	defer l.stopped()
	for {
		l.mu.Lock()
		for !l.closed && l.ready == nil {
			l.wcond.Wait()
		}
		if l.closed {
			l.mu.Unlock()
			return
		}
		b := l.ready
		l.ready = nil
		l.writing = true
		l.iovMu.Lock()
		l.flying = b
		l.iovMu.Unlock()
		l.cond.Signal() // the sealer may take (or pull) the next batch
		l.mu.Unlock()
		var err error
		if len(b.pend) > 0 {
			_, err = l.conn.Write(b.pend)
		}
		if err == nil && !b.empty() {
			l.batches.Add(1)
			l.batchBytes.Add(uint64(b.size))
			err = l.writeBatch(b, b.refs > 0)
		}
		l.mu.Lock()
		l.iovMu.Lock()
		l.flying = nil
		l.iovMu.Unlock()
		l.writing = false
		b.reset()
		b.pend = b.pend[:0]
		l.free = append(l.free, b)
		// Only the filling batch and the one sealed refer to the ring now.
		held := l.q.minPos
		if r := l.ready; r != nil {
			held = min(held, r.minPos)
		}
		if l.sealBusy {
			held = min(held, l.sealMin)
		}
		l.held.Store(held)
		if l.starved || len(l.pending) > 0 || !l.q.empty() {
			// An Offer refused while this batch was written (with the
			// sealer idle: nothing else wakes it), or what queued.
			l.cond.Signal()
		}
		l.mu.Unlock()
		if err != nil {
			l.werr = err
			l.Close()
			return
		}
	}
}

// readBatch reads batch n: its messages (in *bufp's storage, grown as
// needed) and its batchMore flag, or an error.
func readBatch(r *bufio.Reader, aead cipher.AEAD, g *gmac, nc *[12]byte, n uint64, bufp *[]byte) ([]byte, bool, error) {
	var h [batchHead]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, false, err
	}
	size := binary.BigEndian.Uint32(h[:])
	more := size&batchMore != 0
	size &^= batchMore
	if size > maxLinkBatch {
		return nil, false, fmt.Errorf("%w: %d bytes", ErrLinkFrame, size)
	}
	need := batchHead + int(size) + tagLen
	if cap(*bufp) < need {
		// At least doubled (up to a full batch): a stream's batches,
		// of slightly different sizes, do not each make a new one.
		*bufp = make([]byte, max(need, min(2*cap(*bufp), linkBatchBytes)))
	}
	buf := (*bufp)[:need]
	copy(buf, h[:])
	if _, err := io.ReadFull(r, buf[batchHead:]); err != nil {
		return nil, false, err
	}
	if !open(aead, g, nc, n, buf[:batchHead+size], buf[batchHead+size:]) {
		return nil, false, ErrLinkAuth
	}
	return buf[batchHead : batchHead+size], more, nil
}

// nextMsg splits the first message off an authenticated batch body.
func nextMsg(body []byte) (msg, rest []byte, err error) {
	if len(body) < 4 {
		return nil, nil, fmt.Errorf("%w: %d bytes left", ErrLinkFrame, len(body))
	}
	n := binary.BigEndian.Uint32(body)
	if uint64(n) > uint64(len(body)-4) {
		return nil, nil, fmt.Errorf("%w: message of %d bytes, %d left", ErrLinkFrame, n, len(body)-4)
	}
	return body[4 : 4+n], body[4+n:], nil
}

// runBatches reads batches and hands each authenticated body (and its
// batchMore flag) to take until the link fails or is closed; it returns
// why. The body is valid only during take.
func (l *Link) runBatches(take func(body []byte, more bool) error) error {
	var buf []byte // grows to the largest batch that does not fit l.r
	for {
		l.rxN++
		body, more, n, err := l.peekBatch()
		if err == nil && n == 0 {
			body, more, err = readBatch(l.r, l.rx, l.rxMAC, &l.rxNonce, l.rxN, &buf)
		}
		if err == nil {
			err = take(body, more)
		}
		if err == nil && n > 0 {
			_, err = l.r.Discard(n)
		}
		if err != nil {
			l.Close()
			return fmt.Errorf("ckpt: link to slot %d: %w", l.peer, err)
		}
	}
}

// peekBuffer bounds the read buffer a Link grows to for batches taken in
// place. Larger batches are read straight into a buffer of their own
// (readBatch): a batch taken in place that lies across the read buffer's
// end is moved to its start before the rest is read (bufio's fill), a
// second copy of its bytes; one read straight into its buffer has none.
const peekBuffer = 64 << 10

// peekBatch authenticates the next batch inside the read buffer (no copy,
// and one read fetches as many batches as the buffer holds) and returns
// its body and flag and how many bytes to discard after it; n is 0 when
// the batch is too large for that (readBatch reads it instead). The side
// that receives small batches grows its buffer to twice its largest
// (up to peekBuffer); one that receives only acks keeps a small one.
func (l *Link) peekBatch() (body []byte, more bool, n int, err error) {
	h, err := l.r.Peek(batchHead)
	if err != nil {
		return nil, false, 0, err
	}
	size := binary.BigEndian.Uint32(h)
	more = size&batchMore != 0
	size &^= batchMore
	if size > maxLinkBatch {
		return nil, false, 0, fmt.Errorf("%w: %d bytes", ErrLinkFrame, size)
	}
	need := batchHead + int(size) + tagLen
	if need > l.r.Size() && 2*need <= peekBuffer {
		// At least doubled each time: a few layers at most. What the
		// old reader holds is read first.
		l.r = bufio.NewReaderSize(l.r, min(max(2*need, 2*l.r.Size()), peekBuffer))
	}
	if need > l.r.Size() {
		return nil, false, 0, nil
	}
	b, err := l.r.Peek(need)
	if err != nil {
		return nil, false, 0, err
	}
	if !open(l.rx, l.rxMAC, &l.rxNonce, l.rxN, b[:batchHead+size], b[batchHead+size:]) {
		return nil, false, 0, ErrLinkAuth
	}
	return b[batchHead : batchHead+size], more, need, nil
}

// Run reads messages and hands each to receive (from the peer's slot)
// until the link fails or is closed; it returns why.
func (l *Link) Run(receive func(from uint8, msg []byte)) error {
	return l.runBatches(func(body []byte, _ bool) error {
		for len(body) > 0 {
			msg, rest, err := nextMsg(body)
			if err != nil {
				return err
			}
			receive(l.peer, msg)
			body = rest
		}
		return nil
	})
}

// Close closes the connection and stops the writer.
func (l *Link) Close() error {
	var err error
	l.closeMu.Do(func() {
		l.mu.Lock()
		l.closed = true
		l.cond.Broadcast()
		l.wcond.Broadcast()
		l.mu.Unlock()
		err = l.conn.Close()
	})
	return err
}

// LinkOptions are Service options for a stream over a Link: large frames
// (a 64 KiB section in one frame), a large window, acks every
// linkAckBytes and at the end of a batch no other follows at once
// (ServeLink; every 1024 frames at most), go-back on nacks only, records
// sent in runs straight from the ring (Options.Runs).
func LinkOptions(self uint8, ring int) Options {
	return Options{Self: self, Ring: ring, MaxFrame: 256 << 10, Window: 4096, AckEvery: 1024, Reliable: true, Runs: true}
}
