package ckpt

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cgoa/cgoa/ha/transport"
)

var linkKey = transport.Key("link-test-shelf-key-0123456789ab")

// linkPair dials a Link over TCP on loopback: writer slot 1, replica 2.
func linkPair(t testing.TB, replicaKey transport.Key) (*Link, *Link, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		l   *Link
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			ch <- res{nil, err}
			return
		}
		l, err := NewLink(c, replicaKey, 2, 1, false)
		ch <- res{l, err}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewLink(c, linkKey, 1, 2, true)
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	t.Cleanup(func() { w.Close() })
	if r.l != nil {
		t.Cleanup(func() { r.l.Close() })
	}
	return w, r.l, r.err
}

// TestNodesOverLink: a writer and a replica Node over a TCP Link with
// large frames (ServeLink): synchronous writes are on the replica when
// they return, asynchronous writes of 64 KiB sections arrive whole and in
// order, and nothing is dropped for lack of queue (Room).
func TestNodesOverLink(t *testing.T) { testNodesOverLink(t) }

// TestNodesOverLinkStdGCM: the same where the CPU lacks the fast GHASH:
// crypto/cipher's GCM tags the batches, and every frame is copied into
// its batch (none is written from the ring).
func TestNodesOverLinkStdGCM(t *testing.T) {
	if !fastGHASH {
		t.Skip("TestNodesOverLink runs this way here")
	}
	fastGHASH = false
	defer func() { fastGHASH = true }()
	testNodesOverLink(t)
}

func testNodesOverLink(t *testing.T) {
	wl, rl, err := linkPair(t, linkKey)
	if err != nil {
		t.Fatal(err)
	}
	w := NewNode(LinkOptions(1, 4<<20))
	t.Cleanup(w.Close)
	r := NewNode(LinkOptions(2, 4<<20))
	t.Cleanup(r.Close)
	w.ServeLink(wl)
	r.ServeLink(rl)
	w.Do(func(s *Service, now time.Duration) {
		s.Promote(now)
		s.Open(now, "c", time.Minute)
		s.SetReplicas(now, []uint8{2})
	})
	r.Do(func(s *Service, _ time.Duration) { s.Follow(1) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var last uint64
	for i := range 200 {
		seq, err := w.Write(ctx, "c", "big", payload(uint64(i), 64<<10), false)
		if err != nil {
			t.Fatal(err)
		}
		last = seq
	}
	if err := w.WaitDurable(ctx, last); err != nil {
		t.Fatalf("WaitDurable(%d) = %v", last, err)
	}
	if got, err := r.Read("c", "big"); err != nil || !bytes.Equal(got, payload(199, 64<<10)) {
		t.Fatalf("replica big section after WaitDurable: %d bytes %v, want write 199 whole", len(got), err)
	}
	for i := range 50 {
		data := payload(uint64(1000+i), 1024)
		if _, err := w.Write(ctx, "c", "sync", data, true); err != nil {
			t.Fatalf("sync Write(%d) = %v", i, err)
		}
		if got, err := r.Read("c", "sync"); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("replica after sync write %d: %d bytes %v", i, len(got), err)
		}
	}
	if d := wl.Dropped() + rl.Dropped(); d != 0 {
		t.Errorf("links dropped %d messages, want 0", d)
	}
	if (wl.txMAC != nil) != fastGHASH {
		t.Errorf("link uses the fast GMAC: %v, want %v", wl.txMAC != nil, fastGHASH)
	}
}

// TestLinkWrongKey: a replica with another key cannot read the writer's
// frames (the link fails authentication instead of applying them).
func TestLinkWrongKey(t *testing.T) {
	wl, rl, err := linkPair(t, transport.Key("some-other-shelf-key-0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	wl.Send(2, []byte("hello"))
	errc := make(chan error, 1)
	go func() { errc <- rl.Run(func(uint8, []byte) { t.Error("a frame under another key was accepted") }) }()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrLinkAuth) {
			t.Errorf("Run() = %v, want %v", err, ErrLinkAuth)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run() still running after a forged frame")
	}
}

// FuzzLinkBatch feeds readBatch and the message split arbitrary bytes: a
// clear error, never a panic, and what comes out is inside the input.
// readBatch checks tags with crypto/cipher's GCM, the in-place path with
// the fast GMAC where the CPU has it: both must agree.
func FuzzLinkBatch(f *testing.F) {
	key := make([]byte, 32)
	blk, tx := linkAEAD(key, "initiator")
	var fast *gmac
	if fastGHASH {
		fast = newGMAC(blk)
	}
	good := func(msgs ...string) []byte {
		b := []byte{0, 0, 0, 0}
		for _, m := range msgs {
			b = binary.BigEndian.AppendUint32(b, uint32(len(m)))
			b = append(b, m...)
		}
		binary.BigEndian.PutUint32(b, uint32(len(b)-4))
		var nc [12]byte
		return tx.Seal(b, nonce(&nc, 1), nil, b)
	}
	f.Add(good("hello"))
	f.Add(good("a", "", "bc"))
	f.Add(good())
	f.Add(good(string(bytes.Repeat([]byte("0123456789abcdef"), 70)), "x")) // past 256 bytes: the 16-block loop
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 4, 0, 0, 0, 9})
	f.Fuzz(func(t *testing.T, b []byte) {
		var buf []byte
		var nc [12]byte
		body, more, err := readBatch(bufio.NewReader(bytes.NewReader(b)), tx, nil, &nc, 1, &buf)
		// The in-place path (a Link's read buffer) agrees with it.
		l := &Link{r: bufio.NewReaderSize(bytes.NewReader(b), 16), rx: tx, rxMAC: fast, rxN: 1}
		pbody, pmore, n, perr := l.peekBatch()
		if perr == nil && n == 0 {
			var buf2 []byte
			pbody, pmore, perr = readBatch(l.r, tx, fast, &l.rxNonce, 1, &buf2)
		}
		if (err == nil) != (perr == nil) || (err == nil && (!bytes.Equal(body, pbody) || more != pmore)) {
			t.Fatalf("peekBatch(%x) = %x, %v, %v; readBatch = %x, %v, %v", b, pbody, pmore, perr, body, more, err)
		}
		if err != nil {
			return
		}
		if len(body) > maxLinkBatch || !bytes.Equal(body, b[4:4+len(body)]) {
			t.Fatalf("readBatch(%x) = %x", b, body)
		}
		for len(body) > 0 {
			msg, rest, err := nextMsg(body)
			if err != nil {
				return
			}
			if len(msg)+4+len(rest) != len(body) {
				t.Fatalf("nextMsg(%x) = %x, %x", body, msg, rest)
			}
			body = rest
		}
	})
}

