package amf

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cgoa/cgoa/ha/clm"
	"github.com/cgoa/cgoa/ha/evt"
	"github.com/cgoa/cgoa/ha/transport"
)

func (s *simShelf) now(slot uint8) time.Duration { return s.local(s.nodes[slot]) }

func holders(s *simShelf, group string) []uint8 { return s.activeHolders(group, "") }

func TestSwitchover(t *testing.T) {
	s := newSimShelf(t, shelfConfig(), 3)
	var trail []string
	settle(t, s)
	s.nodes[3].node.Register(Component{Name: "trail", Unit: "mgmt-3", Assign: func(a Assignment) { trail = append(trail, "3:"+a.State.String()) }})
	s.nodes[4].node.Register(Component{Name: "trail", Unit: "mgmt-4", Assign: func(a Assignment) { trail = append(trail, "4:"+a.State.String()) }})
	trail = nil
	// Asked on a third blade: forwarded to the active's node.
	if err := s.nodes[6].node.Switchover(s.now(6), "mgmt"); err != nil {
		t.Fatalf("Switchover(mgmt) error %v", err)
	}
	took, ok := s.runUntilCond(time.Second, func() bool { h := holders(s, "mgmt"); return len(h) == 1 && h[0] == 4 })
	if !ok {
		t.Fatalf("switchover: holders %v, want [4]", holders(s, "mgmt"))
	}
	t.Logf("switchover took %v", took)
	// A handover is the release and one request round trip: no lease to
	// wait out, and no interval either (the voters stop preferring the
	// unit that released; before, its last requests kept it preferred for
	// two intervals: 1.6 intervals measured here).
	if took > s.cfg.Timers.Interval/2 {
		t.Errorf("switchover took %v, want <= half an interval (a round trip)", took)
	}
	s.loop.RunFor(100 * time.Millisecond)
	// SA Forum switchover: the old active quiesces and becomes the standby;
	// the standby goes straight to active (never unassigned in between).
	want := []string{"3:quiescing", "3:quiesced", "3:standby", "4:active"}
	if !slices.Equal(trail, want) {
		t.Errorf("callbacks %v, want %v", trail, want)
	}
	st := s.nodes[4].node.Status(s.now(4))
	if st.LastFailover == nil || st.LastFailover.Reason != "handover" || st.LastFailover.From != "mgmt-3" {
		t.Errorf("LastFailover = %+v, want a handover from mgmt-3", st.LastFailover)
	}
	if err := s.nodes[4].node.Switchover(s.now(4), "nosuch"); !errors.Is(err, ErrUnknown) {
		t.Errorf("Switchover(nosuch) = %v, want %v", err, ErrUnknown)
	}
	if err := s.nodes[4].node.Switchover(s.now(4), "probe"); err == nil {
		t.Error("Switchover(n-way-active group) succeeded, want error")
	}
}

// TestSwitchoverLateFrame: a switchover asked on a third blade reaches the
// active's node first; the standby takes the group before its own copy of
// the request arrives. That late copy must not make the new active hand
// the group back (the old active would then take it again when its yield
// ends, and the switchover would have done nothing). The request names
// the units it switches away from; seen in CI under load, where hub 2 took
// the switch group and gave it back 0.9 ms later.
func TestSwitchoverLateFrame(t *testing.T) {
	s := newSimShelf(t, shelfConfig(), 5)
	settle(t, s)
	if h := holders(s, "mgmt"); !slices.Equal(h, []uint8{3}) {
		t.Fatalf("mgmt holders %v, want [3]", h)
	}
	s.net.CutOneWay(6, 4, true)
	if err := s.nodes[6].node.Switchover(s.now(6), "mgmt"); err != nil {
		t.Fatalf("Switchover(mgmt) error %v", err)
	}
	s.net.CutOneWay(6, 4, false)
	if _, ok := s.runUntilCond(time.Second, func() bool { h := holders(s, "mgmt"); return len(h) == 1 && h[0] == 4 }); !ok {
		t.Fatalf("switchover: holders %v, want [4]", holders(s, "mgmt"))
	}
	late, err := UnmarshalAdmin(s.nodes[6].lastSent[transport.TypeAdmin])
	if err != nil || !slices.Equal(late.Units, []string{"mgmt-3"}) {
		t.Fatalf("the request sent = %+v, %v; want it to name mgmt-3", late, err)
	}
	s.nodes[6].tr.Send(transport.TypeAdmin, 4, MarshalAdmin(late))
	if _, ok := s.runUntilCond(time.Second, func() bool { h := holders(s, "mgmt"); return len(h) != 1 || h[0] != 4 }); ok {
		t.Fatalf("after the late request reached slot 4: holders %v, want [4] still", holders(s, "mgmt"))
	}
	if st := s.nodes[4].assigned["mgmt-4"].State; st != Active {
		t.Errorf("mgmt-4's component was last told %v, want active", st)
	}
	// A switchover of a group that has no active unit in the asker's view
	// is refused: there is nothing to hand over.
	s.kill(4)
	s.kill(3)
	s.loop.RunFor(2 * time.Second)
	if err := s.nodes[6].node.Switchover(s.now(6), "mgmt"); !errors.Is(err, ErrNoActive) {
		t.Errorf("Switchover(mgmt) with both mgmt blades dead = %v, want %v", err, ErrNoActive)
	}
}

