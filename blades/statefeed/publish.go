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

	"github.com/cgoa/cgoa/blades/epon/olt"
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

// Publication periods: the state is polled for events every Poll and the table sent at
// least every Refresh.
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
// mgmt blades until ctx ends: the snapshot every second, newRoot and topologyChange within
// Poll of happening. It says whether this blade holds the active switch assignment, so the
// mgmt blade serves the active bridge. Send failures are counted and retried next poll.
func PublishSTP(ctx context.Context, h *ha.Blade, src func() stp.Snapshot) error {
	w := &STPWatch{P: NewPublisher(h), Src: src, Active: func() bool { return h.Active(shelf.GroupSwitch, "") }}
	return run(ctx, func(d time.Duration) { _ = w.Step(d) })
}

func run(ctx context.Context, step func(time.Duration)) error {
	t := time.NewTicker(Poll)
	defer t.Stop()
	last := time.Now()
	step(0)
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			step(now.Sub(last))
			last = now
		}
	}
}

// OLTSource is one PON port's OLT as the EPON blade runs it (*olt.OLT).
type OLTSource interface {
	Name() string
	ShowPON() olt.PONView
	ShowONUs() []olt.ONUView
	ONU(llid uint16) (olt.ONUView, bool)
}

// PONFromOLT is the feed's table of one OLT.
func PONFromOLT(o OLTSource) PON {
	pv := o.ShowPON()
	p := PON{Name: pv.Name, MAC: mac6(pv.MAC), Index: PONIndex(pv.Name)}
	s := pv.Stats
	p.Stats = MPCPStats{MACCtrlFramesTransmitted: s.MACCtrlFramesTransmitted, MACCtrlFramesReceived: s.MACCtrlFramesReceived,
		DiscoveryWindowsSent: s.DiscoveryWindowsSent, DiscoveryTimeout: s.Timeouts, RxRegRequest: s.RxRegRequest,
		RxRegAck: s.RxRegAck, RxReport: s.RxReport, TxGate: s.TxGate, TxRegister: s.TxRegister}
	for _, v := range o.ShowONUs() {
		st := regState(v.State)
		if st == Unregistered {
			continue // no virtual link: RFC 4837 deletes the row when the ONU deregisters
		}
		u := ONU{LLID: v.LLID, MAC: mac6(v.MAC), State: st, RTT: uint32(min(max(v.RTT, 0), 1<<32-1)),
			PendingGrants: v.PendingGrants, OAMUp: v.OAM == "send-any"} // 802.3 57.5 discovery complete
		us := v.Stats
		u.Stats = MPCPStats{MACCtrlFramesTransmitted: us.MACCtrlFramesTransmitted, MACCtrlFramesReceived: us.MACCtrlFramesReceived,
			DiscoveryTimeout: us.Timeouts, RxRegRequest: us.RxRegRequest, RxRegAck: us.RxRegAck, RxReport: us.RxReport,
			TxGate: us.TxGate, TxRegister: us.TxRegister}
		p.ONUs = append(p.ONUs, u)
	}
	return p
}

func regState(s string) RegState {
	switch s {
	case "registered":
		return Registered
	case "registering":
		return Registering
	}
	return Unregistered
}

func mac6(s string) (m [6]byte) {
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

// EventFromAlarm maps an OLT alarm to a feed event: registered, deregistered, and lost (MPCP
// timeout, OAM link lost; an MPCP timeout also deregisters the ONU, so it gives both); false
// for alarms the feed does not carry.
func EventFromAlarm(a olt.Alarm) (Event, bool) {
	e := Event{PON: a.PON, PONIndex: PONIndex(a.PON), LLID: a.LLID, MAC: mac6(a.MAC)}
	switch a.Kind {
	case olt.AlarmRegistered:
		e.Kind = ONURegistered
	case olt.AlarmDeregistered:
		e.Kind = ONUDeregistered
	case olt.AlarmMPCPTimeout, olt.AlarmOAMLinkLost:
		e.Kind = ONULost
	default:
		return Event{}, false
	}
	return e, true
}

// EPONFeed publishes an EPON blade's OLTs: the table every Refresh, alarms as events at once.
type EPONFeed struct {
	p      *Publisher
	events chan Event
	olts   func() []OLTSource
	// Dropped counts events lost because the queue was full.
	Dropped atomic.Uint64
}

// NewEPONFeed publishes the OLTs olts returns through s.
func NewEPONFeed(s Sender, olts func() []OLTSource) *EPONFeed {
	return &EPONFeed{p: NewPublisher(s), events: make(chan Event, 256), olts: olts}
}

// Alarm queues the event of an OLT alarm. It never blocks (OLT alarm hooks run on the PON
// port's goroutine).
func (f *EPONFeed) Alarm(a olt.Alarm) {
	e, ok := EventFromAlarm(a)
	if !ok {
		return
	}
	if e.Kind == ONURegistered {
		for _, o := range f.olts() {
			if o.Name() == a.PON {
				if v, ok := o.ONU(a.LLID); ok {
					e.RTT = uint32(min(max(v.RTT, 0), 1<<32-1))
				}
			}
		}
	}
	select {
	case f.events <- e:
	default:
		f.Dropped.Add(1)
	}
}

// Table is the blade's current EPON table.
func (f *EPONFeed) Table() EPONState {
	var st EPONState
	for _, o := range f.olts() {
		st.PONs = append(st.PONs, PONFromOLT(o))
	}
	return st
}

// Run publishes until ctx ends.
func (f *EPONFeed) Run(ctx context.Context) error {
	t := time.NewTicker(Refresh)
	defer t.Stop()
	_ = f.p.EPON(f.Table())
	for {
		select {
		case <-ctx.Done():
			return nil
		case e := <-f.events:
			// The table first, so that the mgmt blade's row exists when the trap names it.
			_ = f.p.EPON(f.Table())
			_ = f.p.Event(e)
		case <-t.C:
			_ = f.p.EPON(f.Table())
		}
	}
}