// BenchmarkLinkAsync streams asynchronous writes from a writer Node to a
// replica Node over a Link on loopback TCP (for profiling: go test -run
// '^$' -bench LinkAsync -cpuprofile; the figures that count are make
// bench-ckpt's, between namespaces).
func BenchmarkLinkAsync(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("%dk", size>>10), func(b *testing.B) {
			wl, rl, err := linkPair(b, linkKey)
			if err != nil {
				b.Fatal(err)
			}
			const ring = 4 << 20
			w := NewNode(LinkOptions(1, ring))
			b.Cleanup(w.Close)
			r := NewNode(LinkOptions(2, ring))
			b.Cleanup(r.Close)
			w.ServeLink(wl)
			r.ServeLink(rl)
			w.Do(func(s *Service, now time.Duration) {
				s.Promote(now)
				s.Open(now, "c", time.Minute)
				s.SetReplicas(now, []uint8{2})
			})
			r.Do(func(s *Service, _ time.Duration) { s.Follow(1) })
			ctx := context.Background()
			data := make([]byte, size)
			names := sectionNames(256)
			window := ring / 2 / size
			seqs := make([]uint64, window)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			var seq uint64
			for i := range b.N {
				seq, err = w.Write(ctx, "c", names[i%len(names)], data, false)
				if err != nil {
					b.Fatal(err)
				}
				if i >= window {
					if err := w.WaitDurable(ctx, seqs[i%window]); err != nil {
						b.Fatal(err)
					}
				}
				seqs[i%window] = seq
			}
			if err := w.WaitDurable(ctx, seq); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			// CPU of both sides (and the kernel's TCP work) per write:
			// steadier than the rate on a busy machine.
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			// Polls: acks the writer had to ask for (a batch it said more
			// would follow, and nothing did, would show here).
			b.ReportMetric(float64(w.Status().Counters.Polls), "polls")
			if st := w.Status(); st.Counters.Resyncs > 1 || wl.Dropped() > 0 || wl.Reclaimed() > 0 {
				b.Logf("resyncs %d retransmits %d dropped %d reclaimed %d", st.Counters.Resyncs, st.Counters.Retransmits, wl.Dropped(), wl.Reclaimed())
			}
		})
	}
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// stallConn holds its reads while stalled is set.
type stallConn struct {
	net.Conn
	mu      sync.Mutex
	stalled bool
	resume  chan struct{}
}

