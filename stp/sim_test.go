package stp

import (
	"fmt"
	"net"
	"slices"
	"testing"
	"time"
)

// This file is a discrete-event simulator of bridges joined by LAN
// segments, on virtual time, and an independent oracle that computes the
// spanning tree 802.1D defines for a topology.

type simClock struct{ now time.Time }

func (c *simClock) Now() time.Time { return c.now }

// attach names a bridge's port: bridge index and port number.
type attach struct {
	br   int
	port uint16
}

func (a attach) String() string { return fmt.Sprintf("b%d/p%d", a.br, a.port) }

// segment is a LAN: a point-to-point link or a shared medium.
type segment struct {
	ends []attach
	// carrier: the ports see link up. passes: frames get through. A cut
	// cable loses both; a silent failure keeps carrier and loses frames.
	carrier, passes bool
}

type delivery struct {
	at    time.Time
	to    attach
	frame []byte
}

type transition struct {
	at       time.Time
	a        attach
	from, to PortState
}

type network struct {
	t       testing.TB
	clock   *simClock
	start   time.Time
	ids     []BridgeID
	bridges []*Bridge
	segs    []*segment
	portSeg map[attach]int
	prio    map[attach]uint8
	cost    map[attach]uint32
	queue   []delivery
	states  map[attach]PortState // as the data plane was told
	log     []transition
	ageing  map[int][]time.Duration // SetAgeingTime calls per bridge
	flushes map[attach]int
	wire    [][]byte // every frame sent, when keepWire
	events  int

	keepWire   bool
	checkLoops bool
}

const linkDelay = time.Millisecond

type simEnv struct {
	n  *network
	br int
}

func (e *simEnv) SendBPDU(port uint16, b *BPDU) error {
	n := e.n
	fr, err := MarshalFrame(n.mac(e.br), b)
	if err != nil {
		n.t.Fatalf("bridge %d port %d sent an unencodable BPDU %+v: %v", e.br, port, b, err)
	}
	if n.keepWire {
		n.wire = append(n.wire, fr)
	}
	from := attach{e.br, port}
	si, ok := n.portSeg[from]
	if !ok {
		return nil
	}
	s := n.segs[si]
	if !s.carrier || !s.passes {
		return nil
	}
	for _, to := range s.ends {
		if to != from {
			n.queue = append(n.queue, delivery{at: n.clock.now.Add(linkDelay), to: to, frame: fr})
		}
	}
	return nil
}

func (e *simEnv) SetPortState(port uint16, s PortState) error {
	a := attach{e.br, port}
	if old := e.n.states[a]; old != s {
		e.n.log = append(e.n.log, transition{e.n.clock.now, a, old, s})
		e.n.states[a] = s
	}
	return nil
}

func (e *simEnv) FlushFDB(port uint16) error {
	e.n.flushes[attach{e.br, port}]++
	return nil
}

func (e *simEnv) SetAgeingTime(d time.Duration) error {
	e.n.ageing[e.br] = append(e.n.ageing[e.br], d)
	return nil
}

func id(t testing.TB, i int) BridgeID {
	return mustBridgeID(t, DefaultPriority, net.HardwareAddr{0x02, 0, 0, 0, byte(i >> 8), byte(i)})
}

func (n *network) mac(br int) net.HardwareAddr { return n.ids[br].MAC() }

// newNet makes one bridge per id with cfg (ID filled in per bridge).
func newNet(t testing.TB, ids []BridgeID, cfg Config) *network {
	t.Helper()
	c := &simClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	n := &network{
		t: t, clock: c, start: c.now, ids: ids,
		portSeg: map[attach]int{}, prio: map[attach]uint8{}, cost: map[attach]uint32{},
		states: map[attach]PortState{}, ageing: map[int][]time.Duration{}, flushes: map[attach]int{},
		checkLoops: true, keepWire: true,
	}
	for i, bid := range ids {
		cfg.ID = bid
		b, err := New(cfg, c, &simEnv{n, i})
		if err != nil {
			t.Fatalf("New(%v): %v", bid, err)
		}
		n.bridges = append(n.bridges, b)
	}
	return n
}

