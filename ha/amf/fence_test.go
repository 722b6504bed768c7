package amf

import (
	"slices"
	"testing"
	"time"

	"github.com/cgoa/cgoa/ha/transport"
)

// dualStar is the simulated shelf on a dual-star backplane: slots 1 and 2
// are the hubs, so carrier reports can fence a blade.
func dualStar() Config {
	c := shelfConfig()
	c.Hubs = []uint8{1, 2}
	return c
}

// setCarrier sets the carrier of the channel between at and peer as at's
// PHY sees it, and tells at's node (a stopped node learns nothing).
func (s *simShelf) setCarrier(at, peer uint8, up bool) {
	if s.down == nil {
		s.down = map[uint8][]uint8{}
	}
	d := slices.DeleteFunc(s.down[at], func(x uint8) bool { return x == peer })
	if !up {
		d = append(d, peer)
	}
	s.down[at] = d
	sn := s.nodes[at]
	if sn.alive && !sn.paused {
		sn.node.SetLinks(s.local(sn), slices.Clone(d))
		s.dirty = true
		s.schedule(sn)
	}
}

// pull takes a blade out of its connector: it stops, and the far end of
// each of its channels loses carrier (as the QEMU shelf's `shelf kill`).
func (s *simShelf) pull(slot uint8) {
	s.kill(slot)
	for _, e := range s.cfg.channelPeers(slot) {
		s.setCarrier(e, slot, false)
	}
}

// reinsert boots a pulled blade again with carrier on its channels.
func (s *simShelf) reinsert(slot uint8) {
	for _, e := range s.cfg.channelPeers(slot) {
		s.setCarrier(e, slot, true)
	}
	s.start(slot)
	s.setCarrier(slot, 0, true) // its first report: every channel up
}

// reportAll gives every running blade its first carrier report (all up),
// as the firmware does when the HA core starts.
func (s *simShelf) reportAll() {
	for _, slot := range s.cfg.Slots {
		s.setCarrier(slot, 0, true)
	}
}

// newDualStar boots the dual-star shelf with seed, lets it settle with the
// safety invariant checked after every event, and gives every blade its
// first carrier report (all up).
func newDualStar(t *testing.T, seed uint64) *simShelf {
	t.Helper()
	s := newSimShelf(t, dualStar(), seed)
	settle(t, s)
	s.reportAll()
	s.loop.RunFor(50 * time.Millisecond)
	return s
}

func onlyActive(s *simShelf, group string, slot uint8) func() bool {
	return func() bool {
		h := s.activeHolders(group, "")
		return len(h) == 1 && h[0] == slot
	}
}

// TestFenceOnPull: a pulled blade is fenced by the carrier reports of the
// far ends of its channels, and its standby takes over in a request round
// trip, well inside one interval, where heartbeats alone need one lease
// (three intervals here; TestFailoverOnKill). Over many seeds (clock
// rates, delays), with the safety invariant of TestSimulationSeeds checked
// after every event. Both a node blade (mgmt, channels to the two hubs) and
// a hub (switch, channels to every other slot) are pulled, and come back
// as standby without pre-empting.
func TestFenceOnPull(t *testing.T) {
	var worst time.Duration
	for seed := uint64(1); seed <= 30; seed++ {
		s := newDualStar(t, seed)
		for _, c := range []struct {
			group     string
			from, to  uint8
			otherUnit string
		}{{"mgmt", 3, 4, "mgmt-3"}, {"switch", 1, 2, "switch-1"}} {
			if !onlyActive(s, c.group, c.from)() {
				t.Fatalf("seed %d: %s active on %v before the pull, want slot %d", seed, c.group, s.activeHolders(c.group, ""), c.from)
			}
			s.pull(c.from)
			took, ok := s.runUntilCond(time.Second, onlyActive(s, c.group, c.to))
			if !ok {
				t.Fatalf("seed %d: %s not active on slot %d 1s after pulling slot %d", seed, c.group, c.to, c.from)
			}
			if bound := s.cfg.Timers.Interval; took > bound {
				t.Errorf("seed %d: %s failover after a pull took %v, want <= %v (one interval; a lease is %v)",
					seed, c.group, took, bound, s.nodes[c.to].node.Timing().Lease)
			}
			worst = max(worst, took)
			st := s.nodes[c.to].node.Status(s.local(s.nodes[c.to]))
			if st.Links == nil || !slices.Contains(st.Links.Fenced, c.from) {
				t.Errorf("seed %d: slot %d links = %+v, want slot %d fenced", seed, c.to, st.Links, c.from)
			}
			s.reinsert(c.from)
			s.loop.RunFor(300 * time.Millisecond)
			if got, _ := stateOf(s, c.otherUnit); got != Standby {
				t.Errorf("seed %d: reinserted %s = %v, want standby", seed, c.otherUnit, got)
			}
			if !onlyActive(s, c.group, c.to)() {
				t.Errorf("seed %d: %s active on %v after slot %d returned, want slot %d (no pre-emption)", seed, c.group, s.activeHolders(c.group, ""), c.from, c.to)
			}
			for _, slot := range s.cfg.Slots {
				if l := s.nodes[slot].node.linkStatus(); len(l.Fenced) > 0 {
					t.Errorf("seed %d: slot %d still fences %v after slot %d returned", seed, slot, l.Fenced, c.from)
				}
			}
		}
	}
	t.Logf("slowest failover after a pull over 30 seeds x 2 pulls: %v (interval 10ms, lease 30ms)", worst)
}