func TestLockUnlock(t *testing.T) {
	s := newSimShelf(t, shelfConfig(), 4)
	settle(t, s)
	if err := s.nodes[1].node.Lock(s.now(1), "mgmt-3"); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.runUntilCond(time.Second, func() bool { h := holders(s, "mgmt"); return len(h) == 1 && h[0] == 4 }); !ok {
		t.Fatalf("after lock mgmt-3: holders %v, want [4]", holders(s, "mgmt"))
	}
	s.loop.RunFor(200 * time.Millisecond)
	if st, _ := stateOf(s, "mgmt-3"); st != Unassigned {
		t.Errorf("locked mgmt-3 = %v, want unassigned", st)
	}
	if got := s.nodes[3].node.Status(s.now(3)).Groups[1].Units[0].Oper; got != Locked {
		t.Errorf("locked unit oper = %v, want %v", got, Locked)
	}
	// Locking the only other unit leaves the group without an active.
	s.nodes[5].node.Lock(s.now(5), "mgmt-4")
	s.loop.RunFor(200 * time.Millisecond)
	if h := holders(s, "mgmt"); len(h) != 0 {
		t.Errorf("both mgmt units locked: holders %v, want none", h)
	}
	s.nodes[5].node.Unlock(s.now(5), "mgmt-3")
	if _, ok := s.runUntilCond(time.Second, func() bool { h := holders(s, "mgmt"); return len(h) == 1 && h[0] == 3 }); !ok {
		t.Fatalf("after unlock mgmt-3: holders %v, want [3]", holders(s, "mgmt"))
	}
	if err := s.nodes[5].node.Lock(s.now(5), "nosuch"); !errors.Is(err, ErrUnknown) {
		t.Errorf("Lock(nosuch) = %v, want %v", err, ErrUnknown)
	}
}

func TestEscalation(t *testing.T) {
	s := newSimShelf(t, shelfConfig(), 5)
	settle(t, s)
	var faults []string
	s.bus.Subscribe(func(e evt.Event) {
		if e.Kind == evt.Fault {
			faults = append(faults, e.Subject+":"+e.To)
		}
	})
	healthy := map[string]bool{"mgmt-3": false, "probe-3": true}
	restarts := 0
	n3 := s.nodes[3].node
	nodeFailed := ""
	n3.env.NodeFailover = func(reason string) { nodeFailed = reason }
	n3.Register(Component{Name: "snmpd", Unit: "mgmt-3",
		Health: func() error {
			if !healthy["mgmt-3"] {
				return errors.New("not answering")
			}
			return nil
		},
		Restart: func() error { restarts++; return nil }})
	// Restart twice (MaxRestarts), then fail the unit over.
	if _, ok := s.runUntilCond(time.Second, func() bool { h := holders(s, "mgmt"); return len(h) == 1 && h[0] == 4 }); !ok {
		t.Fatalf("unit failover: holders %v, want [4]", holders(s, "mgmt"))
	}
	if restarts != 2 {
		t.Errorf("restarts before unit failover = %d, want 2", restarts)
	}
	if want := []string{"snmpd:restart", "snmpd:restart", "mgmt-3:unit-failover"}; !slices.Equal(faults, want) {
		t.Errorf("fault events %v, want %v", faults, want)
	}
	s.loop.RunFor(100 * time.Millisecond)
	if st, _ := stateOf(s, "mgmt-3"); st != Unassigned {
		t.Errorf("failed mgmt-3 = %v, want unassigned", st)
	}
	// Repair brings it back as standby.
	healthy["mgmt-3"] = true
	n3.Repair(s.now(3), "mgmt-3")
	s.loop.RunFor(100 * time.Millisecond)
	if st, _ := stateOf(s, "mgmt-3"); st != Standby {
		t.Errorf("repaired mgmt-3 = %v, want standby", st)
	}
	// Two more unit failovers within the window fail the node over.
	n3.Register(Component{Name: "prober", Unit: "probe-3", Health: func() error {
		if !healthy["probe-3"] {
			return errors.New("dead")
		}
		return nil
	}})
	healthy["mgmt-3"], healthy["probe-3"] = false, false
	s.loop.RunFor(200 * time.Millisecond)
	if nodeFailed == "" {
		t.Fatalf("no node failover after 3 unit failovers; faults %v", faults)
	}
	for _, u := range []string{"mgmt-3", "probe-3"} {
		if st, _ := stateOf(s, u); st != Unassigned {
			t.Errorf("%s after node failover = %v, want unassigned", u, st)
		}
	}
}

