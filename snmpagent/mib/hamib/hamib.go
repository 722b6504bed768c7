package hamib

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cgoa/cgoa/ha"
	"github.com/cgoa/cgoa/ha/amf"
	"github.com/cgoa/cgoa/ha/evt"
	"github.com/cgoa/cgoa/ha/transport"
	"github.com/cgoa/cgoa/snmpagent"
	"github.com/cgoa/cgoa/snmpagent/mib/internal/flat"
)

// Source gives the HA core's status; *ha.Blade is one.
type Source interface {
	Status() ha.Status
}

// OIDs of CGOA-HA-MIB.
var (
	OIDHaMIB          = snmpagent.MustOID("1.3.6.1.4.1.99999.2.1")
	OIDObjects        = OIDHaMIB.Append(1)
	OIDMembership     = OIDObjects.Append(1)
	OIDMemberEntry    = OIDMembership.Append(6, 1)
	OIDGroupEntry     = OIDObjects.Append(2, 1)
	OIDUnitEntry      = OIDObjects.Append(3, 1)
	OIDLastFailover   = OIDObjects.Append(4)
	OIDPreviousState  = OIDObjects.Append(5, 1, 0)
	OIDTransport      = OIDObjects.Append(6)
	OIDPathEntry      = OIDTransport.Append(11, 1)
	OIDStateChange    = OIDHaMIB.Append(0, 1)
	OIDFailover       = OIDHaMIB.Append(0, 2)
	OIDQuorumChange   = OIDHaMIB.Append(0, 3)
	OIDSelfSlot       = OIDMembership.Append(1, 0)
	OIDInQuorum       = OIDMembership.Append(2, 0)
	sysORDescr        = "CGOA-HA-MIB: membership, service groups and units, failovers, HA transport counters"
	enumUnknownState  = int32(6)
	enumUnknownOper   = int32(5)
	failoverGroupOID  = OIDLastFailover.Append(1, 0)
	failoverFromOID   = OIDLastFailover.Append(2, 0)
	failoverToOID     = OIDLastFailover.Append(3, 0)
	failoverDurOID    = OIDLastFailover.Append(4, 0)
	failoverReasonOID = OIDLastFailover.Append(6, 0)
)

// HA is the CGOA-HA-MIB module.
type HA struct {
	src    Source
	upTime atomic.Pointer[func() uint32]

	mu     sync.Mutex
	stamps map[failoverKey]uint32 // when each failover was learnt
}

type failoverKey struct{ group, from, to string }

// New builds the module.
func New(src Source) *HA {
	h := &HA{src: src, stamps: map[failoverKey]uint32{}}
	zero := func() uint32 { return 0 }
	h.upTime.Store(&zero)
	return h
}

func (h *HA) ticks() uint32 { return (*h.upTime.Load())() }

// Observe notes the time of failover events. It does not block and does
// not call the Source, so it may be subscribed to the HA event bus.
func (h *HA) Observe(e evt.Event) {
	if e.Kind != evt.Failover {
		return
	}
	k := failoverKey{e.Group, e.From, e.To}
	t := h.ticks()
	h.mu.Lock()
	if len(h.stamps) > 64 {
		clear(h.stamps) // only the last failover is served
	}
	h.stamps[k] = t
	h.mu.Unlock()
}

// HAState is the MIB's CgoaHaState for an amf state.
func HAState(s amf.HAState, known bool) int32 {
	if !known {
		return enumUnknownState
	}
	switch s {
	case amf.Active:
		return 1
	case amf.Standby:
		return 2
	case amf.Quiescing:
		return 3
	case amf.Quiesced:
		return 4
	case amf.Unassigned:
		return 5
	}
	return enumUnknownState
}

// parseHAState reads the words amf uses in events.
func parseHAState(s string) int32 {
	for st := amf.Unassigned; st <= amf.Quiesced; st++ {
		if st.String() == s {
			return HAState(st, true)
		}
	}
	return enumUnknownState
}

func model(m amf.Model) (int32, bool) {
	switch m {
	case amf.TwoN:
		return 1, true
	case amf.NPlusM:
		return 2, true
	case amf.NWayActive:
		return 3, true
	case amf.NoRedundancy:
		return 4, true
	}
	return 0, false
}

