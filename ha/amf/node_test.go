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

// TestRenewalsBatched: in a settled shelf a voter answers the renewals of
// every holder in batches, so each member sends about two lease frames per
// heartbeat interval (its requests with the renewals it owes, and at most
// one more batch; a few refusals go out at once), not one reply per
// requester (seven members: about seven frames per interval before
// batching); every lease stays held throughout.
func TestRenewalsBatched(t *testing.T) {
	s := newSimShelf(t, shelfConfig(), 21)
	settle(t, s)
	before := map[uint8]int{}
	for slot, sn := range s.nodes {
		before[slot] = sn.sent[transport.TypeLease]
	}
	holdersBefore := fmt.Sprint(holders(s, "mgmt"), holders(s, "switch"))
	const intervals = 100
	s.loop.RunFor(intervals * s.cfg.Timers.Interval)
	for slot, sn := range s.nodes {
		n := sn.sent[transport.TypeLease] - before[slot]
		t.Logf("slot %d: %d lease frames in %d intervals (%.2f per interval)", slot, n, intervals, float64(n)/intervals)
		if n > 3*intervals {
			t.Errorf("slot %d sent %d lease frames in %d intervals, want <= %d", slot, n, intervals, 3*intervals)
		}
	}
	if got := fmt.Sprint(holders(s, "mgmt"), holders(s, "switch")); got != holdersBefore {
		t.Errorf("holders changed in a quiet shelf: %s, were %s", got, holdersBefore)
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
