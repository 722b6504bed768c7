package mgmt

import (
	"github.com/cgoa/cgoa/blades/statefeed"
	"github.com/cgoa/cgoa/snmpagent/mib/bridgemib"
	"github.com/cgoa/cgoa/snmpagent/mib/eponmib"
	"github.com/cgoa/cgoa/stp"
)

// EPONIfIndex is the ifIndex the agent gives an EPON virtual link (or, with LLID
// eponmib.BroadcastLLID, a PON port) in DOT3-EPON-MIB: slot<<24 | PON port<<16 | LLID. The
// OLTs' interfaces live on the EPON blades, so these indices are the agent's own; they are
// not rows of this blade's ifTable.
func EPONIfIndex(slot, pon uint8, llid uint16) uint32 {
	return uint32(slot&0x7f)<<24 | uint32(pon)<<16 | uint32(llid)
}

// eponLinks are DOT3-EPON-MIB's rows from the feed: every EPON blade's PON ports and LLIDs.
func eponLinks(f *statefeed.Feed) []eponmib.Link {
	var out []eponmib.Link
	for _, b := range f.PONs() {
		for _, p := range b.PONs {
			out = append(out, eponmib.Link{IfIndex: EPONIfIndex(b.Slot, p.Index, eponmib.BroadcastLLID),
				LinkID: eponmib.BroadcastLLID, State: eponmib.Unregistered, Stats: mibStats(p.Stats)})
			for _, u := range p.ONUs {
				out = append(out, eponmib.Link{IfIndex: EPONIfIndex(b.Slot, p.Index, u.LLID), LinkID: uint32(u.LLID),
					RemoteMAC: u.MAC, State: eponmib.RegistrationState(u.State), RTT: u.RTT,
					PendingGrants: u.PendingGrants, Stats: mibStats(u.Stats), OAMStatus: int32(u.OAMStatus)})
			}
		}
	}
	return out
}

func mibStats(s statefeed.MPCPStats) eponmib.Stats {
	return eponmib.Stats{MACCtrlFramesTransmitted: s.MACCtrlFramesTransmitted, MACCtrlFramesReceived: s.MACCtrlFramesReceived,
		DiscoveryWindowsSent: s.DiscoveryWindowsSent, DiscoveryTimeout: s.DiscoveryTimeout, RxRegRequest: s.RxRegRequest,
		RxRegAck: s.RxRegAck, RxReport: s.RxReport, TxGate: s.TxGate, TxRegister: s.TxRegister}
}

// feedModules are BRIDGE-MIB (the active switch blade's bridge) and DOT3-EPON-MIB served from
// the feed.
func feedModules(f *statefeed.Feed) (*bridgemib.Bridge, *eponmib.EPON) {
	br := bridgemib.New(bridgemib.SourceFunc(func() (stp.Snapshot, bool) { return f.Bridge() }), bridgemib.Options{})
	ep := eponmib.New(eponmib.SourceFunc(func() []eponmib.Link { return eponLinks(f) }))
	return br, ep
}

// feedEvent maps a feed event to its notification (RFC 4188 newRoot/topologyChange,
// CGOA-EPON-MIB ONU notifications) while this blade is (becoming) active. It never blocks.
func (s *SNMP) feedEvent(e statefeed.Event) {
	if !s.Wanted() {
		return
	}
	switch e.Kind {
	case statefeed.NewRoot:
		s.traps.NewRoot()
	case statefeed.TopologyChange:
		s.traps.TopologyChange()
	case statefeed.ONURegistered, statefeed.ONUDeregistered, statefeed.ONULost:
		kind := map[statefeed.EventKind]int{statefeed.ONURegistered: eponmib.OnuRegistered,
			statefeed.ONUDeregistered: eponmib.OnuDeregistered, statefeed.ONULost: eponmib.OnuLost}[e.Kind]
		l := eponmib.Link{IfIndex: EPONIfIndex(e.From, e.PONIndex, e.LLID), LinkID: uint32(e.LLID), RemoteMAC: e.MAC, RTT: e.RTT}
		if trap, vbs, ok := eponmib.Notification(kind, l); ok {
			s.traps.Notify(trap, vbs...)
		}
	}
}
