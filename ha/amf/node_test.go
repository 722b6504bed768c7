package amf

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cgoa/cgoa/ha/transport"
)

func stateOf(s *simShelf, unit string) (HAState, []string) {
	for _, sn := range s.nodes {
		if a, ok := sn.assigned[unit]; ok && sn.alive {
			return a.State, a.Instances
		}
	}
	return Unassigned, nil
}

func settle(t *testing.T, s *simShelf) {
	t.Helper()
	s.loop.AfterEvent = func() {
		if err := s.checkSafety(); err != nil {
			t.Fatal(err)
		}
	}
	s.startAll()
	s.loop.RunFor(300 * time.Millisecond)
}

func TestStartupAssignments(t *testing.T) {
	s := newSimShelf(t, shelfConfig(), 1)
	settle(t, s)
	want := map[string]HAState{
		"switch-1": Active, "switch-2": Standby, "mgmt-3": Active, "mgmt-4": Standby,
		"olt-5": Active, "olt-6": Active, "olt-7": Standby, "probe-3": Active, "probe-4": Active,
	}
	for unit, st := range want {
		if got, _ := stateOf(s, unit); got != st {
			t.Errorf("state of %s = %v, want %v", unit, got, st)
		}
	}
	if _, sis := stateOf(s, "olt-5"); !slices.Equal(sis, []string{"pon-a"}) {
		t.Errorf("olt-5 instances = %v, want [pon-a]", sis)
	}
	if _, sis := stateOf(s, "olt-6"); !slices.Equal(sis, []string{"pon-b"}) {
		t.Errorf("olt-6 instances = %v, want [pon-b]", sis)
	}
	st := s.nodes[4].node.Status(s.local(s.nodes[4]))
	if !st.InQuorum || len(st.View.Members) != 7 {
		t.Errorf("Status() in quorum %v, %d members; want true, 7", st.InQuorum, len(st.View.Members))
	}
}

func TestFailoverOnKill(t *testing.T) {
	s := newSimShelf(t, shelfConfig(), 2)
	settle(t, s)
	killedAt := s.loop.Now()
	s.kill(3)
	took, ok := s.runUntilCond(time.Second, func() bool { return len(s.activeHolders("mgmt", "")) == 1 && s.activeHolders("mgmt", "")[0] == 4 })
	if !ok {
		t.Fatalf("mgmt-4 not active 1s after killing slot 3 (at %v)", killedAt)
	}
	lease := s.nodes[4].node.Timing().Lease
	// The voters' promises end at most one lease after the last renewal
	// (before the kill); they then grant the successor's pending request
	// at once, so the kill is restored within a lease (plus clock rate
	// spread and network delay).
	if bound := lease + s.cfg.Timers.Interval/2; took > bound {
		t.Errorf("failover took %v, want <= %v (lease + interval/2)", took, bound)
	}
	t.Logf("failover after kill: %v", took)
	st := s.nodes[4].node.Status(s.local(s.nodes[4]))
	if st.LastFailover == nil || st.LastFailover.From != "mgmt-3" || st.LastFailover.To != "mgmt-4" {
		t.Errorf("LastFailover = %+v, want mgmt-3 -> mgmt-4", st.LastFailover)
	}
	// The restarted blade comes back as standby, without pre-empting.
	s.start(3)
	s.loop.RunFor(300 * time.Millisecond)
	if got, _ := stateOf(s, "mgmt-3"); got != Standby {
		t.Errorf("restarted mgmt-3 = %v, want standby", got)
	}
	if got, _ := stateOf(s, "mgmt-4"); got != Active {
		t.Errorf("mgmt-4 after mgmt-3 returned = %v, want active (no pre-emption)", got)
	}
}