// lan joins ports into one segment, adds and enables them.
func (n *network) lan(ends ...attach) int {
	n.t.Helper()
	si := len(n.segs)
	n.segs = append(n.segs, &segment{ends: ends, carrier: true, passes: true})
	for _, a := range ends {
		if _, dup := n.portSeg[a]; dup {
			n.t.Fatalf("port %v on two segments", a)
		}
		n.portSeg[a] = si
		if _, ok := n.prio[a]; !ok {
			n.prio[a] = DefaultPortPriority
		}
		if _, ok := n.cost[a]; !ok {
			n.cost[a] = DefaultPathCost(1_000_000_000)
		}
		if err := n.bridges[a.br].AddPort(PortConfig{Number: a.port, Name: a.String(), Priority: n.prio[a], PathCost: n.cost[a]}); err != nil {
			n.t.Fatal(err)
		}
		if err := n.bridges[a.br].EnablePort(a.port); err != nil {
			n.t.Fatal(err)
		}
	}
	return si
}

// link is a point-to-point segment between bridge a port pa and bridge b port pb.
func (n *network) link(a int, pa uint16, b int, pb uint16) int {
	return n.lan(attach{a, pa}, attach{b, pb})
}

func (n *network) setCarrier(si int, up bool) {
	s := n.segs[si]
	s.carrier, s.passes = up, up
	for _, a := range s.ends {
		var err error
		if up {
			err = n.bridges[a.br].EnablePort(a.port)
		} else {
			err = n.bridges[a.br].DisablePort(a.port)
		}
		if err != nil {
			n.t.Fatal(err)
		}
	}
}

// cut pulls a segment's cable: both ends see the link go down.
func (n *network) cut(si int) { n.setCarrier(si, false) }

// mend reconnects a cut segment.
func (n *network) mend(si int) { n.setCarrier(si, true) }

// silence makes a segment drop every frame while the ports keep carrier.
func (n *network) silence(si int) { n.segs[si].passes = false }

func (n *network) now() time.Duration { return n.clock.now.Sub(n.start) }

// run advances virtual time by d, delivering frames and firing timers in
// time order, and checks after every event that no loop forwards.
func (n *network) run(d time.Duration) {
	n.t.Helper()
	until := n.clock.now.Add(d)
	for {
		next, ok := time.Time{}, false
		if len(n.queue) > 0 {
			next, ok = n.queue[0].at, true
		}
		for _, b := range n.bridges {
			if t, has := b.NextDeadline(); has && (!ok || t.Before(next)) {
				next, ok = t, true
			}
		}
		if !ok || next.After(until) {
			n.clock.now = until
			return
		}
		if next.After(n.clock.now) {
			n.clock.now = next
		}
		n.events++
		if n.events > 5_000_000 {
			n.t.Fatalf("simulation runs away at %v", n.now())
		}
		if len(n.queue) > 0 && !n.queue[0].at.After(n.clock.now) {
			dl := n.queue[0]
			n.queue = n.queue[1:]
			// A frame in flight is lost if the segment failed meanwhile.
			if s := n.segs[n.portSeg[dl.to]]; s.carrier && s.passes {
				if err := n.bridges[dl.to.br].Receive(dl.to.port, dl.frame); err != nil {
					n.t.Fatalf("%v: Receive: %v", dl.to, err)
				}
			}
		} else {
			for _, b := range n.bridges {
				if t, has := b.NextDeadline(); has && !t.After(n.clock.now) {
					b.Tick()
				}
			}
		}
		if n.checkLoops {
			if loop := n.forwardingLoop(); loop != "" {
				n.t.Fatalf("at %v: forwarding loop: %s", n.now(), loop)
			}
		}
	}
}

// --- properties and the oracle ---

type unionFind []int

func newUnionFind(n int) unionFind {
	u := make(unionFind, n)
	for i := range u {
		u[i] = i
	}
	return u
}