func TestHandleOpen(t *testing.T) {
	s := newSimShelf(t, shelfConfig(), 6)
	settle(t, s)
	var result []bool
	s.nodes[3].node.HandleOpen(s.now(3), func(ok bool) { result = append(result, ok) })
	if _, ok := s.runUntilCond(time.Second, func() bool { return len(result) > 0 }); !ok {
		t.Fatal("extraction never became ready")
	}
	if !result[0] {
		t.Error("HandleOpen done(false), want true (mgmt-4 took over)")
	}
	if h := holders(s, "mgmt"); len(h) != 1 || h[0] != 4 {
		t.Errorf("after handle open: mgmt holders %v, want [4]", h)
	}
	if st, _ := stateOf(s, "probe-3"); st != Unassigned {
		t.Errorf("probe-3 while extracting = %v, want unassigned", st)
	}
	s.nodes[3].node.HandleClose(s.now(3))
	s.loop.RunFor(100 * time.Millisecond)
	if st, _ := stateOf(s, "mgmt-3"); st != Standby {
		t.Errorf("mgmt-3 after handle closed = %v, want standby", st)
	}
	// The only unit of a group cannot hand over: done(false) in bounded time.
	s.nodes[4].node.Lock(s.now(4), "mgmt-3")
	s.loop.RunFor(50 * time.Millisecond)
	result = nil
	s.nodes[4].node.HandleOpen(s.now(4), func(ok bool) { result = append(result, ok) })
	if _, ok := s.runUntilCond(time.Second, func() bool { return len(result) > 0 }); !ok || result[0] {
		t.Errorf("HandleOpen with no successor: result %v, want [false]", result)
	}
}

func TestPartitionMinorityStepsDown(t *testing.T) {
	s := newSimShelf(t, shelfConfig(), 7)
	settle(t, s)
	// Isolate the active mgmt blade (3) with one hub: a minority of 2/7.
	cut := s.loop.Now()
	s.net.Partition([]uint8{1, 3}, []uint8{2, 4, 5, 6, 7})
	var stepDown time.Duration
	_, ok := s.runUntilCond(time.Second, func() bool {
		if stepDown == 0 && !s.nodes[3].node.Active("mgmt", "", s.now(3)) {
			stepDown = s.loop.Now() - cut
		}
		h, sw := holders(s, "mgmt"), holders(s, "switch")
		return stepDown > 0 && len(h) == 1 && h[0] == 4 && len(sw) == 1 && sw[0] == 2
	})
	if !ok {
		t.Fatalf("partition: mgmt holders %v, want [4]", holders(s, "mgmt"))
	}
	if lease := s.nodes[3].node.Timing().Lease; stepDown > lease {
		t.Errorf("minority active stepped down after %v, want within the lease %v", stepDown, lease)
	}
	if s.nodes[3].node.Status(s.now(3)).InQuorum {
		t.Error("minority node reports InQuorum")
	}
	if s.nodes[3].node.Active("probe", "", s.now(3)) {
		t.Error("n-way-active probe-3 still active in the minority")
	}
	if !s.nodes[4].node.Active("probe", "", s.now(4)) {
		t.Error("n-way-active probe-4 not active in the majority")
	}
	// The switch group: hub 1 was active and is in the minority too.
	if h := holders(s, "switch"); len(h) != 1 || h[0] != 2 {
		t.Errorf("switch holders %v, want [2]", h)
	}
	s.net.Heal()
	s.loop.RunFor(300 * time.Millisecond)
	if st, _ := stateOf(s, "mgmt-3"); st != Standby {
		t.Errorf("mgmt-3 after heal = %v, want standby (no pre-emption)", st)
	}
}