// TestOneFramePerInterval: in a quiet shelf each member sends one frame
// per heartbeat interval, a beat with its heartbeat, its lease requests and
// the renewals it grants as a voter. Under emulation every frame costs a
// blade about a millisecond of CPU, so frames per interval bound how
// tight the timers can be. (Before beats: a heartbeat, a lease frame and
// up to two renewal batches, 2.9-3.1 frames per interval.)
func TestOneFramePerInterval(t *testing.T) {
	s := newSimShelf(t, shelfConfig(), 21)
	settle(t, s)
	core := []transport.Type{transport.TypeHeartbeat, transport.TypeLease, transport.TypeBeat}
	count := func(sn *simNode) (n int) {
		for _, typ := range core {
			n += sn.sent[typ]
		}
		return n
	}
	before := map[uint8]int{}
	for slot, sn := range s.nodes {
		before[slot] = count(sn)
	}
	holdersBefore := fmt.Sprint(holders(s, "mgmt"), holders(s, "switch"))
	const intervals = 100
	s.loop.RunFor(intervals * s.cfg.Timers.Interval)
	for slot, sn := range s.nodes {
		n := count(sn) - before[slot]
		t.Logf("slot %d: %d HA-core frames in %d intervals (%.2f per interval)", slot, n, intervals, float64(n)/intervals)
		if n > intervals*11/10 {
			t.Errorf("slot %d sent %d HA-core frames in %d intervals, want <= %d", slot, n, intervals, intervals*11/10)
		}
		if sn.sent[transport.TypeHeartbeat] != 0 {
			t.Errorf("slot %d sent %d frames of the old heartbeat format on a shelf of one generation", slot, sn.sent[transport.TypeHeartbeat])
		}
	}
	if got := fmt.Sprint(holders(s, "mgmt"), holders(s, "switch")); got != holdersBefore {
		t.Errorf("holders changed in a quiet shelf: %s, were %s", got, holdersBefore)
	}
}

// TestMixedWireShelf: a member of the generation before beats (separate
// heartbeat and lease frames; beats ignored) takes part as before: the
// others send it the old frames while it is up, failover works with it as
// a voter and as the standby, and once it is replaced by a new-generation
// member the others go back to beats only.
func TestMixedWireShelf(t *testing.T) {
	s := newSimShelf(t, shelfConfig(), 7)
	s.oldWire = map[uint8]bool{4: true}
	settle(t, s)
	if h := holders(s, "mgmt"); len(h) != 1 {
		t.Fatalf("mixed shelf settled with mgmt holders %v, want one", h)
	}
	old := s.nodes[4].node
	for _, slot := range s.cfg.Slots {
		if !old.mem.Up(slot) {
			t.Errorf("the old-generation member does not see slot %d up", slot)
		}
		if !s.nodes[slot].node.mem.Up(4) {
			t.Errorf("slot %d does not see the old-generation member up", slot)
		}
	}
	active := holders(s, "mgmt")[0]
	s.kill(active)
	if took, ok := s.runUntilCond(time.Second, func() bool { h := holders(s, "mgmt"); return len(h) == 1 && h[0] == 7-active }); !ok {
		t.Fatalf("mixed shelf: after killing slot %d mgmt holders are %v", active, holders(s, "mgmt"))
	} else if lim := s.cfg.Timers.Detection() + 3*s.cfg.Timers.Interval; took > lim {
		t.Errorf("mixed shelf failover took %v, want <= %v", took, lim)
	}
	s.start(active)
	s.loop.RunFor(300 * time.Millisecond)
	// Replace the old member with a new-generation one.
	s.oldWire = nil
	s.kill(4)
	s.start(4)
	s.loop.RunFor(300 * time.Millisecond)
	for slot, sn := range s.nodes {
		sent := sn.sent[transport.TypeHeartbeat]
		s.loop.RunFor(20 * s.cfg.Timers.Interval)
		if d := sn.sent[transport.TypeHeartbeat] - sent; d != 0 {
			t.Errorf("slot %d still sent %d old-format heartbeats with no old member left", slot, d)
		}
	}
	if h := holders(s, "mgmt"); len(h) != 1 {
		t.Errorf("mgmt holders %v after the upgrade, want one", h)
	}
}

// TestStandbyReturnKeepsActive: a standby that dies and comes back (a new
// incarnation joining, its voter in quarantine) never interrupts the
// active: the mgmt group has exactly one holder at every event.
func TestStandbyReturnKeepsActive(t *testing.T) {
	for seed := uint64(30); seed < 40; seed++ {
		s := newSimShelf(t, shelfConfig(), seed)
		settle(t, s)
		h := holders(s, "mgmt")
		if len(h) != 1 {
			t.Fatalf("seed %d: settled holders %v", seed, h)
		}
		active := h[0]
		standby := uint8(7) - active
		var gaps int
		check := s.loop.AfterEvent
		s.loop.AfterEvent = func() {
			check()
			if h := holders(s, "mgmt"); len(h) != 1 || h[0] != active {
				gaps++
			}
		}
		s.kill(standby)
		s.loop.RunFor(500 * time.Millisecond)
		s.start(standby)
		s.loop.RunFor(2 * time.Second)
		if gaps > 0 {
			t.Errorf("seed %d: the active slot %d lost or shared the assignment at %d events while slot %d left and rejoined", seed, active, gaps, standby)
		}
	}
}
