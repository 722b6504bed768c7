package stp

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

// checkpoint exports bridge i, passes the state through JSON as a
// checkpoint would, and restores it into a fresh instance in its place.
func (n *network) checkpoint(i int) State {
	n.t.Helper()
	st := n.bridges[i].Export()
	raw, err := json.Marshal(st)
	if err != nil {
		n.t.Fatalf("json.Marshal(State): %v", err)
	}
	var back State
	if err := json.Unmarshal(raw, &back); err != nil {
		n.t.Fatalf("json.Unmarshal(State): %v", err)
	}
	if !reflect.DeepEqual(back, st) {
		n.t.Fatalf("State JSON round trip = %+v, want %+v", back, st)
	}
	b, err := Restore(back, n.clock, &simEnv{n, i})
	if err != nil {
		n.t.Fatalf("Restore: %v", err)
	}
	n.bridges[i] = b
	return st
}

// meshForRestore is a topology with root, designated, root and blocked
// ports, a shared LAN and a backup port.
func meshForRestore(t *testing.T) *network {
	n := newNet(t, prioIDs(t, 0x8000, 0x4000, 0x8000, 0x8000, 0x9000), Config{})
	n.link(0, 1, 1, 1)
	n.link(1, 2, 2, 1)
	n.link(2, 2, 3, 1)
	n.link(3, 2, 0, 2)
	n.link(0, 3, 2, 3)
	n.lan(attach{4, 1}, attach{4, 2}, attach{3, 3}, attach{0, 4})
	n.lan(attach{1, 3}) // host LAN
	return n
}

func TestRestoredBridgeContinuesWithoutDisturbance(t *testing.T) {
	for i := range 5 {
		n := meshForRestore(t)
		n.run(5 * time.Minute) // converged, start-up topology change over
		n.checkTree()
		tcBefore := n.tcCounts()
		logBefore := len(n.log)
		sentBefore := n.bridges[i].Snapshot()
		n.checkpoint(i)
		if got := n.bridges[i].Snapshot(); !reflect.DeepEqual(got, sentBefore) {
			t.Errorf("bridge %d: restored Snapshot = %+v, want %+v", i, got, sentBefore)
		}
		n.run(10 * time.Minute)
		if len(n.log) != logBefore {
			t.Errorf("bridge %d restored: ports changed state afterwards:", i)
			n.dumpLog(0)
		}
		if got := n.tcCounts(); !reflect.DeepEqual(got, tcBefore) {
			t.Errorf("bridge %d restored: topology changes %v, want unchanged %v", i, got, tcBefore)
		}
		n.checkTree()
		// The restored bridge keeps doing its job: it answers a failure.
		n.cut(n.portSeg[attach{i, 1}])
		n.run(maxAge + 2*fwd + settled)
		n.checkTree()
	}
}

// TestRestartInsteadOfRestoreDisturbs shows that the test above can fail:
// a bridge that starts afresh with the same identity disturbs the network.
func TestRestartInsteadOfRestoreDisturbs(t *testing.T) {
	n := meshForRestore(t)
	n.run(5 * time.Minute)
	logBefore := len(n.log)
	tcBefore := n.tcCounts()
	fresh, err := New(Config{ID: n.ids[0]}, n.clock, &simEnv{n, 0})
	if err != nil {
		t.Fatal(err)
	}
	n.bridges[0] = fresh
	for _, a := range []attach{{0, 1}, {0, 2}, {0, 3}, {0, 4}} {
		if err := fresh.AddPort(PortConfig{Number: a.port, Priority: n.prio[a], PathCost: n.cost[a]}); err != nil {
			t.Fatal(err)
		}
		if err := fresh.EnablePort(a.port); err != nil {
			t.Fatal(err)
		}
	}
	n.run(5 * time.Minute)
	n.checkTree()
	if len(n.log) == logBefore {
		t.Error("a restarted bridge caused no port state changes")
	}
	if got := n.tcCounts(); reflect.DeepEqual(got, tcBefore) {
		t.Error("a restarted bridge caused no topology change")
	}
}

