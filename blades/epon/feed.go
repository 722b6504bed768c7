package epon

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/cgoa/cgoa/blades/epon/olt"
	"github.com/cgoa/cgoa/blades/statefeed"
)

// The EPON blade's side of the shelf state feed (blades/statefeed): its OLT/ONU table and
// ONU events, published to the mgmt blades. It lives here, not in statefeed, so that the
// mgmt image, which links statefeed, does not carry the OLT.

// OLTSource is one PON port's OLT as the EPON blade runs it (*olt.OLT).
type OLTSource interface {
	Name() string
	ShowPON() olt.PONView
	ShowONUs() []olt.ONUView
	ONU(llid uint16) (olt.ONUView, bool)
}

// PONFromOLT is the feed's table of one OLT.
func PONFromOLT(o OLTSource) statefeed.PON {
	pv := o.ShowPON()
	p := statefeed.PON{Name: pv.Name, MAC: statefeed.MAC6(pv.MAC), Index: statefeed.PONIndex(pv.Name)}
	s := pv.Stats
	p.Stats = statefeed.MPCPStats{MACCtrlFramesTransmitted: s.MACCtrlFramesTransmitted, MACCtrlFramesReceived: s.MACCtrlFramesReceived,
		DiscoveryWindowsSent: s.DiscoveryWindowsSent, DiscoveryTimeout: s.Timeouts, RxRegRequest: s.RxRegRequest,
		RxRegAck: s.RxRegAck, RxReport: s.RxReport, TxGate: s.TxGate, TxRegister: s.TxRegister}
	for _, v := range o.ShowONUs() {
		st := regState(v.State)
		if st == statefeed.Unregistered {
			continue // no virtual link: RFC 4837 deletes the row when the ONU deregisters
		}
		u := statefeed.ONU{LLID: v.LLID, MAC: statefeed.MAC6(v.MAC), State: st, RTT: uint32(min(max(v.RTT, 0), 1<<32-1)),
			PendingGrants: v.PendingGrants, OAMStatus: oamStatus(v.OAM)}
		us := v.Stats
		u.Stats = statefeed.MPCPStats{MACCtrlFramesTransmitted: us.MACCtrlFramesTransmitted, MACCtrlFramesReceived: us.MACCtrlFramesReceived,
			DiscoveryTimeout: us.Timeouts, RxRegRequest: us.RxRegRequest, RxRegAck: us.RxRegAck, RxReport: us.RxReport,
			TxGate: us.TxGate, TxRegister: us.TxRegister}
		p.ONUs = append(p.ONUs, u)
	}
	return p
}

// oamStatus maps the OLT's 802.3 clause 57 discovery state to dot3OamOperStatus (RFC 4878):
// the OLT is an active-mode OAM entity.
func oamStatus(s string) uint8 {
	switch s {
	case "active-send-local":
		return 4 // activeSendLocal
	case "send-local-remote":
		return 5 // sendLocalAndRemote
	case "send-local-remote-ok":
		return 6 // sendLocalAndRemoteOk
	case "send-any":
		return 9 // operational
	}
	return 1 // disabled: no OAM with the ONU (yet)
}

func regState(s string) statefeed.RegState {
	switch s {
	case "registered":
		return statefeed.Registered
	case "registering":
		return statefeed.Registering
	}
	return statefeed.Unregistered
}

// EventFromAlarm maps an OLT alarm to a feed event: registered, deregistered, and lost (MPCP
// timeout, OAM link lost; an MPCP timeout also deregisters the ONU, so it gives both); false
// for alarms the feed does not carry.
func EventFromAlarm(a olt.Alarm) (statefeed.Event, bool) {
	e := statefeed.Event{PON: a.PON, PONIndex: statefeed.PONIndex(a.PON), LLID: a.LLID, MAC: statefeed.MAC6(a.MAC)}
	switch a.Kind {
	case olt.AlarmRegistered:
		e.Kind = statefeed.ONURegistered
	case olt.AlarmDeregistered:
		e.Kind = statefeed.ONUDeregistered
	case olt.AlarmMPCPTimeout, olt.AlarmOAMLinkLost:
		e.Kind = statefeed.ONULost
	default:
		return statefeed.Event{}, false
	}
	return e, true
}

// EPONFeed publishes an EPON blade's OLTs: the table every Refresh, alarms as events at once.
type EPONFeed struct {
	p      *statefeed.Publisher
	events chan statefeed.Event
	olts   func() []OLTSource
	// Dropped counts events lost because the queue was full.
	Dropped atomic.Uint64
}

// NewEPONFeed publishes the OLTs olts returns through s.
func NewEPONFeed(s statefeed.Sender, olts func() []OLTSource) *EPONFeed {
	return &EPONFeed{p: statefeed.NewPublisher(s), events: make(chan statefeed.Event, 256), olts: olts}
}

// Alarm queues the event of an OLT alarm. It never blocks (OLT alarm hooks run on the PON
// port's goroutine).
func (f *EPONFeed) Alarm(a olt.Alarm) {
	e, ok := EventFromAlarm(a)
	if !ok {
		return
	}
	if e.Kind == statefeed.ONURegistered {
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
func (f *EPONFeed) Table() statefeed.EPONState {
	var st statefeed.EPONState
	for _, o := range f.olts() {
		st.PONs = append(st.PONs, PONFromOLT(o))
	}
	return st
}

// Run publishes until ctx ends.
func (f *EPONFeed) Run(ctx context.Context) error {
	t := time.NewTicker(statefeed.Refresh)
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
