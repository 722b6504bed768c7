package transport

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cgoa/cgoa/ha/sim"
)

type rx struct{ got []Frame }

func (r *rx) h(f Frame) {
	f.Payload = append([]byte(nil), f.Payload...)
	r.got = append(r.got, f)
}

func memPair(t *testing.T) (*sim.Loop, *MemNetwork, *MemTransport, *rx, *MemTransport, *rx) {
	t.Helper()
	loop := sim.NewLoop()
	n := NewMemNetwork(loop, rand.New(rand.NewPCG(1, 2)))
	ea, _ := NewEndpoint(testKey, 1, 1, 1)
	eb, _ := NewEndpoint(testKey, 1, 2, 1)
	ra, rb := &rx{}, &rx{}
	ta := n.Attach(ea, ra.h)
	tb := n.Attach(eb, rb.h)
	return loop, n, ta, ra, tb, rb
}

func TestMemNetworkFaults(t *testing.T) {
	loop, n, ta, ra, tb, rb := memPair(t)
	send := func() {
		ta.Send(TypeHeartbeat, Broadcast, []byte("a"))
		tb.Send(TypeHeartbeat, Broadcast, []byte("b"))
		loop.RunFor(time.Millisecond)
	}
	send()
	if len(ra.got) != 1 || len(rb.got) != 1 {
		t.Fatalf("no faults: delivered a<-%d b<-%d, want 1 each (both paths, de-duplicated)", len(ra.got), len(rb.got))
	}
	if d := tb.Endpoint().Counters().Duplicates; d != 1 {
		t.Errorf("Duplicates = %d, want 1 (second path copy)", d)
	}
	n.SetPathDown(0, true) // hub 1 lost: base1 still carries everything
	send()
	if len(ra.got) != 2 || len(rb.got) != 2 {
		t.Fatalf("one path down: a<-%d b<-%d, want 2 each", len(ra.got), len(rb.got))
	}
	n.CutOneWay(1, 2, true)
	send()
	if len(ra.got) != 3 || len(rb.got) != 2 {
		t.Fatalf("one-way cut 1->2: a<-%d b<-%d, want 3 and 2", len(ra.got), len(rb.got))
	}
	n.Heal()
	n.Partition([]uint8{1}, []uint8{2})
	send()
	if len(ra.got) != 3 || len(rb.got) != 2 {
		t.Fatalf("partition: a<-%d b<-%d, want 3 and 2", len(ra.got), len(rb.got))
	}
	n.Heal()
	n.Pause(2)
	send()
	if len(rb.got) != 2 {
		t.Fatalf("paused: b<-%d, want 2 (queued)", len(rb.got))
	}
	n.Resume(2)
	if len(rb.got) != 3 {
		t.Fatalf("resumed: b<-%d, want 3", len(rb.got))
	}
	n.SetLoss(1)
	send()
	if len(ra.got) != 4 || len(rb.got) != 3 {
		t.Fatalf("loss 1: a<-%d b<-%d, want 4 and 3 (nothing new)", len(ra.got), len(rb.got))
	}
}

func TestMemNetworkReplayInjected(t *testing.T) {
	loop, n, ta, _, _, rb := memPair(t)
	// Seal the way the transport does, then hand the bytes in directly.
	b, _ := ta.Endpoint().Seal(TypeLease, 2, []byte("grant"))
	n.Inject(2, 0, b)
	n.Inject(2, 1, b) // other path: duplicate
	n.Inject(2, 0, b) // replay inside the window
	for i := 0; i < WindowSize+1; i++ {
		later, _ := ta.Endpoint().Seal(TypeLease, 2, nil)
		n.Inject(2, 0, later)
	}
	n.Inject(2, 0, b) // replay behind the window
	loop.RunFor(time.Millisecond)
	if len(rb.got) != WindowSize+2 {
		t.Fatalf("delivered %d frames, want %d", len(rb.got), WindowSize+2)
	}
	c := n.nodes[2].ep.Counters()
	if c.Duplicates != 2 || c.Replayed != 1 {
		t.Errorf("Counters() = %+v, want Duplicates 2 Replayed 1", c)
	}
}
