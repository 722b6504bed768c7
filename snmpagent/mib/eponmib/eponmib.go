package eponmib

import (
	"fmt"

	"github.com/cgoa/cgoa/snmpagent"
	"github.com/cgoa/cgoa/snmpagent/mib/internal/flat"
)

// OIDs of DOT3-EPON-MIB and the CGOA-EPON-MIB notifications.
var (
	OIDEponMIB      = snmpagent.MustOID("1.3.6.1.2.1.155")
	OIDMpcpObjects  = snmpagent.MustOID("1.3.6.1.2.1.155.1.1")
	OIDControlEntry = snmpagent.MustOID("1.3.6.1.2.1.155.1.1.1.1")
	OIDStatEntry    = snmpagent.MustOID("1.3.6.1.2.1.155.1.1.2.1")

	OIDOamMIB   = snmpagent.MustOID("1.3.6.1.2.1.158")
	OIDOamTable = snmpagent.MustOID("1.3.6.1.2.1.158.1.1")
	OIDOamEntry = snmpagent.MustOID("1.3.6.1.2.1.158.1.1.1")

	OIDCgoaEponMIB     = snmpagent.MustOID("1.3.6.1.4.1.99999.2.2")
	OIDOnuRegistered   = OIDCgoaEponMIB.Append(0, 1)
	OIDOnuDeregistered = OIDCgoaEponMIB.Append(0, 2)
	OIDOnuLost         = OIDCgoaEponMIB.Append(0, 3)
)

// Columns of dot3MpcpControlEntry.
const (
	ColOperStatus           = 1
	ColAdminState           = 2
	ColMode                 = 3
	ColLinkID               = 5
	ColRemoteMACAddress     = 6
	ColRegistrationState    = 7
	ColRoundTripTime        = 10
	ColMaximumPendingGrants = 11
)

// RegistrationState is dot3MpcpRegistrationState.
type RegistrationState int32

// Registration states.
const (
	Unregistered RegistrationState = 1
	Registering  RegistrationState = 2
	Registered   RegistrationState = 3
)

// BroadcastLLID is the LinkID of a PON port's own row.
const BroadcastLLID = 0xffff

// Stats are dot3MpcpStatTable's OLT-side counters.
type Stats struct {
	MACCtrlFramesTransmitted, MACCtrlFramesReceived uint64
	DiscoveryWindowsSent, DiscoveryTimeout          uint64
	RxRegRequest, RxRegAck, RxReport                uint64
	TxGate, TxRegister                              uint64
}

// Link is one row: a virtual link (an ONU's LLID) or a PON port (LinkID BroadcastLLID).
type Link struct {
	// IfIndex indexes the row; unique and non-zero.
	IfIndex   uint32
	LinkID    uint32
	RemoteMAC [6]byte
	State     RegistrationState
	// RTT is the round-trip time in 16 ns time quanta (capped at 65535 as the MIB says).
	RTT           uint32
	PendingGrants uint8
	Stats         Stats
	// OAMStatus is dot3OamOperStatus (RFC 4878, 1..10) of the link's 802.3ah OAM; 0: the
	// link has no OAM (a PON port's own row), so no dot3OamTable row.
	OAMStatus int32
}

// Source gives the current rows.
type Source interface {
	Links() []Link
}

// SourceFunc adapts a function to Source.
type SourceFunc func() []Link

// Links calls f.
func (f SourceFunc) Links() []Link { return f() }

// EPON is the DOT3-EPON-MIB module.
type EPON struct{ src Source }

// New builds the module.
func New(src Source) *EPON { return &EPON{src: src} }

