package amf

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cgoa/cgoa/ha/evt"
	"github.com/cgoa/cgoa/ha/quorum"
)

// faults mirrors what the harness did to the network, to decide where a
// quorum exists.
type faults struct {
	group    map[uint8]int
	oneWay   map[[2]uint8]bool
	pathDown [2]bool
	lossy    bool
}

func (s *simShelf) heal(f *faults) {
	s.net.Heal()
	s.net.SetLoss(0)
	s.net.SetDelay(50*time.Microsecond, 50*time.Microsecond)
	*f = faults{group: map[uint8]int{}, oneWay: map[[2]uint8]bool{}}
	for _, slot := range s.cfg.Slots {
		s.resume(slot)
	}
}

// up reports whether slot is running and not stopped.
func (s *simShelf) up(slot uint8) bool { sn := s.nodes[slot]; return sn.alive && !sn.paused }

// link reports two-way direct contact between a and b.
func (s *simShelf) link(f *faults, a, b uint8) bool {
	if a == b {
		return s.up(a)
	}
	return s.up(a) && s.up(b) && f.group[a] == f.group[b] && !f.oneWay[[2]uint8{a, b}] &&
		!f.oneWay[[2]uint8{b, a}] && !(f.pathDown[0] && f.pathDown[1])
}

// canWin reports whether unit (on slot) is in service and two-way
// connected to a quorum of voters.
func (s *simShelf) canWin(f *faults, v quorum.Voters, slot uint8, unit string) bool {
	if !s.up(slot) {
		return false
	}
	n := s.nodes[slot].node
	if u := n.units[unit]; u == nil || !n.operational(u) {
		return false // locked or extracting by an admin operation
	}
	return v.IsQuorum(func(x uint8) bool { return s.link(f, slot, x) })
}

// undoAdmin unlocks every locked unit and closes every opened handle (the
// operator's undo at the start of a phase).
func (s *simShelf) undoAdmin() {
	for _, slot := range s.cfg.Slots {
		sn := s.nodes[slot]
		if !sn.alive || sn.paused {
			continue
		}
		now := s.local(sn)
		for name, u := range sn.node.units {
			if u.locked {
				sn.node.Apply(now, OpUnlock, name)
			}
		}
		if sn.node.extracting {
			sn.node.HandleClose(now)
		}
		s.dirty = true
		s.schedule(sn)
	}
}

// checkLiveness: in a fault-free-enough network (no loss), every exclusive
// assignment with a unit able to win is held. For N+M, as many instances
// are held as the winnable units have room for.
func (s *simShelf) checkLiveness(f *faults) error {
	v, _ := quorum.NewVoters(s.cfg.Slots)
	for _, g := range s.cfg.Groups {
		able := 0
		for _, u := range g.Units {
			if s.canWin(f, v, u.Node, u.Name) {
				able++
			}
		}
		switch g.Model {
		case TwoN:
			if able > 0 && len(s.activeHolders(g.Name, "")) != 1 {
				return fmt.Errorf("group %s: %d units can win, holders %v", g.Name, able, s.activeHolders(g.Name, ""))
			}
		case NPlusM, NoRedundancy:
			held := 0
			for _, si := range g.Instances {
				if len(s.activeHolders(g.Name, si)) == 1 {
					held++
				}
			}
			per := max(g.PerUnit, 1)
			if want := min(len(g.Instances), able*per); held < want {
				return fmt.Errorf("group %s: %d units can win, %d of %d instances held, want >= %d", g.Name, able, held, len(g.Instances), want)
			}
		}
	}
	return nil
}

