package clm

import (
	"testing"
	"time"
)

var timers = Timers{Interval: 10 * time.Millisecond, Misses: 3}

func kinds(ch []Change) []ChangeKind {
	var k []ChangeKind
	for _, c := range ch {
		k = append(k, c.Kind)
	}
	return k
}

func TestMembershipLifecycle(t *testing.T) {
	m, err := New(1, 100, []uint8{1, 2, 3}, timers)
	if err != nil {
		t.Fatal(err)
	}
	ms := time.Millisecond
	if ch := m.Receive(0, Heartbeat{From: 2, Inc: 5}); len(ch) != 1 || ch[0].Kind != Joined {
		t.Fatalf("first heartbeat: changes %v, want [joined]", kinds(ch))
	}
	if m.Connected(2) {
		t.Error("Connected(2) before 2 hears us")
	}
	m.Receive(10*ms, Heartbeat{From: 2, Inc: 5, Hear: []Peer{{1, 100}}})
	if !m.Connected(2) {
		t.Error("Connected(2) = false after 2 reports hearing us")
	}
	if ch := m.Receive(5*ms, Heartbeat{From: 9, Inc: 1}); ch != nil {
		t.Errorf("heartbeat from unconfigured slot 9: changes %v, want none", kinds(ch))
	}
	if ch := m.Tick(39 * ms); ch != nil {
		t.Errorf("Tick(39ms): %v, want none (last heard 10ms, detection 30ms)", kinds(ch))
	}
	if d, ok := m.NextDeadline(); !ok || d != 40*ms {
		t.Errorf("NextDeadline() = %v, %v, want 40ms, true", d, ok)
	}
	if ch := m.Tick(40 * ms); len(ch) != 1 || ch[0].Kind != Failed || ch[0].Slot != 2 {
		t.Fatalf("Tick(40ms) = %v, want [failed 2]", ch)
	}
	if m.Up(2) || m.Connected(2) {
		t.Error("failed member still up")
	}
	m.Receive(50*ms, Heartbeat{From: 2, Inc: 5})
	if ch := m.Receive(55*ms, Heartbeat{From: 2, Inc: 6}); len(ch) != 2 || ch[0].Kind != Restarted || ch[1].Kind != Joined {
		t.Fatalf("new incarnation: %v, want [restarted joined]", kinds(ch))
	}
	if ch := m.Receive(56*ms, Heartbeat{From: 2, Inc: 5}); ch != nil || m.Inc(2) != 6 {
		t.Errorf("old incarnation heartbeat: changes %v inc %d, want none and 6", kinds(ch), m.Inc(2))
	}
	if ch := m.Leave(57*ms, 2, 6); len(ch) != 1 || ch[0].Kind != Left {
		t.Fatalf("Leave: %v, want [left]", kinds(ch))
	}
	v := m.View(60 * ms)
	if len(v.Members) != 3 || v.Members[1].Up || !v.Members[0].Up || v.Seq == 0 {
		t.Errorf("View() = %+v", v)
	}
	hb := m.Heartbeat()
	if hb.From != 1 || hb.Inc != 100 || len(hb.Hear) != 0 {
		t.Errorf("Heartbeat() = %+v, want from 1 inc 100 hearing nobody", hb)
	}
	if _, err := New(4, 1, []uint8{1, 2}, timers); err == nil {
		t.Error("New(self not configured) succeeded")
	}
	if _, err := New(1, 1, []uint8{1}, Timers{}); err == nil {
		t.Error("New(zero timers) succeeded")
	}
}

func TestFence(t *testing.T) {
	m, err := New(1, 100, []uint8{1, 2, 3}, timers)
	if err != nil {
		t.Fatal(err)
	}
	m.Receive(0, Heartbeat{From: 2, Inc: 7})
	if ch := m.Fence(time.Millisecond, 2); len(ch) != 1 || ch[0].Kind != Failed || ch[0].Slot != 2 {
		t.Fatalf("Fence(2) = %v, want slot 2 failed", ch)
	}
	if m.Up(2) {
		t.Error("slot 2 up after Fence")
	}
	if ch := m.Fence(2*time.Millisecond, 2); len(ch) != 0 {
		t.Errorf("second Fence(2) = %v, want no change", ch)
	}
	if ch := m.Receive(3*time.Millisecond, Heartbeat{From: 2, Inc: 7}); len(ch) != 1 || ch[0].Kind != Joined {
		t.Errorf("heartbeat after Fence = %v, want slot 2 joined again", ch)
	}
}
