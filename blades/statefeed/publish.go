package statefeed

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cgoa/cgoa/blades/shelf"
	"github.com/cgoa/cgoa/ha"
	"github.com/cgoa/cgoa/ha/transport"
	"github.com/cgoa/cgoa/stp"
)

// Sender is what a publisher sends through: *ha.Blade.
type Sender interface {
	Send(typ transport.Type, to uint8, payload []byte) error
}

// Publisher sends publications and events to every blade (the mgmt blades keep them).
type Publisher struct {
	s   Sender
	gen atomic.Uint32
	// Sent counts frames sent, Failed frames the transport refused.
	Sent, Failed atomic.Uint64
}

// NewPublisher publishes through s. Generations start at a random number, so that parts of
// a publication from before a restart never complete one from after it.
func NewPublisher(s Sender) *Publisher {
	p := &Publisher{s: s}
	p.gen.Store(rand.Uint32())
	return p
}

func (p *Publisher) send(kind Kind, body []byte) error {
	parts, err := Split(kind, p.gen.Add(1), body)
	if err != nil {
		return err
	}
	for _, part := range parts {
		if err := p.s.Send(FrameType, transport.Broadcast, part); err != nil {
			p.Failed.Add(1)
			return fmt.Errorf("statefeed: send %v: %w", kind, err)
		}
		p.Sent.Add(1)
	}
	return nil
}

// STP publishes a switch blade's snapshot.
func (p *Publisher) STP(st STPState) error {
	b, err := EncodeSTP(st)
	if err != nil {
		return err
	}
	return p.send(KindSTP, b)
}

// EPON publishes an EPON blade's table.
func (p *Publisher) EPON(st EPONState) error {
	b, err := EncodeEPON(st)
	if err != nil {
		return err
	}
	return p.send(KindEPON, b)
}

// Event publishes an event at once.
func (p *Publisher) Event(e Event) error {
	kind := KindEPONEvent
	if e.Kind == NewRoot || e.Kind == TopologyChange {
		kind = KindSTPEvent
	}
	return p.send(kind, EncodeEvent(e))
}

// Publication periods: the table is sent at least every Refresh; a bridge without a change
// notification is polled for events every Poll.
const (
	Poll    = 100 * time.Millisecond
	Refresh = time.Second
)

// STPWatch turns successive snapshots of one bridge into publications and events. It reads
// no clock: Step is called per poll, with the time elapsed as the caller counts it.
type STPWatch struct {
	P      *Publisher
	Active func() bool
	Src    func() stp.Snapshot

	prev      *stp.Snapshot
	sinceSent time.Duration
}

// Step polls the bridge once: a bridge that became root sends NewRoot, otherwise a grown
// topology change count sends TopologyChange (RFC 4188: not both for one transition; the
// first snapshot only sets the baseline); the snapshot is published when an event was, or
// when Refresh has passed since the last.
func (w *STPWatch) Step(elapsed time.Duration) error {
	s := w.Src()
	prev := w.prev
	w.prev = &s
	var ev *Event
	switch {
	case prev == nil:
	case s.IsRoot && (!prev.IsRoot || prev.ID != s.ID):
		ev = &Event{Kind: NewRoot, Bridge: s.ID, Root: s.Root, TopologyChanges: s.TopologyChanges}
	case s.TopologyChanges > prev.TopologyChanges:
		ev = &Event{Kind: TopologyChange, Bridge: s.ID, Root: s.Root, TopologyChanges: s.TopologyChanges}
	}
	w.sinceSent += elapsed
	if ev == nil && prev != nil && w.sinceSent < Refresh {
		return nil
	}
	w.sinceSent = 0
	active := w.Active == nil || w.Active()
	err := w.P.STP(STPState{Active: active, Snapshot: s})
	if ev != nil {
		if eerr := w.P.Event(*ev); err == nil {
			err = eerr
		}
	}
	return err
}

// PublishSTP publishes a switch blade's bridge (src, e.g. (*stp.Bridge).Snapshot) to the
// mgmt blades until ctx ends: the snapshot every second, newRoot and topologyChange as they
// happen. changed (e.g. the switch agent's Changed) wakes it on each change of the bridge;
// without one (nil) it polls every Poll. It says whether this blade holds the active switch
// assignment, so the mgmt blade serves the active bridge. Send failures are counted and
// retried at the next wake-up.
func PublishSTP(ctx context.Context, h *ha.Blade, src func() stp.Snapshot, changed func() <-chan struct{}) error {
	w := &STPWatch{P: NewPublisher(h), Src: src, Active: func() bool { return h.Active(shelf.GroupSwitch, "") }}
	return run(ctx, changed, func(d time.Duration) { _ = w.Step(d) })
}

// run steps at each change (changed) and at least every Refresh; without changed, every Poll.
func run(ctx context.Context, changed func() <-chan struct{}, step func(time.Duration)) error {
	wait := Poll
	if changed != nil {
		wait = Refresh
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	last := time.Now()
	for {
		var ch <-chan struct{}
		if changed != nil {
			ch = changed() // before the step's read: no change is missed
		}
		now := time.Now()
		step(now.Sub(last))
		last = now
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-ch:
		case <-t.C:
		}
	}
}

// MAC6 parses a MAC address into the feed's form (zero when it is not one).
func MAC6(s string) (m [6]byte) {
	if hw, err := net.ParseMAC(s); err == nil && len(hw) == 6 {
		copy(m[:], hw)
	}
	return m
}

// PONIndex is a PON port's number from its name (pon0 is 0); 255 when the name has none.
func PONIndex(name string) uint8 {
	n, err := strconv.Atoi(strings.TrimLeft(name, "abcdefghijklmnopqrstuvwxyz"))
	if err != nil || n < 0 || n > 254 {
		return 255
	}
	return uint8(n)
}
