package amf

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cgoa/cgoa/ha/clm"
	"github.com/cgoa/cgoa/ha/evt"
	"github.com/cgoa/cgoa/ha/sim"
	"github.com/cgoa/cgoa/ha/transport"
)

var simKey = transport.Key("simulation-shelf-key-0123456789")

// shelfConfig is the shelf the simulations run: two hubs (switch, 2N),
// two mgmt blades (mgmt, 2N), three EPON blades (olt, N+M with two PONs).
// All seven slots vote.
func shelfConfig() Config {
	return Config{
		Shelf:  1,
		Slots:  []uint8{1, 2, 3, 4, 5, 6, 7},
		Timers: clm.Timers{Interval: 10 * time.Millisecond, Misses: 3},
		Drift:  0.05, // generous, so that the simulated clock rates matter
		Groups: []ServiceGroup{
			{Name: "switch", Model: TwoN, Units: []ServiceUnit{{"switch-1", 1}, {"switch-2", 2}}},
			{Name: "mgmt", Model: TwoN, Units: []ServiceUnit{{"mgmt-3", 3}, {"mgmt-4", 4}}},
			{Name: "olt", Model: NPlusM, Units: []ServiceUnit{{"olt-5", 5}, {"olt-6", 6}, {"olt-7", 7}}, Instances: []string{"pon-a", "pon-b"}},
			{Name: "probe", Model: NWayActive, Units: []ServiceUnit{{"probe-3", 3}, {"probe-4", 4}}},
		},
	}
}

// simNode is one member in the simulation. Its local clock runs at rate
// (within 1±Drift) from offset; a paused member keeps its clock running,
// as a stopped process does.
type simNode struct {
	slot   uint8
	node   *Node
	tr     *transport.MemTransport
	alive  bool
	paused bool
	rate   float64
	offset time.Duration
	gen    int
	// assigned is the last Assignment each of its components was told.
	assigned map[string]Assignment
	// sent counts the frames it sent, by type; lastSent is the payload of
	// the last of each type.
	sent     map[transport.Type]int
	lastSent map[transport.Type][]byte
}

type simShelf struct {
	t     testing.TB
	cfg   Config
	loop  *sim.Loop
	net   *transport.MemNetwork
	rng   *rand.Rand
	nodes map[uint8]*simNode
	epoch uint64
	bus   *evt.Bus
	// oldWire starts these slots as members of the generation before
	// beats (Node.oldWire).
	oldWire map[uint8]bool
	// down is, per slot, the peers whose channel to it has no carrier
	// (fence_test.go).
	down map[uint8][]uint8
	// dirty is set when a node handled something since the last check:
	// only then can a belief have begun.
	dirty bool
}

func newSimShelf(t testing.TB, cfg Config, seed uint64) *simShelf {
	loop := sim.NewLoop()
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	s := &simShelf{t: t, cfg: cfg, loop: loop, net: transport.NewMemNetwork(loop, rng), rng: rng,
		nodes: map[uint8]*simNode{}, bus: evt.NewBus(0)}
	for _, slot := range cfg.Slots {
		drift := cfg.Drift
		if drift == 0 {
			drift = 1e-3
		}
		// Rates anywhere in the allowed band, endpoints included.
		rate := 1 + drift*(2*rng.Float64()-1)
		switch rng.IntN(4) {
		case 0:
			rate = 1 - drift
		case 1:
			rate = 1 + drift
		}
		s.nodes[slot] = &simNode{slot: slot, rate: rate, offset: time.Duration(rng.Int64N(int64(time.Hour)))}
	}
	return s
}

func (s *simShelf) local(sn *simNode) time.Duration {
	return sn.offset + time.Duration(math.Floor(float64(s.loop.Now())*sn.rate))
}

func (s *simShelf) virtualAt(sn *simNode, local time.Duration) time.Duration {
	return time.Duration(math.Ceil(float64(local-sn.offset) / sn.rate))
}

