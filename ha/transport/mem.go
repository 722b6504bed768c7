package transport

import (
	"errors"
	"math/rand/v2"
	"slices"
	"time"
)

// Scheduler runs functions at virtual instants. ha/sim.Loop implements it;
// the memory network never reads a real clock.
type Scheduler interface {
	Now() time.Duration
	After(d time.Duration, f func())
}

// MemNetwork is an in-memory shelf backplane with both base paths and
// fault injection, driven by a Scheduler. All randomness comes from the
// rand source it is given, so a run is reproducible from its seed.
type MemNetwork struct {
	sched    Scheduler
	rng      *rand.Rand
	nodes    map[uint8]*MemTransport
	slots    []uint8 // sorted keys of nodes, nil when stale
	loss     float64
	minDelay time.Duration
	maxDelay time.Duration
	group    map[uint8]int // partition group; absent = group 0
	oneWay   map[[2]uint8]bool
	pathDown [Paths]bool
	paused   map[uint8][]pending

	// Delivered and Dropped count frame copies (per path).
	Delivered, Dropped uint64
}

type pending struct {
	path int
	b    []byte
}

// NewMemNetwork returns a network with no faults and a fixed 50 µs delay.
func NewMemNetwork(s Scheduler, rng *rand.Rand) *MemNetwork {
	return &MemNetwork{
		sched: s, rng: rng, nodes: map[uint8]*MemTransport{},
		minDelay: 50 * time.Microsecond, maxDelay: 50 * time.Microsecond,
		group: map[uint8]int{}, oneWay: map[[2]uint8]bool{}, paused: map[uint8][]pending{},
	}
}

// MemTransport is one member's attachment to a MemNetwork.
type MemTransport struct {
	net    *MemNetwork
	ep     *Endpoint
	h      Handler
	closed bool
}

// Attach connects ep to the network; accepted frames go to h. A slot
// attached again (a restarted member) replaces the old attachment.
func (n *MemNetwork) Attach(ep *Endpoint, h Handler) *MemTransport {
	t := &MemTransport{net: n, ep: ep, h: h}
	n.nodes[ep.Slot()] = t
	n.slots = nil
	return t
}

// SetLoss sets the independent drop probability of each frame copy.
func (n *MemNetwork) SetLoss(p float64) { n.loss = p }

// SetDelay sets the uniform one-way delay range of each frame copy.
func (n *MemNetwork) SetDelay(min, max time.Duration) { n.minDelay, n.maxDelay = min, max }

// Partition splits the members: slots in different groups cannot talk.
// Slots not named are in group 0 with each other.
func (n *MemNetwork) Partition(groups ...[]uint8) {
	n.group = map[uint8]int{}
	for i, g := range groups {
		for _, s := range g {
			n.group[s] = i + 1
		}
	}
}

// Heal removes partitions and one-way cuts and brings both paths up.
func (n *MemNetwork) Heal() {
	n.group = map[uint8]int{}
	n.oneWay = map[[2]uint8]bool{}
	n.pathDown = [Paths]bool{}
}

// CutOneWay drops every frame from -> to (on both paths) while on.
func (n *MemNetwork) CutOneWay(from, to uint8, on bool) {
	if on {
		n.oneWay[[2]uint8{from, to}] = true
	} else {
		delete(n.oneWay, [2]uint8{from, to})
	}
}

// SetPathDown takes a base path (a hub) down or up.
func (n *MemNetwork) SetPathDown(path int, down bool) {
	if path >= 0 && path < Paths {
		n.pathDown[path] = down
	}
}

// Pause stops deliveries to slot; they queue, as in the socket buffer of a
// stopped process, and arrive late on Resume.
func (n *MemNetwork) Pause(slot uint8) {
	if _, ok := n.paused[slot]; !ok {
		n.paused[slot] = nil
	}
}

// Resume delivers what queued while slot was paused, in order.
func (n *MemNetwork) Resume(slot uint8) {
	q, ok := n.paused[slot]
	if !ok {
		return
	}
	delete(n.paused, slot)
	for _, p := range q {
		n.deliver(slot, p.path, p.b)
	}
}

// Detach disconnects slot (a killed member): frames to it are lost.
func (n *MemNetwork) Detach(slot uint8) {
	if t := n.nodes[slot]; t != nil {
		t.closed = true
	}
	delete(n.nodes, slot)
	n.slots = nil
	delete(n.paused, slot)
}

// Inject hands raw bytes to slot's endpoint as if they arrived on path
// (for forged, replayed and garbled frame tests).
func (n *MemNetwork) Inject(slot uint8, path int, b []byte) {
	n.deliver(slot, path, append([]byte(nil), b...))
}

func (n *MemNetwork) reachable(from, to uint8, path int) bool {
	return !n.pathDown[path] && n.group[from] == n.group[to] && !n.oneWay[[2]uint8{from, to}]
}

func (n *MemNetwork) send(from, to uint8, b []byte) {
	for path := 0; path < Paths; path++ {
		if !n.reachable(from, to, path) || (n.loss > 0 && n.rng.Float64() < n.loss) {
			n.Dropped++
			continue
		}
		d := n.minDelay
		if n.maxDelay > n.minDelay {
			d += time.Duration(n.rng.Int64N(int64(n.maxDelay - n.minDelay)))
		}
		path := path
		n.sched.After(d, func() {
			// A fault that started while the frame was in flight drops it.
			if !n.reachable(from, to, path) {
				n.Dropped++
				return
			}
			n.deliver(to, path, b)
		})
	}
}

func (n *MemNetwork) deliver(to uint8, path int, b []byte) {
	if q, ok := n.paused[to]; ok {
		n.paused[to] = append(q, pending{path, b})
		return
	}
	t := n.nodes[to]
	if t == nil {
		n.Dropped++
		return
	}
	f, err := t.ep.Accept(path, b)
	if err != nil {
		return
	}
	n.Delivered++
	t.h(f)
}

// Send implements Transport.
func (t *MemTransport) Send(typ Type, to uint8, payload []byte) error {
	if t.closed {
		return errors.New("transport: memory transport closed")
	}
	b, err := t.ep.Seal(typ, to, payload)
	if err != nil {
		return err
	}
	from := t.ep.Slot()
	if to == Broadcast {
		for _, s := range t.net.sortedSlots() {
			if s != from {
				t.net.send(from, s, b)
			}
		}
		return nil
	}
	t.net.send(from, to, b)
	return nil
}

// Endpoint implements Transport.
func (t *MemTransport) Endpoint() *Endpoint { return t.ep }

// Close implements Transport.
func (t *MemTransport) Close() error {
	if t.net.nodes[t.ep.Slot()] == t {
		t.net.Detach(t.ep.Slot())
	}
	t.closed = true
	return nil
}

// sortedSlots lists attached slots in ascending order so that runs are
// reproducible (map order is random).
func (n *MemNetwork) sortedSlots() []uint8 {
	if n.slots == nil {
		for s := range n.nodes {
			n.slots = append(n.slots, s)
		}
		slices.Sort(n.slots)
	}
	return n.slots
}