func (u unionFind) find(i int) int {
	for u[i] != i {
		u[i] = u[u[i]]
		i = u[i]
	}
	return i
}

func (u unionFind) union(i, j int) bool {
	a, b := u.find(i), u.find(j)
	if a == b {
		return false
	}
	u[a] = b
	return true
}

// forwardingLoop reports a cycle in the graph of bridges and segments
// joined by forwarding ports that pass frames, or "".
func (n *network) forwardingLoop() string {
	u := newUnionFind(len(n.bridges) + len(n.segs))
	for a, si := range n.portSeg {
		s := n.segs[si]
		if n.states[a] != Forwarding || !s.passes || !s.carrier {
			continue
		}
		if !u.union(a.br, len(n.bridges)+si) {
			return fmt.Sprintf("port %v closes a cycle through segment %d", a, si)
		}
	}
	return ""
}

// expected is the spanning tree 802.1D defines, computed from the
// topology alone (nothing read from the bridges).
type expected struct {
	root     []BridgeID // per bridge: root of its component
	rootPort []uint16
	cost     []uint64
	role     map[attach]PortRole // RoleRoot, RoleDesignated, or RoleAlternate for any blocked port
}

func (n *network) portID(a attach) PortID { return PortID(uint16(n.prio[a])<<8 | a.port) }

func (n *network) oracle() expected {
	nb := len(n.bridges)
	live := func(s *segment) bool { return s.carrier && s.passes }
	// Components.
	u := newUnionFind(nb)
	for _, s := range n.segs {
		if live(s) {
			for _, a := range s.ends[1:] {
				u.union(s.ends[0].br, a.br)
			}
		}
	}
	e := expected{root: make([]BridgeID, nb), rootPort: make([]uint16, nb), cost: make([]uint64, nb), role: map[attach]PortRole{}}
	rootOf := map[int]int{}
	for i := range nb {
		c := u.find(i)
		if r, ok := rootOf[c]; !ok || n.ids[i] < n.ids[r] {
			rootOf[c] = i
		}
	}
	const inf = ^uint64(0)
	for i := range nb {
		e.root[i] = n.ids[rootOf[u.find(i)]]
		e.cost[i] = inf
		if rootOf[u.find(i)] == i {
			e.cost[i] = 0
		}
	}
	// Root path costs: shortest paths, entering a bridge costs the
	// receiving port's path cost.
	for range nb {
		for _, s := range n.segs {
			if !live(s) {
				continue
			}
			for _, from := range s.ends {
				for _, to := range s.ends {
					if from.br == to.br || e.cost[from.br] == inf {
						continue
					}
					if c := e.cost[from.br] + uint64(n.cost[to]); c < e.cost[to.br] {
						e.cost[to.br] = c
					}
				}
			}
		}
	}
	// Designated port per segment: lowest (root path cost, bridge id, port id).
	desig := map[int]attach{}
	for si, s := range n.segs {
		if s.carrier && !s.passes {
			// A silent segment: every port hears nobody and is
			// designated; nothing passes, so that makes no loop.
			for _, a := range s.ends {
				e.role[a] = RoleDesignated
			}
			continue
		}
		if !live(s) {
			continue
		}
		best := s.ends[0]
		for _, a := range s.ends[1:] {
			ka := [3]uint64{e.cost[a.br], uint64(n.ids[a.br]), uint64(n.portID(a))}
			kb := [3]uint64{e.cost[best.br], uint64(n.ids[best.br]), uint64(n.portID(best))}
			if slices.Compare(ka[:], kb[:]) < 0 {
				best = a
			}
		}
		desig[si] = best
		e.role[best] = RoleDesignated
	}
	// Root port per non-root bridge: lowest (cost via port, designated
	// bridge id, designated port id, own port id).
	for i := range nb {
		if e.cost[i] == 0 {
			continue
		}
		var best []uint64
		for a, si := range n.portSeg {
			d, ok := desig[si]
			if a.br != i || !ok || d.br == i {
				continue
			}
			k := []uint64{e.cost[d.br] + uint64(n.cost[a]), uint64(n.ids[d.br]), uint64(n.portID(d)), uint64(n.portID(a))}
			if best == nil || slices.Compare(k, best) < 0 {
				best, e.rootPort[i] = k, a.port
			}
		}
		if best != nil {
			e.role[attach{i, e.rootPort[i]}] = RoleRoot
		}
	}
	for a, si := range n.portSeg {
		if _, ok := e.role[a]; !ok && live(n.segs[si]) {
			e.role[a] = RoleAlternate
		}
	}
	return e
}