// start boots slot with a new incarnation.
func (s *simShelf) start(slot uint8) {
	sn := s.nodes[slot]
	s.epoch++
	ep, err := transport.NewEndpoint(simKey, s.cfg.Shelf, slot, s.epoch)
	if err != nil {
		s.t.Fatal(err)
	}
	env := Env{
		Send: func(typ transport.Type, to uint8, p []byte) {
			if sn.sent == nil {
				sn.sent, sn.lastSent = map[transport.Type]int{}, map[transport.Type][]byte{}
			}
			sn.sent[typ]++
			sn.lastSent[typ] = p
			if sn.tr != nil {
				sn.tr.Send(typ, to, p)
			}
		},
		Publish: s.bus.Publish,
	}
	n, err := NewNode(s.cfg, slot, s.epoch, s.local(sn), env)
	if err != nil {
		s.t.Fatal(err)
	}
	n.oldWire = s.oldWire[slot]
	sn.node, sn.alive, sn.paused = n, true, false
	s.dirty = true
	sn.assigned = map[string]Assignment{}
	for name := range n.units {
		name := name
		n.Register(Component{Name: name + "-c", Unit: name, Assign: func(a Assignment) { sn.assigned[name] = a }})
	}
	sn.tr = s.net.Attach(ep, func(f transport.Frame) {
		if !sn.alive || sn.paused || sn.node != n {
			return
		}
		n.Receive(s.local(sn), f)
		s.dirty = true
		s.schedule(sn)
	})
	s.schedule(sn)
}

func (s *simShelf) schedule(sn *simNode) {
	sn.gen++
	gen, n := sn.gen, sn.node
	localNow := s.local(sn)
	d := n.NextDeadline(localNow)
	at := s.virtualAt(sn, d)
	if d > localNow && at <= s.loop.Now() {
		at = s.loop.Now() + 1
	}
	s.loop.At(at, func() {
		if sn.gen != gen || !sn.alive || sn.paused || sn.node != n {
			return
		}
		n.Tick(s.local(sn))
		s.dirty = true
		s.schedule(sn)
	})
}

func (s *simShelf) kill(slot uint8) {
	sn := s.nodes[slot]
	sn.alive = false
	s.net.Detach(slot)
	sn.tr = nil
}

func (s *simShelf) pause(slot uint8) {
	sn := s.nodes[slot]
	if sn.alive {
		sn.paused = true
		s.net.Pause(slot)
	}
}

func (s *simShelf) resume(slot uint8) {
	s.dirty = true
	sn := s.nodes[slot]
	if sn.alive && sn.paused {
		sn.paused = false
		s.net.Resume(slot)
		s.schedule(sn)
	}
}

func (s *simShelf) startAll() {
	for _, slot := range s.cfg.Slots {
		s.start(slot)
	}
}

// activeHolders lists the slots whose node believes, at this virtual
// instant, that its unit is active for (group, si) with an unexpired lease
// by its own clock. Paused members count: they still believe.
func (s *simShelf) activeHolders(group, si string) []uint8 {
	var h []uint8
	for _, slot := range s.cfg.Slots {
		sn := s.nodes[slot]
		if sn.alive && sn.node.Active(group, si, s.local(sn)) {
			h = append(h, slot)
		}
	}
	return h
}

// checkSafety is the invariant, run after every event: no exclusive
// assignment is believed active with an unexpired lease on two nodes.
// It asks exactly what activeHolders asks (Node.Active), per node once.
func (s *simShelf) checkSafety() error {
	if !s.dirty {
		return nil
	}
	s.dirty = false
	var seen map[[2]string]uint8
	for _, slot := range s.cfg.Slots {
		sn := s.nodes[slot]
		if !sn.alive {
			continue
		}
		now := s.local(sn)
		for _, name := range sn.node.order {
			u := sn.node.units[name]
			if u.state != Active || u.group.Model == NWayActive {
				continue
			}
			for _, si := range u.sis {
				e := [2]string{u.group.Name, si}
				if u.group.Model == TwoN {
					e[1] = ""
				}
				if !sn.node.Active(e[0], si, now) {
					continue
				}
				if seen == nil {
					seen = map[[2]string]uint8{}
				}
				if other, ok := seen[e]; ok && other != slot {
					return fmt.Errorf("at %v: group %s instance %q active on slots %d and %d at once", s.loop.Now(), e[0], e[1], other, slot)
				}
				seen[e] = slot
			}
		}
	}
	return nil
}

func (s *simShelf) runUntilCond(limit time.Duration, cond func() bool) (time.Duration, bool) {
	start := s.loop.Now()
	for s.loop.Now()-start <= limit {
		if cond() {
			return s.loop.Now() - start, true
		}
		if !s.loop.Step() {
			break
		}
	}
	return s.loop.Now() - start, cond()
}