func TestPausedActive(t *testing.T) {
	s := newSimShelf(t, shelfConfig(), 8)
	settle(t, s)
	s.pause(3)
	if _, ok := s.runUntilCond(time.Second, func() bool { h := holders(s, "mgmt"); return len(h) == 1 && h[0] == 4 }); !ok {
		t.Fatalf("paused active: holders %v, want [4]", holders(s, "mgmt"))
	}
	// While paused, node 3's role was never told to stop (it has not run),
	// but its lease has expired: Active() is false, which is what counts.
	if st, _ := stateOf(s, "mgmt-3"); st != Active {
		t.Errorf("paused mgmt-3 told %v while paused, want still active (it cannot run)", st)
	}
	if s.nodes[3].node.Active("mgmt", "", s.now(3)) {
		t.Fatal("paused node believes it is active with a valid lease")
	}
	s.loop.RunFor(200 * time.Millisecond)
	s.resume(3)
	s.loop.RunFor(200 * time.Millisecond)
	if st, _ := stateOf(s, "mgmt-3"); st != Standby {
		t.Errorf("resumed mgmt-3 = %v, want standby", st)
	}
}

func TestOneWayLossFromActive(t *testing.T) {
	s := newSimShelf(t, shelfConfig(), 9)
	settle(t, s)
	// The active mgmt blade hears nobody (all inbound lost) but is heard.
	for _, slot := range s.cfg.Slots {
		if slot != 3 {
			s.net.CutOneWay(slot, 3, true)
		}
	}
	if _, ok := s.runUntilCond(time.Second, func() bool { h := holders(s, "mgmt"); return len(h) == 1 && h[0] == 4 }); !ok {
		t.Fatalf("one-way loss into the active: holders %v, want [4]", holders(s, "mgmt"))
	}
}

func TestNoRedundancyAndTwoVoters(t *testing.T) {
	cfg := Config{
		Shelf: 2, Slots: []uint8{3, 4},
		Timers: clm.Timers{Interval: 10 * time.Millisecond, Misses: 3},
		Groups: []ServiceGroup{
			{Name: "mgmt", Model: TwoN, Units: []ServiceUnit{{"mgmt-3", 3}, {"mgmt-4", 4}}},
			{Name: "log", Model: NoRedundancy, Units: []ServiceUnit{{"log-3", 3}, {"log-4", 4}}},
		},
	}
	s := newSimShelf(t, cfg, 10)
	settle(t, s)
	if h := holders(s, "mgmt"); len(h) != 1 || h[0] != 3 {
		t.Fatalf("holders %v, want [3]", h)
	}
	if st, _ := stateOf(s, "log-4"); st != Unassigned {
		t.Errorf("no-redundancy spare log-4 = %v, want unassigned (no standby)", st)
	}
	// Slot 3 is the tie-breaker: killing 4 leaves 3 in quorum alone.
	s.kill(4)
	s.loop.RunFor(200 * time.Millisecond)
	if !s.nodes[3].node.Active("mgmt", "", s.now(3)) {
		t.Error("tie-breaker alone lost mgmt")
	}
	s.start(4)
	s.loop.RunFor(200 * time.Millisecond)
	// Killing the tie-breaker: slot 4 alone is no quorum and must not
	// take over (a partition would look the same from 4).
	s.kill(3)
	s.loop.RunFor(300 * time.Millisecond)
	if h := holders(s, "mgmt"); len(h) != 0 {
		t.Errorf("after killing the tie-breaker: holders %v, want none", h)
	}
	if h := s.activeHolders("log", "log"); len(h) != 0 {
		t.Errorf("log holders %v, want none", h)
	}
}

