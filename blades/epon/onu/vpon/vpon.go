// Package vpon is a virtual-time EPON for tests and benchmarks: one OLT
// and its ONUs (blades/epon/onu) at given fibre lengths on a
// discrete-event scheduler counting nanoseconds. Downstream frames reach
// every ONU after its one-way delay (5 µs/km); upstream frames occupy the
// fibre at line rate and reach the OLT after the delay, and frames that
// overlap there collide: both are lost, as REGISTER_REQs in a discovery
// window do. Every upstream frame can be seen (OnUpstream) to check that
// bursts never overlap.
//
// The OLT is anything with Receive and Tick (blades/epon/olt.OLT); it
// reads OLTClock, sends through OLTPort:
//
//	p := vpon.New(vpon.Config{Seed: 1})
//	o, _ := olt.New(cfg, p.OLTClock(), p.OLTPort())
//	p.SetOLT(o)
//	u, _ := p.AddONU(onu.Config{MAC: mac}, 10) // 10 km
//	u.PowerOn()
//	p.RunUntil(2 * time.Second)
//
// Each ONU's oscillator has a random offset from the OLT's, so ONUs must
// learn their MPCP time from the OLT's timestamps as real ones do.
package vpon

import (
	"container/heap"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/cgoa/cgoa/blades/epon/onu"
	"github.com/cgoa/cgoa/netstack/mpcp"
)

// OLT is the OLT side the PON drives.
type OLT interface {
	Receive(llid uint16, frame []byte, arrival int64)
	Tick() int64
}

// Config of the virtual PON.
type Config struct {
	LineRate int64 // bit/s, 1e9 when zero
	Seed     uint64
}

// Upstream is one upstream frame as the OLT's receiver saw it.
type Upstream struct {
	ONU  int
	LLID uint16
	// Start and End are the global times (ns) its first and last bit
	// reached the OLT (preamble to FCS).
	Start, End int64
	Collided   bool
	// RegisterReq says the frame was a REGISTER_REQ (which may collide
	// in a discovery window by design).
	RegisterReq bool
}

// Stats are the medium's counters.
type Stats struct {
	UpFrames, DownFrames uint64
	Collisions           uint64 // upstream frames lost to overlap
	RequestCollisions    uint64 // of those, REGISTER_REQs
	DroppedCut           uint64 // frames lost on a cut fibre
}

type event struct {
	t   int64
	seq uint64
	fn  func()
}

type eventHeap []event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if h[i].t != h[j].t {
		return h[i].t < h[j].t
	}
	return h[i].seq < h[j].seq
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(event)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

type node struct {
	onu     *onu.ONU
	delay   int64 // one-way, ns
	off     int64 // raw clock offset, quanta
	phase   int64 // ns: the recovered clock's edges lag the OLT's by the delay
	cut     bool
	tickAt  int64 // scheduled tick (ns), -1 none
	tickGen uint64
}

// PON is the virtual EPON.
type PON struct {
	cfg    Config
	now    int64
	seq    uint64
	events eventHeap
	olt    OLT
	oltAt  int64
	oltGen uint64
	nodes  []*node
	rng    *rand.Rand

	busyUntil int64
	busyFrame *Upstream

	stats Stats
	// OnUpstream, when set, sees every upstream frame at the OLT.
	OnUpstream func(Upstream)
}

// New returns an empty PON at time 0.
func New(cfg Config) *PON {
	if cfg.LineRate == 0 {
		cfg.LineRate = 1e9
	}
	return &PON{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x9e3779b9)), oltAt: -1}
}

// Now is the global virtual time.
func (p *PON) Now() time.Duration { return time.Duration(p.now) }

// Stats returns the medium's counters.
func (p *PON) Stats() Stats { return p.stats }

type oltClock struct{ p *PON }

func (c oltClock) Now() int64 { return c.p.now / 16 }

// OLTClock is the OLT's clock: global time in quanta.
func (p *PON) OLTClock() interface{ Now() int64 } { return oltClock{p} }

type oltPort struct{ p *PON }

func (o oltPort) Send(llid uint16, mode bool, frame []byte) error {
	p := o.p
	p.stats.DownFrames++
	for _, n := range p.nodes {
		if n.cut {
			p.stats.DroppedCut++
			continue
		}
		n := n
		p.at(p.now+n.delay, func() {
			n.onu.Receive(llid, mode, frame, p.onuNow(n))
			p.tickONU(n)
		})
	}
	return nil
}

// OLTPort is the OLT's downstream port (olt.Port).
func (p *PON) OLTPort() interface {
	Send(llid uint16, mode bool, frame []byte) error
} {
	return oltPort{p}
}

// SetOLT attaches the OLT and gives it its first Tick.
func (p *PON) SetOLT(o OLT) {
	p.olt = o
	p.tickOLT()
}

type onuClock struct {
	p *PON
	n *node
}

func (c onuClock) Now() int64 { return c.p.onuNow(c.n) }

// onuNow is the ONU's raw clock. An ONU recovers its clock from the
// downstream signal, so its quantum edges are the OLT's delayed by the
// fibre: that is what makes ranging exact to the quantum.
func (p *PON) onuNow(n *node) int64 {
	t := p.now - n.phase
	q := t / 16
	if t < 0 && t%16 != 0 {
		q--
	}
	return q + n.off
}

