package onu

import (
	"container/heap"
	"fmt"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cgoa/cgoa/netstack/ponlink"
)

// MaxEmulated is the most ONUs one Emulator runs (one PON's split).
const MaxEmulated = 32

// Emulated is one ONU of an Emulator: its configuration and fibre length.
type Emulated struct {
	Config     Config
	DistanceKm float64
}

// EmulatorStats are the emulator's link counters.
type EmulatorStats struct {
	RxDatagrams uint64 `json:"rx_datagrams"`
	RxErrors    uint64 `json:"rx_errors"` // datagrams that are not ponlink
	TxDatagrams uint64 `json:"tx_datagrams"`
	TxErrors    uint64 `json:"tx_errors"`
}

// Emulator runs up to 32 ONUs behind one PON link on the real
// (monotonic) clock: what the host side of an emulated EPON PON port is.
// Downstream datagrams reach each ONU after its fibre delay, upstream
// frames leave at their grant times plus the delay, each datagram
// carrying the ONU's MPCP time in the ponlink timestamp. The datagram
// I/O is the caller's (HandleDatagram in, the send function out) or the
// Emulator's own socket (ListenEmulator).
type Emulator struct {
	mu     sync.Mutex
	start  time.Time
	send   func([]byte) error
	onus   []*emuONU
	events emuHeap
	seq    uint64
	wake   chan struct{}
	done   chan struct{}
	closed sync.Once
	wg     sync.WaitGroup
	conn   *ponlink.Conn

	rx, rxErr, tx, txErr atomic.Uint64
}

type emuONU struct {
	e     *Emulator
	onu   *ONU
	delay time.Duration
	due   time.Duration // next Tick, since start
	// lastTx is when the last upstream frame was scheduled to leave.
	lastTx time.Duration

	// Test traffic (loop goroutine only, but the counters).
	traffic Traffic
	gap     time.Duration // between frames at traffic.Rate
	nextTx  time.Duration // next frame due, since start
	seq     uint64
	sent    atomic.Uint64
	dropped atomic.Uint64
}

// Traffic is an emulated ONU's upstream test traffic: numbered frames
// (NumberedFrame, stream 0, numbered from 0 across SetTraffic calls) of
// Size bytes to Dst at Rate bit/s of frame bytes, offered to its upstream
// queue as evenly as the emulator's timer allows. Rate 0 stops it.
type Traffic struct {
	Rate int64
	Size int
	Dst  net.HardwareAddr
}

// TrafficStats count an emulated ONU's test frames: Sent is every frame
// numbered (the next number is Sent), Dropped those its queue refused
// (not registered, full, in loopback), which the OLT sees as lost.
type TrafficStats struct {
	Sent    uint64 `json:"sent"`
	Dropped uint64 `json:"dropped"`
}

type emuEvent struct {
	at  time.Duration
	seq uint64
	fn  func()
}

type emuHeap []emuEvent