func oper(u amf.UnitStatus) int32 {
	if !u.Known {
		return enumUnknownOper
	}
	switch u.Oper {
	case amf.InService:
		return 1
	case amf.Locked:
		return 2
	case amf.Failed:
		return 3
	case amf.Extracting:
		return 4
	}
	return enumUnknownOper
}

func truth(b bool) int32 {
	if b {
		return 1
	}
	return 2
}

func ms(d time.Duration) uint32 { return uint32(min(max(d/time.Millisecond, 0), 1<<32-1)) }

// groupState is cgoaHaGroupState: protected(1), unprotected(2), unassigned(3).
func groupState(g amf.GroupStatus) (state int32, active int) {
	inService := 0
	for _, u := range g.Units {
		if u.Known && u.State == amf.Active {
			active++
		}
		if u.Known && u.Oper == amf.InService {
			inService++
		}
	}
	switch {
	case active == 0:
		return 3, 0
	case inService >= 2:
		return 1, active
	}
	return 2, active
}

func (h *HA) build(f *flat.Builder) {
	st := h.src.Status()
	up := 0
	for _, m := range st.View.Members {
		if m.Up {
			up++
		}
	}
	f.Add(OIDMembership, snmpagent.Gauge32(uint32(st.Self)), 1, 0)
	f.Add(OIDMembership, snmpagent.Integer(truth(st.InQuorum)), 2, 0)
	f.Add(OIDMembership, snmpagent.Gauge32(uint32(len(st.Voters))), 3, 0)
	f.Add(OIDMembership, snmpagent.Gauge32(uint32(len(st.Voters)/2+1)), 4, 0)
	f.Add(OIDMembership, snmpagent.Gauge32(uint32(up)), 5, 0)
	for _, m := range st.View.Members {
		s := uint32(m.Slot)
		f.Add(OIDMemberEntry, snmpagent.Integer(truth(m.Up)), 2, s)
		f.Add(OIDMemberEntry, snmpagent.Integer(truth(m.Connected)), 3, s)
		f.Add(OIDMemberEntry, snmpagent.Gauge32(ms(m.SinceHeard)), 4, s)
	}
	for gi, g := range st.Groups {
		gx := uint32(gi + 1)
		state, active := groupState(g)
		f.Add(OIDGroupEntry, snmpagent.String(g.Name), 2, gx)
		if m, ok := model(g.Model); ok {
			f.Add(OIDGroupEntry, snmpagent.Integer(m), 3, gx)
		}
		f.Add(OIDGroupEntry, snmpagent.Integer(state), 4, gx)
		f.Add(OIDGroupEntry, snmpagent.Gauge32(uint32(active)), 5, gx)
		for ui, u := range g.Units {
			ux := uint32(ui + 1)
			f.Add(OIDUnitEntry, snmpagent.String(u.Name), 2, gx, ux)
			f.Add(OIDUnitEntry, snmpagent.Gauge32(uint32(u.Node)), 3, gx, ux)
			f.Add(OIDUnitEntry, snmpagent.Integer(HAState(u.State, u.Known)), 4, gx, ux)
			f.Add(OIDUnitEntry, snmpagent.Integer(truth(!st.Replicated.Locked[u.Name])), 5, gx, ux)
			f.Add(OIDUnitEntry, snmpagent.Integer(oper(u)), 6, gx, ux)
			f.Add(OIDUnitEntry, snmpagent.String(strings.Join(u.Instances, ",")), 7, gx, ux)
		}
	}
	var rec amf.FailoverRecord
	var when uint32
	if st.LastFailover != nil {
		rec = *st.LastFailover
		k := failoverKey{rec.Group, rec.From, rec.To}
		h.mu.Lock()
		t, ok := h.stamps[k]
		if !ok {
			t = h.ticks()
			h.stamps[k] = t
		}
		h.mu.Unlock()
		when = t
	}
	f.Add(OIDLastFailover, snmpagent.String(rec.Group), 1, 0)
	f.Add(OIDLastFailover, snmpagent.String(rec.From), 2, 0)
	f.Add(OIDLastFailover, snmpagent.String(rec.To), 3, 0)
	f.Add(OIDLastFailover, snmpagent.Gauge32(ms(rec.Duration)), 4, 0)
	f.Add(OIDLastFailover, snmpagent.TimeTicks(when), 5, 0)
	f.Add(OIDLastFailover, snmpagent.String(rec.Reason), 6, 0)
	c := st.Transport
	// cgoaHaFramesSent (1) to cgoaHaBadPayloads (10), in the MIB's order.
	for i, v := range []uint64{c.Sent, c.Received, c.Duplicates, c.Forged, c.Replayed, c.Stale, c.Short, c.Garbled, c.Misrouted, st.BadPayloads} {
		f.Add(OIDTransport, snmpagent.Counter64(v), uint32(i+1), 0)
	}
	for p := range transport.Paths {
		px := uint32(p + 1)
		f.Add(OIDPathEntry, snmpagent.String(fmt.Sprint("base", p)), 2, px)
		f.Add(OIDPathEntry, snmpagent.Counter64(c.PathRx[p]), 3, px)
		f.Add(OIDPathEntry, snmpagent.Counter64(c.PathTxErr[p]), 4, px)
	}
}