// TestFenceNeedsEveryChannel: one channel without carrier fences nothing.
// The blade may still be heard over its other channel (here: its base0
// cut, base1 up), so only the detection time may fail it; and a blade
// killed while one far end still reports carrier is failed by its missing
// heartbeats, not faster.
func TestFenceNeedsEveryChannel(t *testing.T) {
	s := newDualStar(t, 7)
	s.setCarrier(1, 3, false)
	s.setCarrier(3, 1, false)
	s.loop.RunFor(200 * time.Millisecond)
	if !onlyActive(s, "mgmt", 3)() {
		t.Fatalf("mgmt active on %v with one channel of slot 3 cut, want 3", s.activeHolders("mgmt", ""))
	}
	if st := s.nodes[4].node.Status(s.local(s.nodes[4])); len(st.Links.Fenced) != 0 {
		t.Fatalf("slot 4 fences %v with one channel of slot 3 cut, want none", st.Links.Fenced)
	}
	// Killed with hub 2's channel still reporting carrier (a stuck PHY):
	// the heartbeats decide.
	s.kill(3)
	took, ok := s.runUntilCond(time.Second, onlyActive(s, "mgmt", 4))
	if !ok {
		t.Fatal("mgmt-4 not active 1s after slot 3 died")
	}
	if lease := s.nodes[4].node.Timing().Lease; took < lease-s.cfg.Timers.Interval {
		t.Errorf("failover took %v without every far end reporting, want about a lease (%v): nothing may fence early", took, lease)
	}
}

// TestIsolatedGivesUp: a blade whose every channel loses carrier (cut at
// every channel, alive) gives its leases up at once by itself, the others
// fence it and its standby takes over; the invariant holds throughout
// (checked after every event). When its channels come back it rejoins as
// standby.
func TestIsolatedGivesUp(t *testing.T) {
	s := newDualStar(t, 11)
	var others []uint8
	for _, x := range s.cfg.Slots {
		if x != 3 {
			others = append(others, x)
		}
	}
	s.net.Partition([]uint8{3}, others)
	// The cut is seen at both ends of each channel; the blade's own PHYs
	// are read first here, as its netlink events arrive when the carrier
	// drops.
	s.setCarrier(3, 1, false)
	s.setCarrier(3, 2, false)
	if st := s.nodes[3].node.Status(s.local(s.nodes[3])); !st.Links.Isolated {
		t.Fatalf("slot 3 links = %+v after losing carrier on both channels, want isolated", st.Links)
	}
	if h := s.activeHolders("mgmt", ""); len(h) != 0 {
		t.Fatalf("mgmt active on %v right after slot 3 lost every channel, want none until the standby takes over", h)
	}
	s.setCarrier(1, 3, false)
	s.setCarrier(2, 3, false)
	took, ok := s.runUntilCond(time.Second, onlyActive(s, "mgmt", 4))
	if !ok || took > s.cfg.Timers.Interval {
		t.Fatalf("mgmt-4 active after %v (ok %v), want within one interval of the fence", took, ok)
	}
	s.net.Heal()
	for _, e := range []uint8{1, 2} {
		s.setCarrier(e, 3, true)
		s.setCarrier(3, e, true)
	}
	s.loop.RunFor(300 * time.Millisecond)
	if got, _ := stateOf(s, "mgmt-3"); got != Standby {
		t.Errorf("mgmt-3 after its channels came back = %v, want standby", got)
	}
	if !onlyActive(s, "mgmt", 4)() {
		t.Errorf("mgmt active on %v after slot 3 came back, want 4", s.activeHolders("mgmt", ""))
	}
}

