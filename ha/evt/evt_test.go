package evt

import "testing"

func TestBus(t *testing.T) {
	b := NewBus(2)
	var a, c []uint64
	cancelA := b.Subscribe(func(e Event) { a = append(a, e.Seq) })
	b.Subscribe(func(e Event) { c = append(c, e.Seq) })
	b.Publish(Event{Kind: Membership, Subject: "3"})
	cancelA()
	b.Publish(Event{Kind: Assignment, Subject: "mgmt-a"})
	b.Publish(Event{Kind: Failover, Subject: "mgmt"})
	if len(a) != 1 || a[0] != 1 {
		t.Errorf("cancelled subscriber saw %v, want [1]", a)
	}
	if len(c) != 3 || c[2] != 3 {
		t.Errorf("subscriber saw %v, want [1 2 3]", c)
	}
	h := b.History()
	if len(h) != 2 || h[0].Seq != 2 || h[1].Kind != Failover {
		t.Errorf("History() = %v, want events 2 and 3", h)
	}
}