// TestReadinessGate: a standby whose component is not ready (a checkpoint
// replica still resynchronising) is not counted as the standby and does not
// take a free active assignment; once ready it takes over. An active whose
// gate closes keeps its assignment.
func TestReadinessGate(t *testing.T) {
	s := newSimShelf(t, shelfConfig(), 11)
	settle(t, s)
	if h := holders(s, "mgmt"); len(h) != 1 || h[0] != 3 {
		t.Fatalf("settled mgmt holders %v, want [3]", h)
	}
	syncing, activeGate := true, true
	s.nodes[4].node.Register(Component{Name: "replica", Unit: "mgmt-4", Ready: func() bool { return !syncing }})
	s.nodes[3].node.Register(Component{Name: "replica", Unit: "mgmt-3", Ready: func() bool { return activeGate }})
	s.loop.RunFor(100 * time.Millisecond)
	if got := s.nodes[4].node.Status(s.now(4)).Groups[1].Units[1].Oper; got != NotReady {
		t.Errorf("gated mgmt-4 oper on its own node = %v, want %v", got, NotReady)
	}
	if got := s.nodes[1].node.Status(s.now(1)).Groups[1].Units[1].Oper; got != NotReady {
		t.Errorf("gated mgmt-4 oper seen from slot 1 = %v, want %v", got, NotReady)
	}
	// The active's gate closing does not drop what it holds.
	activeGate = false
	s.loop.RunFor(500 * time.Millisecond)
	if h := holders(s, "mgmt"); len(h) != 1 || h[0] != 3 {
		t.Fatalf("active with a closed gate: holders %v, want [3]", h)
	}
	s.kill(3)
	// Far beyond detection plus lease: the gated unit must not take over.
	s.loop.RunFor(time.Second)
	if h := holders(s, "mgmt"); len(h) != 0 {
		t.Fatalf("gated standby took over: holders %v, want none", h)
	}
	syncing = false
	took, ok := s.runUntilCond(time.Second, func() bool { h := holders(s, "mgmt"); return len(h) == 1 && h[0] == 4 })
	if !ok {
		t.Fatalf("gate open: holders %v, want [4]", holders(s, "mgmt"))
	}
	if bound := 3 * s.cfg.Timers.Interval; took > bound {
		t.Errorf("takeover after the gate opened took %v, want <= %v (the lease had long expired)", took, bound)
	}
}

func TestGroupStatus(t *testing.T) {
	s := newSimShelf(t, shelfConfig(), 12)
	settle(t, s)
	for _, slot := range []uint8{1, 3, 5} {
		st := s.nodes[slot].node.Status(s.now(slot))
		for _, want := range st.Groups {
			got, ok := s.nodes[slot].node.GroupStatus(want.Name)
			if !ok || fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("slot %d: GroupStatus(%s) = %v, %v; want %v (as in Status)", slot, want.Name, got, ok, want)
			}
		}
	}
	if _, ok := s.nodes[1].node.GroupStatus("nosuch"); ok {
		t.Error("GroupStatus(nosuch) ok, want false")
	}
}

// TestBadPayloadCounted: an authenticated frame whose payload does not
// decode (here from a member that is up and holds nothing) is dropped and
// counted, and changes nothing: the group stays where it was.
func TestBadPayloadCounted(t *testing.T) {
	s := newSimShelf(t, shelfConfig(), 6)
	settle(t, s)
	before := holders(s, "mgmt")
	bad := map[transport.Type][]byte{
		transport.TypeAdmin: {byte(OpSwitchover), 4, 'm', 'g', 'm', 't', 0}, // a count of no units
		transport.TypeBeat:  {1},
		transport.TypeLease: {0xff},
		transport.TypeLinks: {3, 1},
	}
	for typ, p := range bad {
		s.nodes[6].tr.Send(typ, 3, p)
	}
	s.loop.RunFor(10 * time.Millisecond)
	st := s.nodes[3].node.Status(s.now(3))
	if st.BadPayloads != uint64(len(bad)) || st.LastBadPayload == "" {
		t.Errorf("slot 3 counted %d bad payloads (last %q), want %d", st.BadPayloads, st.LastBadPayload, len(bad))
	}
	if h := holders(s, "mgmt"); !slices.Equal(h, before) {
		t.Errorf("mgmt holders %v after the bad frames, want %v", h, before)
	}
}