// TestFenceReportsRunOut: a fence lasts only while its reports are
// refreshed; a reporter that dies takes its report with it.
func TestFenceReportsRunOut(t *testing.T) {
	s := newDualStar(t, 5)
	s.pull(5)
	s.loop.RunFor(5 * time.Millisecond)
	if l := s.nodes[4].node.linkStatus(); !slices.Contains(l.Fenced, 5) {
		t.Fatalf("slot 4 fenced %v after slot 5 was pulled, want 5", l.Fenced)
	}
	// Hub 2 dies: its report no longer counts, so slot 5 is no longer
	// known to be cut off everywhere. (It stays failed in the view: it
	// sends nothing.)
	s.kill(2)
	s.loop.RunFor(200 * time.Millisecond)
	if l := s.nodes[4].node.linkStatus(); slices.Contains(l.Fenced, 5) {
		t.Errorf("slot 4 fenced %v after hub 2 died, want 5 no longer fenced", l.Fenced)
	}
}

// TestLinksFrames: a report goes out at once on a change, once more an
// interval later, and then every detection time while something is down.
func TestLinksFrames(t *testing.T) {
	s := newSimShelf(t, dualStar(), 3)
	settle(t, s)
	s.reportAll()
	s.loop.RunFor(100 * time.Millisecond)
	hub := s.nodes[1]
	before := hub.sent[transport.TypeLinks]
	if before != 2 {
		t.Errorf("hub 1 sent %d links frames for an all-up report, want 2 (at once and one repeat)", before)
	}
	s.pull(5)
	s.loop.RunFor(100 * time.Millisecond)
	// 100 ms at a 30 ms detection time: at once, the repeat at +10 ms,
	// then +40, +70, +100 ms.
	if got := hub.sent[transport.TypeLinks] - before; got < 4 || got > 5 {
		t.Errorf("hub 1 sent %d links frames in 100ms with slot 5 down, want 4-5", got)
	}
}

// TestStaleReportNoBusyLoop: a report that ran out (its reporter died while
// it listed a slot) must not hold a deadline in the past while another
// fence stands, or the node would tick without end.
func TestStaleReportNoBusyLoop(t *testing.T) {
	s := newDualStar(t, 9)
	s.setCarrier(3, 1, false) // slot 3's channel to hub 1 down: a report listing 1
	s.loop.RunFor(5 * time.Millisecond)
	s.kill(3) // its report is refreshed no more
	s.pull(5) // a fence that stands
	// A second of shelf time is some thousands of events; a node whose
	// deadline stays in the past would make millions without time passing.
	end, steps := s.loop.Now()+time.Second, 0
	for s.loop.Now() < end && s.loop.Step() {
		if steps++; steps > 200000 {
			t.Fatalf("%d events and the clock at %v of %v: a node ticks without end", steps, s.loop.Now(), end)
		}
	}
	t.Logf("%d events in a second of shelf time", steps)
	for _, slot := range []uint8{1, 2, 4, 6, 7} {
		sn := s.nodes[slot]
		now := s.local(sn)
		if l := sn.node.linkStatus(); !slices.Contains(l.Fenced, 5) {
			t.Fatalf("slot %d fenced %v, want 5", slot, l.Fenced)
		}
		if d := sn.node.NextDeadline(now); d < now {
			t.Errorf("slot %d: NextDeadline = %v at %v: in the past with a stale report", slot, d, now)
		}
	}
}