// restoreBound is the stated bound on restoring every assignment once the
// network is stable (no loss) and a quorum exists, counted from when the
// last fault of a phase took effect:
//
//   - one Lease: restarted voters are in quarantine, grants to members now
//     cut off or not preferred run out;
//   - one Interval: two-way contact is visible in the views, requesters
//     get their membership lease (InQuorum), preferences agree;
//   - one more Lease: a split vote made while preferences disagreed (a
//     voter renewed a requester it still preferred) runs out;
//   - three Intervals: the preferred unit's next request, its grants, delay.
//
// So 2·Lease + 4·Interval (100 ms at 10 ms × 3). A plain failover (holder
// killed, nothing else) takes at most Lease + 2·Interval (TestFailoverOnKill).
func restoreBound(lease, interval time.Duration) time.Duration {
	return 2*lease + 4*interval
}

// TestSimulationSeeds runs the shelf through random faults: kills and
// restarts, partitions, one-way loss, a base path down, paused members,
// random message loss and delay jitter, with clock rates spread over the
// whole allowed drift band.
//
// Safety invariant, checked after every event of every run: for every
// exclusive assignment (a 2N group, an N+M instance) at most one node
// believes, at that virtual instant, that its unit is active for it AND
// that the lease behind it is unexpired on its own clock (Node.Active).
// That is the right invariant because it is exactly the condition under
// which a role may act as active (roles gate their actions on
// Node.Active), and a paused or partitioned node counts for as long as it
// believes; "believes active with an expired lease" is harmless since the
// role does not act on it. Checking after every event suffices: between
// events beliefs only end (leases expire), they begin only at events.
//
// Liveness: in every fault phase without message loss that lasts longer
// than restoreBound, at restoreBound after the phase began every 2N group
// with a unit two-way connected to a quorum of voters has exactly one
// active, and every N+M group has as many instances active as such units
// have room for. At the end, with everything healed and restarted, every
// assignment is held and every 2N group has a standby.
func TestSimulationSeeds(t *testing.T) {
	seeds := 200
	if testing.Short() {
		seeds = 40
	}
	var worst time.Duration
	events := 0
	seen := map[string]int{}
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		w, n := runSeed(t, seed, seen)
		worst = max(worst, w)
		events += n
		if t.Failed() {
			return
		}
	}
	t.Logf("%d seeds, %d events; slowest final restore %v; %v", seeds, events, worst, seen)
	// The runs must have gone through what they claim to exercise.
	for _, what := range []string{"failover", "handover", "quiescing", "lock", "handle-open", "switchover", "minority", "restarted"} {
		if seen[what] == 0 {
			t.Errorf("no %q in %d seeds: the fault mix does not exercise it", what, seeds)
		}
	}
}

