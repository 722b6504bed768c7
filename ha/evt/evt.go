// Package evt is the HA core's event service: every membership, quorum,
// assignment, admin and fault change is published as an Event on a Bus.
// Subscribers today are in-process (the console's history, SNMP traps
// later); the transport reserves a frame type for carrying events
// shelf-wide.
//
//	bus := evt.NewBus(256)
//	cancel := bus.Subscribe(func(e evt.Event) { log.Print(e) })
//	defer cancel()
//
// Subscribers are called synchronously, in publication order, from the
// publisher's goroutine (the HA node loop): they must not block. A
// subscriber that needs to do slow work hands the event to its own
// goroutine or channel.
package evt

import (
	"fmt"
	"sync"
	"time"
)

// Kind classifies an event.
type Kind string

// Event kinds.
const (
	Membership Kind = "membership" // a member joined, left, failed, restarted
	Quorum     Kind = "quorum"     // this node entered or left the quorum partition
	Assignment Kind = "assignment" // a service unit's HA state changed
	Failover   Kind = "failover"   // an active assignment moved to another unit
	Admin      Kind = "admin"      // an administrative operation was applied
	Fault      Kind = "fault"      // health check failure, escalation step
)

// Event is one published change.
type Event struct {
	Seq uint64        `json:"seq"`
	At  time.Duration `json:"at_ns"` // publisher's monotonic time
	// Effective, if set, is when the change took effect when that was
	// before At: an active assignment whose lease ran out ended at the
	// lease's end, though the role was told at the next tick.
	Effective time.Duration `json:"effective_ns,omitempty"`
	Node      uint8         `json:"node"` // publishing slot
	Kind      Kind          `json:"kind"`
	Subject   string        `json:"subject"`         // slot, service group, unit or component
	Group     string        `json:"group,omitempty"` // the service group concerned, if any
	From      string        `json:"from,omitempty"`
	To        string        `json:"to,omitempty"`
	Detail    string        `json:"detail,omitempty"`
}

func (e Event) String() string {
	s := fmt.Sprintf("#%d %v slot %d %s %s", e.Seq, e.At, e.Node, e.Kind, e.Subject)
	if e.From != "" || e.To != "" {
		s += fmt.Sprintf(" %s -> %s", e.From, e.To)
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Bus is a publish/subscribe bus that also keeps the last events.
type Bus struct {
	mu      sync.Mutex
	seq     uint64
	nextID  int
	subs    map[int]func(Event)
	history []Event
	keep    int
}

// NewBus returns a bus that remembers the last keep events.
func NewBus(keep int) *Bus { return &Bus{subs: map[int]func(Event){}, keep: keep} }

// Publish numbers e and hands it to every subscriber.
func (b *Bus) Publish(e Event) {
	b.mu.Lock()
	b.seq++
	e.Seq = b.seq
	if b.keep > 0 {
		b.history = append(b.history, e)
		if len(b.history) > b.keep {
			b.history = b.history[len(b.history)-b.keep:]
		}
	}
	subs := make([]func(Event), 0, len(b.subs))
	for id := 0; id < b.nextID; id++ {
		if f, ok := b.subs[id]; ok {
			subs = append(subs, f)
		}
	}
	b.mu.Unlock()
	for _, f := range subs {
		f(e)
	}
}

// Subscribe registers f; the returned function cancels it.
func (b *Bus) Subscribe(f func(Event)) (cancel func()) {
	b.mu.Lock()
	id := b.nextID
	b.nextID++
	b.subs[id] = f
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		delete(b.subs, id)
		b.mu.Unlock()
	}
}

// History returns the remembered events, oldest first.
func (b *Bus) History() []Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Event(nil), b.history...)
}
