package sim

import (
	"container/heap"
	"time"
)

// Loop is a virtual-time event loop. It is not safe for concurrent use:
// the simulation is single-threaded by design.
type Loop struct {
	now    time.Duration
	seq    uint64
	events eventHeap
	// AfterEvent, if set, runs after every event (invariant checks).
	AfterEvent func()
}

type event struct {
	at  time.Duration
	seq uint64
	f   func()
}

type eventHeap []event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(event)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// NewLoop returns a loop at virtual time 0.
func NewLoop() *Loop { return &Loop{} }

// Now is the current virtual time.
func (l *Loop) Now() time.Duration { return l.now }

// After runs f at Now()+d (d < 0 counts as 0).
func (l *Loop) After(d time.Duration, f func()) {
	if d < 0 {
		d = 0
	}
	l.At(l.now+d, f)
}

// At runs f at virtual time t (not before Now()).
func (l *Loop) At(t time.Duration, f func()) {
	if t < l.now {
		t = l.now
	}
	l.seq++
	heap.Push(&l.events, event{at: t, seq: l.seq, f: f})
}

// Pending is the number of scheduled events.
func (l *Loop) Pending() int { return len(l.events) }

// Step runs the next event, if any, and reports whether it ran one.
func (l *Loop) Step() bool {
	if len(l.events) == 0 {
		return false
	}
	e := heap.Pop(&l.events).(event)
	l.now = e.at
	e.f()
	if l.AfterEvent != nil {
		l.AfterEvent()
	}
	return true
}

// RunUntil runs every event up to and including virtual time t, then sets
// the clock to t.
func (l *Loop) RunUntil(t time.Duration) {
	for len(l.events) > 0 && l.events[0].at <= t {
		l.Step()
	}
	if t > l.now {
		l.now = t
	}
}

// RunFor runs for d of virtual time.
func (l *Loop) RunFor(d time.Duration) { l.RunUntil(l.now + d) }