// Register serves the module in a's tree and announces it in sysORTable.
func (h *HA) Register(a *snmpagent.Agent) error {
	up := func() uint32 {
		n, _ := a.Tree().Get(snmpagent.OIDSysUpTime).AsUint()
		return uint32(n)
	}
	h.upTime.Store(&up)
	if err := a.Tree().Register(OIDObjects, flat.Handler{Build: h.build}); err != nil {
		return fmt.Errorf("hamib: %w", err)
	}
	a.AddSysOR(OIDHaMIB, sysORDescr)
	return nil
}

// StateChangeVarbinds are cgoaHaStateChange's objects for an assignment
// event (evt.Assignment): the unit's name, slot, previous and new HA
// state, indexed by the unit's row. ok=false when the event's unit is
// not in the configuration. It calls the Source: never call it from an
// HA event subscriber.
func (h *HA) StateChangeVarbinds(e evt.Event) (vbs []snmpagent.Varbind, ok bool) {
	st := h.src.Status()
	for gi, g := range st.Groups {
		if e.Group != "" && g.Name != e.Group {
			continue
		}
		for ui, u := range g.Units {
			if u.Name != e.Subject {
				continue
			}
			gx, ux := uint32(gi+1), uint32(ui+1)
			return []snmpagent.Varbind{
				{OID: OIDUnitEntry.Append(2, gx, ux), Value: snmpagent.String(u.Name)},
				{OID: OIDUnitEntry.Append(3, gx, ux), Value: snmpagent.Gauge32(uint32(u.Node))},
				{OID: OIDPreviousState, Value: snmpagent.Integer(parseHAState(e.From))},
				{OID: OIDUnitEntry.Append(4, gx, ux), Value: snmpagent.Integer(parseHAState(e.To))},
			}, true
		}
	}
	return nil, false
}

// FailoverVarbinds are cgoaHaFailover's objects for a failover event
// (evt.Failover), whose detail reads "<reason> in <duration>".
func FailoverVarbinds(e evt.Event) []snmpagent.Varbind {
	reason, dur := e.Detail, time.Duration(0)
	if r, d, ok := strings.Cut(e.Detail, " in "); ok {
		if pd, err := time.ParseDuration(d); err == nil {
			reason, dur = r, pd
		}
	}
	return []snmpagent.Varbind{
		{OID: failoverGroupOID, Value: snmpagent.String(e.Group)},
		{OID: failoverFromOID, Value: snmpagent.String(e.From)},
		{OID: failoverToOID, Value: snmpagent.String(e.To)},
		{OID: failoverDurOID, Value: snmpagent.Gauge32(ms(dur))},
		{OID: failoverReasonOID, Value: snmpagent.String(reason)},
	}
}

// QuorumVarbinds are cgoaHaQuorumChange's objects for a quorum event
// (evt.Quorum: To is "quorum" or "minority").
func QuorumVarbinds(e evt.Event) []snmpagent.Varbind {
	slot, _ := strconv.ParseUint(e.Subject, 10, 8)
	if slot == 0 {
		slot = uint64(e.Node)
	}
	return []snmpagent.Varbind{
		{OID: OIDSelfSlot, Value: snmpagent.Gauge32(uint32(slot))},
		{OID: OIDInQuorum, Value: snmpagent.Integer(truth(e.To == "quorum"))},
	}
}
