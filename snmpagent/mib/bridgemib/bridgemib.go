package bridgemib

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cgoa/cgoa/snmpagent"
	"github.com/cgoa/cgoa/snmpagent/mib/internal/flat"
	"github.com/cgoa/cgoa/stp"
)

// Source gives the bridge's current snapshot; ok=false while none is
// known.
type Source interface {
	Snapshot() (s stp.Snapshot, ok bool)
}

// SourceFunc adapts a function to Source.
type SourceFunc func() (stp.Snapshot, bool)

// Snapshot calls f.
func (f SourceFunc) Snapshot() (stp.Snapshot, bool) { return f() }

// FromBridge adapts a running bridge (*stp.Bridge) to Source.
func FromBridge(b interface{ Snapshot() stp.Snapshot }) Source {
	return SourceFunc(func() (stp.Snapshot, bool) { return b.Snapshot(), true })
}

// Options configure the module.
type Options struct {
	// IfIndex maps a bridge port's name to its IF-MIB ifIndex
	// (dot1dBasePortIfIndex); nil or unknown serves 0.
	IfIndex func(name string) (uint32, bool)
}

// OIDs of BRIDGE-MIB.
var (
	OIDBridgeMIB      = snmpagent.MustOID("1.3.6.1.2.1.17")
	OIDBase           = snmpagent.MustOID("1.3.6.1.2.1.17.1")
	OIDBasePortEntry  = snmpagent.MustOID("1.3.6.1.2.1.17.1.4.1")
	OIDStp            = snmpagent.MustOID("1.3.6.1.2.1.17.2")
	OIDStpPortEntry   = snmpagent.MustOID("1.3.6.1.2.1.17.2.15.1")
	OIDNewRoot        = snmpagent.MustOID("1.3.6.1.2.1.17.0.1")
	OIDTopologyChange = snmpagent.MustOID("1.3.6.1.2.1.17.0.2")
	zeroDotZero       = snmpagent.OID{0, 0}
)

// Bridge is the BRIDGE-MIB module.
type Bridge struct {
	src  Source
	opts Options
}

// New builds the module.
func New(src Source, opts Options) *Bridge { return &Bridge{src: src, opts: opts} }

// BridgeID is the BRIDGE-MIB BridgeId encoding: priority then MAC, 8 octets.
func BridgeID(id stp.BridgeID) []byte { return binary.BigEndian.AppendUint64(nil, uint64(id)) }

// centis converts to the MIB's Timeout/TimeTicks unit.
func centis(d time.Duration) uint32 { return uint32(max(d, 0) / (10 * time.Millisecond)) }

func truth(b bool) int32 {
	if b {
		return 1
	}
	return 2
}

func (b *Bridge) base(f *flat.Builder) {
	s, ok := b.src.Snapshot()
	if !ok {
		return
	}
	f.Add(OIDBase, snmpagent.OctetString(s.ID.MAC()), 1, 0)
	f.Add(OIDBase, snmpagent.Integer(int32(len(s.Ports))), 2, 0)
	f.Add(OIDBase, snmpagent.Integer(2), 3, 0) // transparent-only
	for _, p := range s.Ports {
		n := uint32(p.Number)
		var ifIndex uint32
		if b.opts.IfIndex != nil {
			ifIndex, _ = b.opts.IfIndex(p.Name)
		}
		f.Add(OIDBasePortEntry, snmpagent.Integer(int32(n)), 1, n)
		f.Add(OIDBasePortEntry, snmpagent.Integer(int32(ifIndex)), 2, n)
		f.Add(OIDBasePortEntry, snmpagent.ObjectIdentifier(zeroDotZero), 3, n)
	}
}

func (b *Bridge) stp(f *flat.Builder) {
	s, ok := b.src.Snapshot()
	if !ok {
		return
	}
	scalar := func(id uint32, v snmpagent.Value) { f.Add(OIDStp, v, id, 0) }
	scalar(1, snmpagent.Integer(3)) // ieee8021d
	scalar(2, snmpagent.Integer(int32(s.Priority)))
	scalar(3, snmpagent.TimeTicks(centis(s.SinceTopologyChange)))
	scalar(4, snmpagent.Counter32(uint32(s.TopologyChanges)))
	scalar(5, snmpagent.OctetString(BridgeID(s.Root)))
	scalar(6, snmpagent.Integer(int32(min(s.RootPathCost, 1<<31-1))))
	scalar(7, snmpagent.Integer(int32(s.RootPort)))
	scalar(8, snmpagent.Integer(int32(centis(s.MaxAge))))
	scalar(9, snmpagent.Integer(int32(centis(s.HelloTime))))
	scalar(10, snmpagent.Integer(int32(centis(s.HoldTime))))
	scalar(11, snmpagent.Integer(int32(centis(s.ForwardDelay))))
	scalar(12, snmpagent.Integer(int32(centis(s.BridgeMaxAge))))
	scalar(13, snmpagent.Integer(int32(centis(s.BridgeHelloTime))))
	scalar(14, snmpagent.Integer(int32(centis(s.BridgeForwardDelay))))
	for _, p := range s.Ports {
		n := uint32(p.Number)
		col := func(c uint32, v snmpagent.Value) { f.Add(OIDStpPortEntry, v, c, n) }
		col(1, snmpagent.Integer(int32(n)))
		col(2, snmpagent.Integer(int32(p.Priority)))
		col(3, snmpagent.Integer(int32(p.State)))
		col(4, snmpagent.Integer(truth(p.Enabled)))
		col(5, snmpagent.Integer(int32(min(p.PathCost, 65535))))
		col(6, snmpagent.OctetString(BridgeID(p.DesignatedRoot)))
		col(7, snmpagent.Integer(int32(min(p.DesignatedCost, 1<<31-1))))
		col(8, snmpagent.OctetString(BridgeID(p.DesignatedBridge)))
		col(9, snmpagent.OctetString(binary.BigEndian.AppendUint16(nil, uint16(p.DesignatedPort))))
		col(10, snmpagent.Counter32(uint32(p.ForwardTransitions)))
		col(11, snmpagent.Integer(int32(min(p.PathCost, 1<<31-1))))
	}
}

// Register serves dot1dBase and dot1dStp in a's tree and announces
// BRIDGE-MIB in sysORTable.
func (b *Bridge) Register(a *snmpagent.Agent) error {
	if err := a.Tree().Register(OIDBase, flat.Handler{Build: b.base}); err != nil {
		return fmt.Errorf("bridgemib: %w", err)
	}
	if err := a.Tree().Register(OIDStp, flat.Handler{Build: b.stp}); err != nil {
		a.Tree().Unregister(OIDBase)
		return fmt.Errorf("bridgemib: %w", err)
	}
	a.AddSysOR(OIDBridgeMIB, "The Bridge MIB module for managing devices that support IEEE 802.1D")
	return nil
}