func runSeed(t *testing.T, seed uint64, seen map[string]int) (time.Duration, int) {
	cfg := shelfConfig()
	s := newSimShelf(t, cfg, seed)
	s.bus.Subscribe(func(e evt.Event) {
		switch e.Kind {
		case evt.Failover:
			seen[strings.Fields(e.Detail)[0]]++
		case evt.Admin, evt.Quorum, evt.Membership:
			seen[e.To]++
		case evt.Assignment:
			if e.To == Quiescing.String() {
				seen["quiescing"]++
			}
		}
	})
	events := 0
	var violation error
	s.loop.AfterEvent = func() {
		events++
		if violation == nil {
			violation = s.checkSafety()
		}
	}
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d: "+format, append([]any{seed}, args...)...)
	}
	s.startAll()
	s.loop.RunFor(200 * time.Millisecond)
	lease := cfg.Timers.Detection()
	interval := cfg.Timers.Interval
	bound := restoreBound(lease, interval)
	f := &faults{}
	s.heal(f)
	rng := s.rng
	slots := cfg.Slots
	pick := func() uint8 { return slots[rng.IntN(len(slots))] }
	for phase := 0; phase < 12; phase++ {
		s.heal(f)
		s.undoAdmin()
		// The phase's faults are all in place after settle (restarts
		// scheduled within the phase); the liveness bound runs from there.
		var settle time.Duration
		for range 1 + rng.IntN(3) {
			k := rng.IntN(13)
			switch k {
			case 10, 11, 12:
				// Admin operations, issued on a random running blade
				// (they reach the unit's blade only if the network lets
				// them): switchover, lock, hot-swap handle open.
				at := pick()
				sn := s.nodes[at]
				if !sn.alive || sn.paused {
					break
				}
				now := s.local(sn)
				g := cfg.Groups[rng.IntN(len(cfg.Groups))]
				switch k {
				case 10:
					if g.Model != NWayActive {
						sn.node.Switchover(now, g.Name)
					}
				case 11:
					sn.node.Lock(now, g.Units[rng.IntN(len(g.Units))].Name)
				case 12:
					sn.node.HandleOpen(now, func(bool) {})
				}
				s.dirty = true
				s.schedule(sn)
			case 0, 1:
				if slot := pick(); s.nodes[slot].alive {
					s.kill(slot)
				}
			case 2:
				for _, slot := range slots {
					if !s.nodes[slot].alive && rng.IntN(2) == 0 {
						s.start(slot)
					}
				}
			case 3:
				var a, b []uint8
				for _, slot := range slots {
					if rng.IntN(2) == 0 {
						a = append(a, slot)
						f.group[slot] = 1
					} else {
						b = append(b, slot)
						f.group[slot] = 2
					}
				}
				s.net.Partition(a, b)
			case 4:
				for i := rng.IntN(3); i >= 0; i-- {
					x, y := pick(), pick()
					if x != y {
						s.net.CutOneWay(x, y, true)
						f.oneWay[[2]uint8{x, y}] = true
					}
				}
			case 5:
				p := rng.IntN(2)
				s.net.SetPathDown(p, true)
				f.pathDown[p] = true
			case 6:
				s.pause(pick())
			case 7:
				s.net.SetLoss(0.01 + 0.3*rng.Float64())
				f.lossy = true
			case 9:
				// Crash and quick restart (a voter that forgets its
				// promises), several at once to reach into a quorum.
				for i := rng.IntN(4); i >= 0; i-- {
					slot := pick()
					if s.nodes[slot].alive {
						s.kill(slot)
						after := time.Duration(1+rng.IntN(25)) * time.Millisecond
						settle = max(settle, after)
						s.loop.After(after, func() {
							if !s.nodes[slot].alive {
								s.start(slot)
							}
						})
					}
				}
			case 8:
				s.net.SetDelay(20*time.Microsecond, time.Duration(rng.Int64N(int64(3*time.Millisecond)))+20*time.Microsecond)
				f.lossy = true // jitter beyond the bound's allowance
			}
		}
		d := time.Duration(10+rng.IntN(300)) * time.Millisecond
		if !f.lossy && d > settle+bound {
			s.loop.RunFor(settle + bound)
			if violation != nil {
				fail("%v", violation)
			}
			if err := s.checkLiveness(f); err != nil {
				fail("phase %d, %v after faults %+v: %v", phase, bound, *f, err)
			}
			s.loop.RunFor(d - settle - bound)
		} else {
			s.loop.RunFor(d)
		}
		if violation != nil {
			fail("%v", violation)
		}
	}
	// Heal everything, undo admin operations, restart the dead.
	s.heal(f)
	s.undoAdmin()
	for _, slot := range slots {
		if !s.nodes[slot].alive {
			s.start(slot)
		}
	}
	took, ok := s.runUntilCond(bound, func() bool { return s.checkLiveness(f) == nil })
	if violation != nil {
		fail("%v", violation)
	}
	if !ok {
		fail("not restored %v after healing: %v", bound, s.checkLiveness(f))
	}
	// Standbys follow within a few intervals.
	s.loop.RunFor(5 * interval)
	for _, g := range cfg.Groups {
		if g.Model != TwoN {
			continue
		}
		var states []HAState
		for _, u := range g.Units {
			st, _ := stateOf(s, u.Name)
			states = append(states, st)
		}
		if !slices.Contains(states, Active) || !slices.Contains(states, Standby) {
			fail("group %s after healing: states %v, want an active and a standby", g.Name, states)
		}
	}
	return took, events
}
