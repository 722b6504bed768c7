package ckpt

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"sync"
	"sync/atomic"

	"github.com/cgoa/cgoa/ha/transport"
)

// A Link is a direct TCP replication link between the writer and one
// replica, beside the HA transport: the HA transport's datagrams carry at
// most transport.MaxPayload bytes each and every one is sealed, sent on
// both base paths and checked, which bounds a checkpoint stream far below
// what the backplane carries (see the bench). Over a Link the Service runs
// with large frames (Options.MaxFrame up to MaxLinkFrame) and a large
// window; the protocol above is the same (go-back-N, resync), so the HA
// transport remains the fallback.
//
// Frames are authenticated with the shelf key: each side sends a hello
// (magic, slot, 16-byte nonce); keys for each direction are derived from
// the shelf key, both nonces and both slots; every frame is
//
//	len u32 | payload | tag (16 bytes: HMAC-SHA256 over counter u64, len, payload)
//
// with a per-direction counter, so nothing can be injected, replayed or
// reordered without the key. A bad frame ends the link (the writer's
// retransmission and resync cover what was lost with it).
//
// Send never blocks: frames queue up to a bound and beyond it are dropped
// and counted (a loss the protocol retransmits), so a slow peer never
// holds the Node's lock.
type Link struct {
	conn net.Conn
	peer uint8
	tx   hash.Hash
	rx   hash.Hash
	txN  uint64
	rxN  uint64

	mu      sync.Mutex
	cond    *sync.Cond
	buf     []byte
	closed  bool
	limit   int
	dropped atomic.Uint64
	wdone   chan struct{}
	werr    error
	r       *bufio.Reader
	closeMu sync.Once
}

// MaxLinkFrame bounds a Link frame's payload.
const MaxLinkFrame = 1 << 20

const (
	linkMagic = "CKL1"
	helloLen  = 4 + 1 + 16
	tagLen    = 16
)

// Errors of a Link.
var (
	ErrLinkHello = errors.New("ckpt: link: bad hello")
	ErrLinkAuth  = errors.New("ckpt: link: frame fails authentication")
	ErrLinkFrame = errors.New("ckpt: link: frame too large")
)

// NewLink runs the hello on conn (initiator: the side that dialled) and
// returns the Link to slot peer. The caller then starts Run.
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
	m.Write([]byte("cgoa ckpt link"))
	m.Write(ini[:])
	m.Write(res[:])
	k := m.Sum(nil)
	dir := func(label string) hash.Hash {
		m := hmac.New(sha256.New, k)
		m.Write([]byte(label))
		return hmac.New(sha256.New, m.Sum(nil))
	}
	l := &Link{conn: conn, peer: peer, limit: 64 << 20, wdone: make(chan struct{}), r: bufio.NewReaderSize(conn, 256<<10)}
	l.tx, l.rx = dir("initiator"), dir("responder")
	if !initiator {
		l.tx, l.rx = l.rx, l.tx
	}
	l.cond = sync.NewCond(&l.mu)
	go l.writer()
	return l, nil
}

// Send queues one message (Options.Send; to is ignored: a Link has one
// peer). Messages over MaxLinkFrame, or beyond the queue's bound, are
// dropped and counted.
func (l *Link) Send(_ uint8, msg []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || len(msg) > MaxLinkFrame || len(l.buf)+len(msg)+4+tagLen > l.limit {
		l.dropped.Add(1)
		return
	}
	n := len(l.buf)
	l.buf = binary.BigEndian.AppendUint32(l.buf, uint32(len(msg)))
	l.buf = append(l.buf, msg...)
	l.txN++
	l.buf = appendTag(l.buf, l.tx, l.txN, l.buf[n:])
	if n == 0 {
		l.cond.Signal()
	}
}

// Dropped counts messages Send dropped.
func (l *Link) Dropped() uint64 { return l.dropped.Load() }

func appendTag(b []byte, m hash.Hash, n uint64, lenAndPayload []byte) []byte {
	m.Reset()
	var c [8]byte
	binary.BigEndian.PutUint64(c[:], n)
	m.Write(c[:])
	m.Write(lenAndPayload)
	var sum [sha256.Size]byte
	return append(b, m.Sum(sum[:0])[:tagLen]...)
}

// writer writes what Send queued, batching whatever queued meanwhile.
func (l *Link) writer() {
	defer close(l.wdone)
	var out []byte
	for {
		l.mu.Lock()
		for len(l.buf) == 0 && !l.closed {
			l.cond.Wait()
		}
		if l.closed {
			l.mu.Unlock()
			return
		}
		out, l.buf = l.buf, out[:0]
		l.mu.Unlock()
		if _, err := l.conn.Write(out); err != nil {
			l.werr = err
			l.Close()
			return
		}
	}
}

// readFrame reads frame n: its payload (in *bufp's storage, grown as
// needed) or an error.
func readFrame(r *bufio.Reader, m hash.Hash, n uint64, bufp *[]byte) ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(h[:])
	if size > MaxLinkFrame {
		return nil, fmt.Errorf("%w: %d bytes", ErrLinkFrame, size)
	}
	need := 4 + int(size) + tagLen
	if cap(*bufp) < need {
		*bufp = make([]byte, need)
	}
	buf := (*bufp)[:need]
	copy(buf, h[:])
	if _, err := io.ReadFull(r, buf[4:]); err != nil {
		return nil, err
	}
	want := appendTag(nil, m, n, buf[:4+size])
	if !hmac.Equal(want, buf[4+size:]) {
		return nil, ErrLinkAuth
	}
	return buf[4 : 4+size], nil
}

// Run reads frames and hands each to receive (from the peer's slot)
// until the link fails or is closed; it returns why.
func (l *Link) Run(receive func(from uint8, msg []byte)) error {
	buf := make([]byte, 0, 64<<10)
	for {
		l.rxN++
		msg, err := readFrame(l.r, l.rx, l.rxN, &buf)
		if err != nil {
			l.Close()
			return fmt.Errorf("ckpt: link to slot %d: %w", l.peer, err)
		}
		receive(l.peer, msg)
	}
}

// Close closes the connection and stops the writer.
func (l *Link) Close() error {
	var err error
	l.closeMu.Do(func() {
		l.mu.Lock()
		l.closed = true
		l.cond.Broadcast()
		l.mu.Unlock()
		err = l.conn.Close()
	})
	return err
}