func (c *stallConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	st := c.stalled
	c.mu.Unlock()
	if st {
		<-c.resume
	}
	return c.Conn.Read(b)
}

// TestLinkRingReuse: a Link writes stream frames straight from the ring
// (writev). A replica that stops reading leaves batches queued and half
// written while the writer laps its ring many times: those bytes must be
// copied out before the ring reuses them (Reclaim). Every value the
// replica applies is whole and belongs to its section, the link never
// fails authentication, and the replica converges to the writer.
func TestLinkRingReuse(t *testing.T) {
	if !fastGHASH {
		t.Skip("no AVX-512 VPCLMULQDQ: a Link copies every frame (nothing is written from the ring)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(acc)
			return
		}
		c.(*net.TCPConn).SetReadBuffer(32 << 10)
		acc <- c
	}()
	wc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	wc.(*net.TCPConn).SetWriteBuffer(32 << 10)
	rc, ok := <-acc
	if !ok {
		t.Fatal("accept failed")
	}
	sc := &stallConn{Conn: rc, resume: make(chan struct{})}
	rch := make(chan *Link, 1)
	go func() {
		l, err := NewLink(sc, linkKey, 2, 1, false)
		if err != nil {
			t.Error(err)
		}
		rch <- l
	}()
	wl, err := NewLink(wc, linkKey, 1, 2, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wl.Close() })
	rl := <-rch
	if rl == nil {
		t.FailNow()
	}
	t.Cleanup(func() { rl.Close() })

	const ring, size, sections = 256 << 10, 4 << 10, 64
	w := NewNode(LinkOptions(1, ring))
	t.Cleanup(w.Close)
	r := NewNode(LinkOptions(2, ring))
	t.Cleanup(r.Close)
	var bad []string
	r.Do(func(s *Service, _ time.Duration) {
		s.Follow(1)
		s.onApply = func(section string, data []byte) {
			id, err := checkWhole(data)
			if err == nil && section != fmt.Sprintf("s%02d", id%sections) {
				err = fmt.Errorf("value %d in section %s", id, section)
			}
			if err != nil && len(bad) < 10 {
				bad = append(bad, err.Error())
			}
		}
	})
	wdone, rdone := w.ServeLink(wl), r.ServeLink(rl)
	w.Do(func(s *Service, now time.Duration) {
		s.Promote(now)
		s.Open(now, "c", time.Minute)
		s.SetReplicas(now, []uint8{2})
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	write := func(from, to int) uint64 {
		var seq uint64
		for i := from; i < to; i++ {
			seq, err = w.Write(ctx, "c", fmt.Sprintf("s%02d", i%sections), payload(uint64(i), size-8), false)
			if err != nil {
				t.Fatalf("Write(%d) = %v", i, err)
			}
		}
		return seq
	}
	// The stream runs, then the replica stops reading while the writer
	// laps its ring 32 times.
	if err := w.WaitDurable(ctx, write(0, 200)); err != nil {
		t.Fatal(err)
	}
	sc.mu.Lock()
	sc.stalled = true
	sc.mu.Unlock()
	write(200, 200+32*ring/size)
	if wl.Reclaimed() == 0 {
		t.Errorf("Reclaimed() = 0 after lapping the ring with the replica stalled: the test did not stall the link")
	}
	sc.mu.Lock()
	sc.stalled = false
	sc.mu.Unlock()
	close(sc.resume)
	last := write(200+32*ring/size, 300+32*ring/size)
	if err := w.WaitDurable(ctx, last); err != nil {
		t.Fatalf("WaitDurable(%d) = %v", last, err)
	}
	select {
	case err := <-wdone:
		t.Fatalf("writer's link ended: %v", err)
	case err := <-rdone:
		t.Fatalf("replica's link ended: %v", err)
	default:
	}
	r.Do(func(*Service, time.Duration) {
		if len(bad) > 0 {
			t.Errorf("replica applied bad values: %v", bad)
		}
	})
	for i := range sections {
		name := fmt.Sprintf("s%02d", i)
		want, _ := w.Read("c", name)
		if got, err := r.Read("c", name); err != nil || !bytes.Equal(got, want) {
			t.Errorf("replica section %s: %d bytes %v, want the writer's %d", name, len(got), err, len(want))
		}
	}
	t.Logf("reclaimed %d, resyncs %d", wl.Reclaimed(), w.Status().Counters.Resyncs)
}