func (h emuHeap) Len() int { return len(h) }
func (h emuHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h emuHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *emuHeap) Push(x any)   { *h = append(*h, x.(emuEvent)) }
func (h *emuHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

type emuClock struct{ e *Emulator }

func (c emuClock) Now() int64 { return int64(time.Since(c.e.start) / 16) }

type emuTx struct{ u *emuONU }

func (t emuTx) Transmit(llid uint16, frame []byte, at int64) {
	u := t.u
	e := u.e
	d := ponlink.Frame{LLID: llid, HasTimestamp: true, Timestamp: uint32(u.onu.LocalAt(at)), Payload: frame}
	b, err := d.MarshalBinary()
	if err != nil {
		e.txErr.Add(1)
		return
	}
	// An ONU's frames leave in the order it sends them: on the real
	// clock its MPCP offset follows each GATE's socket latency, so a
	// later grant can map to a raw time before the last burst's tail.
	leave := max(time.Duration(at)*16+u.delay, u.lastTx)
	u.lastTx = leave
	e.schedule(leave, func() { e.put(b) })
}

func (e *Emulator) put(b []byte) {
	if err := e.send(b); err != nil {
		e.txErr.Add(1)
		return
	}
	e.tx.Add(1)
}

// NewEmulator returns an emulator of the ONUs (powered off) sending
// datagrams with send; feed it received datagrams with HandleDatagram and
// start it with Start.
func NewEmulator(onus []Emulated, send func(datagram []byte) error) (*Emulator, error) {
	if len(onus) == 0 || len(onus) > MaxEmulated {
		return nil, fmt.Errorf("onu: emulator of %d ONUs, want 1..%d", len(onus), MaxEmulated)
	}
	e := &Emulator{start: time.Now(), send: send, wake: make(chan struct{}, 1), done: make(chan struct{})}
	for i, c := range onus {
		if c.DistanceKm < 0 || c.DistanceKm > 100 || math.IsNaN(c.DistanceKm) {
			return nil, fmt.Errorf("onu: emulated ONU %d at %g km, want 0..100", i, c.DistanceKm)
		}
		u := &emuONU{e: e, delay: time.Duration(c.DistanceKm * 5000)}
		o, err := New(c.Config, emuClock{e}, emuTx{u})
		if err != nil {
			return nil, fmt.Errorf("onu: emulated ONU %d: %w", i, err)
		}
		u.onu = o
		e.onus = append(e.onus, u)
	}
	return e, nil
}

// ListenEmulator is NewEmulator on its own ponlink socket bound to local,
// sending to remote (the OLT's socket), already started.
func ListenEmulator(local, remote string, onus []Emulated) (*Emulator, error) {
	c, err := ponlink.Listen(local, remote)
	if err != nil {
		return nil, err
	}
	e, err := NewEmulator(onus, nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	e.conn = c
	e.send = func(b []byte) error {
		var f ponlink.Frame
		if err := f.UnmarshalBinary(b); err != nil {
			return err
		}
		return c.WriteFrame(&f)
	}
	e.Start()
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		buf := make([]byte, ponlink.MaxDatagram)
		for {
			f, err := c.ReadFrame(buf)
			if err != nil {
				return
			}
			e.handle(f)
		}
	}()
	return e, nil
}

// HandleDatagram takes a datagram received from the OLT. Datagrams that
// are not ponlink are counted and dropped.
func (e *Emulator) HandleDatagram(b []byte) {
	var f ponlink.Frame
	if err := f.UnmarshalBinary(b); err != nil {
		e.rxErr.Add(1)
		return
	}
	e.handle(f)
}

func (e *Emulator) handle(f ponlink.Frame) {
	e.rx.Add(1)
	frame := append([]byte(nil), f.Payload...)
	now := time.Since(e.start)
	for _, u := range e.onus {
		u := u
		e.schedule(now+u.delay, func() {
			u.onu.Receive(f.LLID, f.Mode, frame, int64(time.Since(e.start)/16))
			u.retick()
		})
	}
}

func (u *emuONU) retick() {
	u.due = time.Duration(u.onu.Tick()) * 16
}

func (e *Emulator) schedule(at time.Duration, fn func()) {
	e.mu.Lock()
	e.seq++
	heap.Push(&e.events, emuEvent{at: at, seq: e.seq, fn: fn})
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Start runs the emulator's event loop until Close.
func (e *Emulator) Start() {
	e.wg.Add(1)
	go e.loop()
}

func (e *Emulator) loop() {
	defer e.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		e.mu.Lock()
		next := e.runDue()
		e.mu.Unlock()
		t.Reset(max(0, next-time.Since(e.start)))
		select {
		case <-e.done:
			return
		case <-e.wake:
		case <-t.C:
		}
	}
}

// runDue runs what is due and returns when next something is (with mu).
func (e *Emulator) runDue() time.Duration {
	for {
		now := time.Since(e.start)
		ran := false
		for len(e.events) > 0 && e.events[0].at <= now {
			ev := heap.Pop(&e.events).(emuEvent)
			e.mu.Unlock()
			ev.fn()
			e.mu.Lock()
			ran = true
		}
		next := now + time.Hour
		for _, u := range e.onus {
			if u.traffic.Rate > 0 && u.nextTx <= now {
				e.mu.Unlock()
				u.offer(now)
				e.mu.Lock()
				ran = true
			}
			if u.traffic.Rate > 0 {
				next = min(next, u.nextTx)
			}
			if u.due <= now {
				e.mu.Unlock()
				u.retick()
				e.mu.Lock()
				ran = true
			}
			next = min(next, u.due)
		}
		if len(e.events) > 0 {
			next = min(next, e.events[0].at)
		}
		if !ran || next > time.Since(e.start) {
			return next
		}
	}
}

// Do runs fn on ONU i (PowerOn, Enqueue, DyingGasp, Stats...) in step
// with the event loop.
func (e *Emulator) Do(i int, fn func(*ONU)) error {
	if i < 0 || i >= len(e.onus) {
		return fmt.Errorf("onu: emulator has no ONU %d of %d", i, len(e.onus))
	}
	done := make(chan struct{})
	e.schedule(0, func() {
		fn(e.onus[i].onu)
		e.onus[i].retick()
		close(done)
	})
	select {
	case <-done:
		return nil
	case <-e.done:
		return fmt.Errorf("onu: emulator closed")
	}
}

// offer enqueues the test frames due by now; a late timer sends the
// ones it owes at once, as a source that kept its rate would have.
func (u *emuONU) offer(now time.Duration) {
	t := &u.traffic
	for u.nextTx <= now && t.Rate > 0 {
		f := NumberedFrame(t.Dst, u.onu.cfg.MAC, 0, u.seq, t.Size)
		u.seq++
		u.sent.Add(1)
		if u.onu.Enqueue(f) != nil {
			u.dropped.Add(1)
		}
		u.nextTx += u.gap
	}
	u.retick()
}

// SetTraffic starts, changes or (Rate 0) stops ONU i's test traffic.
func (e *Emulator) SetTraffic(i int, t Traffic) error {
	if t.Rate < 0 || t.Rate > 10e9 {
		return fmt.Errorf("onu: traffic at %d bit/s, want 0..10e9", t.Rate)
	}
	if t.Rate > 0 && (t.Size < MinNumbered || t.Size > ponlink.MaxFrame) {
		return fmt.Errorf("onu: traffic frames of %d bytes, want %d..%d", t.Size, MinNumbered, ponlink.MaxFrame)
	}
	if t.Dst == nil {
		t.Dst = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	} else if len(t.Dst) != 6 {
		return fmt.Errorf("onu: traffic destination %v: want 6 bytes", t.Dst)
	}
	if i < 0 || i >= len(e.onus) {
		return fmt.Errorf("onu: emulator has no ONU %d of %d", i, len(e.onus))
	}
	u := e.onus[i]
	return e.Do(i, func(*ONU) {
		u.traffic = t
		if t.Rate > 0 {
			u.gap = time.Duration(float64(t.Size*8) / float64(t.Rate) * 1e9)
			u.gap = max(u.gap, time.Nanosecond)
			u.nextTx = time.Since(e.start)
		}
	})
}

// Traffic returns ONU i's test traffic counters.
func (e *Emulator) Traffic(i int) (TrafficStats, error) {
	if i < 0 || i >= len(e.onus) {
		return TrafficStats{}, fmt.Errorf("onu: emulator has no ONU %d of %d", i, len(e.onus))
	}
	u := e.onus[i]
	return TrafficStats{Sent: u.sent.Load(), Dropped: u.dropped.Load()}, nil
}

// MAC is ONU i's address.
func (e *Emulator) MAC(i int) net.HardwareAddr {
	if i < 0 || i >= len(e.onus) {
		return nil
	}
	return e.onus[i].onu.MAC()
}

// PowerOnAll powers every ONU on.
func (e *Emulator) PowerOnAll() error {
	for i := range e.onus {
		if err := e.Do(i, (*ONU).PowerOn); err != nil {
			return err
		}
	}
	return nil
}

// Len is the number of ONUs.
func (e *Emulator) Len() int { return len(e.onus) }

// Stats returns the link counters.
func (e *Emulator) Stats() EmulatorStats {
	return EmulatorStats{RxDatagrams: e.rx.Load(), RxErrors: e.rxErr.Load(), TxDatagrams: e.tx.Load(), TxErrors: e.txErr.Load()}
}

// Close stops the event loop (and closes the emulator's own socket).
func (e *Emulator) Close() error {
	var err error
	e.closed.Do(func() {
		close(e.done)
		if e.conn != nil {
			err = e.conn.Close()
		}
		e.wg.Wait()
	})
	return err
}