// TestRestoreMidConvergenceKeepsTimers restores a bridge while its ports
// are still listening and a topology change is in progress: the network
// must evolve exactly as if nothing had happened.
func TestRestoreMidConvergenceKeepsTimers(t *testing.T) {
	for _, at := range []time.Duration{
		10 * time.Second,           // listening
		20 * time.Second,           // learning
		30*time.Second + 5*settled, // just forwarding, TC running
		31 * time.Second,
	} {
		control := meshForRestore(t)
		subject := meshForRestore(t)
		control.run(at)
		subject.run(at)
		for i := range subject.bridges {
			subject.checkpoint(i)
		}
		control.run(3 * time.Minute)
		subject.run(3 * time.Minute)
		if !reflect.DeepEqual(subject.log, control.log) {
			t.Errorf("restored at %v: transitions differ from the undisturbed run", at)
			for i := 0; i < len(subject.log) || i < len(control.log); i++ {
				var s, c transition
				if i < len(subject.log) {
					s = subject.log[i]
				}
				if i < len(control.log) {
					c = control.log[i]
				}
				if s != c {
					t.Logf("first difference: restored %+v, undisturbed %+v", s, c)
					break
				}
			}
		}
		for i := range subject.bridges {
			if s, c := subject.bridges[i].Snapshot(), control.bridges[i].Snapshot(); !reflect.DeepEqual(s, c) {
				t.Errorf("restored at %v: bridge %d snapshot %+v, want %+v", at, i, s, c)
			}
		}
	}
}

func TestRestoreRejectsBadState(t *testing.T) {
	n := meshForRestore(t)
	n.run(time.Minute)
	good := n.bridges[2].Export()
	mutate := func(f func(*State)) State {
		st := good
		st.Ports = append([]PortRecord(nil), good.Ports...)
		f(&st)
		return st
	}
	tests := map[string]State{
		"version":         mutate(func(s *State) { s.Version = 99 }),
		"timers":          mutate(func(s *State) { s.BridgeMaxAge = time.Hour }),
		"ageing":          mutate(func(s *State) { s.AgeingTime = 0 }),
		"max age":         mutate(func(s *State) { s.MaxAge = 0 }),
		"repeated port":   mutate(func(s *State) { s.Ports = append(s.Ports, s.Ports[0]) }),
		"port id":         mutate(func(s *State) { s.Ports[0].ID = 0x8099 }),
		"port state":      mutate(func(s *State) { s.Ports[0].State = 9 }),
		"root port gone":  mutate(func(s *State) { s.RootPort = 77 }),
		"root but a port": mutate(func(s *State) { s.DesignatedRoot = s.ID }),
	}
	for name, st := range tests {
		if _, err := Restore(st, n.clock, &simEnv{n, 2}); !errors.Is(err, ErrBadState) {
			t.Errorf("%s: Restore() error = %v, want %v", name, err, ErrBadState)
		}
	}
	if _, err := Restore(good, n.clock, &simEnv{n, 2}); err != nil {
		t.Errorf("Restore(good) = %v", err)
	}
}

func TestAgedStateMatchesLaterExport(t *testing.T) {
	n := meshForRestore(t)
	n.run(20 * time.Second) // ports listening or learning: many timers run
	next, _ := n.bridges[3].NextDeadline()
	d := next.Sub(n.clock.now) / 2 // no timer of bridge 3 fires meanwhile
	st := n.bridges[3].Export()
	n.clock.now = n.clock.now.Add(d)
	later := n.bridges[3].Export()
	aged := st.Aged(d)
	if !reflect.DeepEqual(aged, later) {
		t.Errorf("State.Aged(%v) = %+v, want the later export %+v", d, aged, later)
	}
	if reflect.DeepEqual(st, later) {
		t.Fatal("test is void: the later export equals the earlier one")
	}
	aged.Ports[0].Name = "changed"
	if st.Ports[0].Name == "changed" {
		t.Error("Aged shares its Ports with the original")
	}
}

func TestGenerationMovesOnlyOnProtocolChanges(t *testing.T) {
	n := meshForRestore(t)
	n.run(5 * time.Minute)
	gen := func() []uint64 {
		var g []uint64
		for _, b := range n.bridges {
			g = append(g, b.Generation())
		}
		return g
	}
	closed := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	before := gen()
	changed := map[int]<-chan struct{}{}
	for i, b := range n.bridges {
		changed[i] = b.Changed()
	}
	n.run(5 * time.Minute)
	if got := gen(); !reflect.DeepEqual(got, before) {
		t.Errorf("steady state: generations %v -> %v, want unchanged", before, got)
	}
	for i := range n.bridges {
		if closed(changed[i]) {
			t.Errorf("steady state: bridge %d's Changed() closed, want open", i)
		}
	}
	n.cut(n.portSeg[attach{2, 1}])
	n.run(time.Second)
	after := gen()
	if after[1] == before[1] || after[2] == before[2] {
		t.Errorf("after a cut next to bridges 1 and 2: generations %v -> %v, want both moved", before, after)
	}
	for _, i := range []int{1, 2} {
		if !closed(changed[i]) {
			t.Errorf("after a cut next to bridge %d: its Changed() still open, want closed", i)
		}
	}
}