type onuTx struct {
	p *PON
	i int
}

func (t onuTx) Transmit(llid uint16, frame []byte, at int64) {
	p := t.p
	n := p.nodes[t.i]
	if n.cut {
		p.stats.DroppedCut++
		return
	}
	start := (at-n.off)*16 + n.phase + n.delay
	// Preamble, frame and FCS at line rate.
	dur := int64(math.Ceil(float64(len(frame)+4+8) * 8e9 / float64(p.cfg.LineRate)))
	u := &Upstream{ONU: t.i, LLID: llid, Start: start, End: start + dur}
	if len(frame) >= 16 && frame[12] == 0x88 && frame[13] == 0x08 && mpcp.Opcode(uint16(frame[14])<<8|uint16(frame[15])) == mpcp.OpRegisterReq {
		u.RegisterReq = true
	}
	p.stats.UpFrames++
	p.at(start, func() {
		if u.Start < p.busyUntil {
			u.Collided = true
			p.busyFrame.Collided = true
		}
		if u.End > p.busyUntil {
			p.busyUntil, p.busyFrame = u.End, u
		}
	})
	p.at(u.End, func() {
		if p.OnUpstream != nil {
			p.OnUpstream(*u)
		}
		if u.Collided {
			p.stats.Collisions++
			if u.RegisterReq {
				p.stats.RequestCollisions++
			}
			return
		}
		if p.olt != nil {
			p.olt.Receive(llid, frame, u.Start/16)
			p.tickOLT()
		}
	})
}

// AddONU puts an ONU at km of fibre (powered off: call PowerOn). Its
// Seed, when zero, comes from the PON's.
func (p *PON) AddONU(cfg onu.Config, km float64) (*onu.ONU, error) {
	n := &node{delay: int64(math.Round(km * 5000)), off: p.rng.Int64N(1 << 30), tickAt: -1}
	if km < 0 || km > 100 || math.IsNaN(km) {
		return nil, fmt.Errorf("vpon: ONU at %g km, want 0..100", km)
	}
	n.phase = n.delay % 16
	if cfg.Seed == 0 {
		cfg.Seed = p.rng.Uint64()
	}
	i := len(p.nodes)
	o, err := onu.New(cfg, onuClock{p, n}, onuTx{p, i})
	if err != nil {
		return nil, err
	}
	n.onu = o
	p.nodes = append(p.nodes, n)
	return o, nil
}

// ONU returns the i-th ONU added.
func (p *PON) ONU(i int) *onu.ONU { return p.nodes[i].onu }

// Delay is ONU i's one-way delay.
func (p *PON) Delay(i int) time.Duration { return time.Duration(p.nodes[i].delay) }

// Cut cuts (or mends) ONU i's fibre: nothing passes either way.
func (p *PON) Cut(i int, cut bool) { p.nodes[i].cut = cut }

func (p *PON) at(t int64, fn func()) {
	p.seq++
	heap.Push(&p.events, event{t: max(t, p.now), seq: p.seq, fn: fn})
}

// At runs fn at global time t (test actions: traffic, power cuts);
// afterwards every node is asked for its next deadline.
func (p *PON) At(t time.Duration, fn func()) {
	p.at(int64(t), func() {
		fn()
		p.Poke()
	})
}

// Poke re-reads every node's next deadline (after acting on a node from
// outside the event loop).
func (p *PON) Poke() {
	for _, n := range p.nodes {
		p.tickONU(n)
	}
	if p.olt != nil {
		p.tickOLT()
	}
}

// PokeONU re-reads ONU i's next deadline (after Enqueue, say).
func (p *PON) PokeONU(i int) { p.tickONU(p.nodes[i]) }

func (p *PON) tickONU(n *node) {
	next := n.onu.Tick()
	t := max((next-n.off)*16+n.phase, p.now+1)
	if n.tickAt >= 0 && n.tickAt <= t && n.tickAt >= p.now {
		return // an earlier (or equal) tick is already scheduled
	}
	n.tickGen++
	gen := n.tickGen
	n.tickAt = t
	p.at(t, func() {
		if gen != n.tickGen {
			return
		}
		n.tickAt = -1
		p.tickONU(n)
	})
}

func (p *PON) tickOLT() {
	t := p.olt.Tick() * 16
	if p.oltAt >= 0 && p.oltAt <= t && p.oltAt >= p.now {
		return
	}
	p.oltGen++
	gen := p.oltGen
	p.oltAt = t
	p.at(t, func() {
		if gen != p.oltGen {
			return
		}
		p.oltAt = -1
		p.tickOLT()
	})
}

// RunUntil runs events up to global time t.
func (p *PON) RunUntil(t time.Duration) {
	end := int64(t)
	for len(p.events) > 0 && p.events[0].t <= end {
		e := heap.Pop(&p.events).(event)
		p.now = e.t
		e.fn()
	}
	p.now = max(p.now, end)
}

// RunWhile runs until cond is false or time t, whichever first; it
// reports whether cond became false.
func (p *PON) RunWhile(t time.Duration, cond func() bool) bool {
	end := int64(t)
	for cond() {
		if len(p.events) == 0 || p.events[0].t > end {
			p.now = max(p.now, end)
			return false
		}
		e := heap.Pop(&p.events).(event)
		p.now = e.t
		e.fn()
	}
	return true
}