func (e *EPON) build(f *flat.Builder) {
	seen := map[uint32]bool{}
	for _, l := range e.src.Links() {
		if l.IfIndex == 0 || l.IfIndex > 1<<31-1 || seen[l.IfIndex] {
			continue // not a valid, unique InterfaceIndex
		}
		seen[l.IfIndex] = true
		i := l.IfIndex
		ctl := func(col uint32, v snmpagent.Value) { f.Add(OIDControlEntry, v, col, i) }
		ctl(ColOperStatus, snmpagent.Integer(1)) // true: MPCP runs on every OLT port
		ctl(ColAdminState, snmpagent.Integer(1))
		ctl(ColMode, snmpagent.Integer(1)) // olt
		ctl(ColLinkID, snmpagent.Gauge32(l.LinkID))
		ctl(ColRemoteMACAddress, snmpagent.OctetString(l.RemoteMAC[:]))
		st := l.State
		if st < Unregistered || st > Registered {
			st = Unregistered
		}
		ctl(ColRegistrationState, snmpagent.Integer(int32(st)))
		ctl(ColRoundTripTime, snmpagent.Gauge32(min(l.RTT, 65535)))
		ctl(ColMaximumPendingGrants, snmpagent.Gauge32(uint32(l.PendingGrants)))
		s := l.Stats
		c64 := func(col uint32, v uint64) { f.Add(OIDStatEntry, snmpagent.Counter64(v), col, i) }
		c32 := func(col uint32, v uint64) { f.Add(OIDStatEntry, snmpagent.Counter32(uint32(v)), col, i) }
		c64(1, s.MACCtrlFramesTransmitted)
		c64(2, s.MACCtrlFramesReceived)
		c32(3, s.DiscoveryWindowsSent)
		c32(4, s.DiscoveryTimeout)
		c64(5, 0) // dot3MpcpTxRegRequest: an OLT sends none
		c64(6, s.RxRegRequest)
		c64(7, 0) // dot3MpcpTxRegAck
		c64(8, s.RxRegAck)
		c64(9, 0) // dot3MpcpTxReport
		c64(10, s.RxReport)
		c64(11, s.TxGate)
		c64(12, 0) // dot3MpcpRxGate
		c64(13, s.TxRegister)
		c64(14, 0) // dot3MpcpRxRegister
	}
}

// oam serves dot3OamTable: dot3OamAdminState enabled(1), dot3OamOperStatus, dot3OamMode
// active(2) (an OLT is the active OAM entity).
func (e *EPON) oam(f *flat.Builder) {
	seen := map[uint32]bool{}
	for _, l := range e.src.Links() {
		if l.IfIndex == 0 || l.IfIndex > 1<<31-1 || seen[l.IfIndex] || l.OAMStatus < 1 || l.OAMStatus > 10 {
			continue
		}
		seen[l.IfIndex] = true
		f.Add(OIDOamEntry, snmpagent.Integer(1), 1, l.IfIndex)
		f.Add(OIDOamEntry, snmpagent.Integer(l.OAMStatus), 2, l.IfIndex)
		f.Add(OIDOamEntry, snmpagent.Integer(2), 3, l.IfIndex)
	}
}

// Register serves dot3EponMpcpObjects and dot3OamTable in a's tree and announces
// DOT3-EPON-MIB and DOT3-OAM-MIB in sysORTable.
func (e *EPON) Register(a *snmpagent.Agent) error {
	if err := a.Tree().Register(OIDMpcpObjects, flat.Handler{Build: e.build}); err != nil {
		return fmt.Errorf("eponmib: %w", err)
	}
	if err := a.Tree().Register(OIDOamTable, flat.Handler{Build: e.oam}); err != nil {
		a.Tree().Unregister(OIDMpcpObjects)
		return fmt.Errorf("eponmib: %w", err)
	}
	a.AddSysOR(OIDEponMIB, "The MIB module for EPON interfaces (RFC 4837)")
	a.AddSysOR(OIDOamMIB, "The MIB module for Ethernet OAM (RFC 4878)")
	return nil
}

// Notification kinds.
const (
	OnuRegistered = iota + 1
	OnuDeregistered
	OnuLost
)

// Notification returns the CGOA-EPON-MIB notification of kind for l (its objects are
// dot3MpcpLinkID, dot3MpcpRemoteMACAddress and dot3MpcpRoundTripTime of l's row); false for
// an unknown kind.
func Notification(kind int, l Link) (snmpagent.OID, []snmpagent.Varbind, bool) {
	var trap snmpagent.OID
	switch kind {
	case OnuRegistered:
		trap = OIDOnuRegistered
	case OnuDeregistered:
		trap = OIDOnuDeregistered
	case OnuLost:
		trap = OIDOnuLost
	default:
		return nil, nil, false
	}
	return trap, []snmpagent.Varbind{
		{OID: OIDControlEntry.Append(ColLinkID, l.IfIndex), Value: snmpagent.Gauge32(l.LinkID)},
		{OID: OIDControlEntry.Append(ColRemoteMACAddress, l.IfIndex), Value: snmpagent.OctetString(l.RemoteMAC[:])},
		{OID: OIDControlEntry.Append(ColRoundTripTime, l.IfIndex), Value: snmpagent.Gauge32(min(l.RTT, 65535))},
	}, true
}