// checkTree compares every bridge with the oracle: root, root port, root
// path cost, each port's role and state, one designated port per segment,
// and a forwarding graph that is a tree spanning each component.
func (n *network) checkTree() {
	n.t.Helper()
	e := n.oracle()
	for i, b := range n.bridges {
		s := b.Snapshot()
		if s.Root != e.root[i] || s.RootPort != e.rootPort[i] || uint64(s.RootPathCost) != e.cost[i] {
			n.t.Errorf("at %v bridge %d (%v): root %v port %d cost %d, want root %v port %d cost %d",
				n.now(), i, s.ID, s.Root, s.RootPort, s.RootPathCost, e.root[i], e.rootPort[i], e.cost[i])
		}
		for _, p := range s.Ports {
			a := attach{i, p.Number}
			want, live := e.role[a]
			if !live {
				if p.State != Disabled {
					n.t.Errorf("at %v port %v on a dead segment is %v, want disabled", n.now(), a, p.State)
				}
				continue
			}
			got := p.Role
			if got == RoleBackup {
				got = RoleAlternate
			}
			wantState := Blocking
			if want != RoleAlternate {
				wantState = Forwarding
			}
			if got != want || p.State != wantState || n.states[a] != wantState {
				n.t.Errorf("at %v port %v: role %v state %v (data plane %v), want %v %v",
					n.now(), a, p.Role, p.State, n.states[a], want, wantState)
			}
		}
	}
	// Exactly one designated port per live segment, as the bridges see it.
	for si, s := range n.segs {
		if !s.carrier || !s.passes {
			continue
		}
		var d []attach
		for _, a := range s.ends {
			ps, _ := n.snapshotPort(a)
			if ps.Role == RoleDesignated {
				d = append(d, a)
			}
		}
		if len(d) != 1 {
			n.t.Errorf("at %v segment %d %v has designated ports %v, want exactly one", n.now(), si, s.ends, d)
		}
	}
	// The forwarding graph is a tree over each component's bridges.
	u := newUnionFind(len(n.bridges) + len(n.segs))
	for a, si := range n.portSeg {
		if n.states[a] == Forwarding && n.segs[si].passes && n.segs[si].carrier {
			if !u.union(a.br, len(n.bridges)+si) {
				n.t.Errorf("at %v forwarding loop through %v", n.now(), a)
			}
		}
	}
	for i := range n.bridges {
		for j := range n.bridges {
			if e.root[i] == e.root[j] && u.find(i) != u.find(j) {
				n.t.Errorf("at %v bridges %d and %d share root %v but are not joined by forwarding ports", n.now(), i, j, e.root[i])
			}
		}
	}
}

func (n *network) snapshotPort(a attach) (PortSnapshot, bool) {
	s := n.bridges[a.br].Snapshot()
	return s.Port(a.port)
}

// lastTransition is the time of the last data-plane port state change.
func (n *network) lastTransition() time.Duration {
	if len(n.log) == 0 {
		return 0
	}
	return n.log[len(n.log)-1].at.Sub(n.start)
}

func (n *network) tcCounts() []uint64 {
	var c []uint64
	for _, b := range n.bridges {
		c = append(c, b.Snapshot().TopologyChanges)
	}
	return c
}

func (n *network) dumpLog(since time.Duration) {
	for _, tr := range n.log {
		if d := tr.at.Sub(n.start); d >= since {
			n.t.Logf("%v %v %v -> %v", d, tr.a, tr.from, tr.to)
		}
	}
}
