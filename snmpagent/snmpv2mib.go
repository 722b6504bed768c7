package snmpagent

import (
	"sync"
	"sync/atomic"

	"github.com/gosnmp/gosnmp"
)

// System configures the SNMPv2-MIB system group (RFC 3418).
type System struct {
	Descr    string
	ObjectID OID // sysObjectID; nil means the project's enterprise arc
	Contact  string
	Name     string
	Location string
	Services int32 // 0 means 72 (applications + end-to-end)
}

// Well-known OIDs of the modules registered by every agent.
var (
	OIDSystem        = MustOID("1.3.6.1.2.1.1")
	OIDSysUpTime     = MustOID("1.3.6.1.2.1.1.3.0")
	OIDSysOREntry    = MustOID("1.3.6.1.2.1.1.9.1")
	OIDSNMP          = MustOID("1.3.6.1.2.1.11")
	OIDSnmpTrapOID   = MustOID("1.3.6.1.6.3.1.1.4.1.0")
	OIDSnmpEngine    = MustOID("1.3.6.1.6.3.10.2.1")
	OIDSnmpTraps     = MustOID("1.3.6.1.6.3.1.1.5")
	OIDColdStart     = OIDSnmpTraps.Append(1)
	OIDWarmStart     = OIDSnmpTraps.Append(2)
	OIDAuthFailure   = OIDSnmpTraps.Append(5)
	oidSNMPv2MIB     = MustOID("1.3.6.1.6.3.1")
	oidUSMMIB        = MustOID("1.3.6.1.6.3.15")
	oidVACMMIB       = MustOID("1.3.6.1.6.3.16")
	oidFrameworkMIB  = MustOID("1.3.6.1.6.3.10")
	defaultObjectID  = MustOID("1.3.6.1.4.1.99999.1") // placeholder enterprise arc until one is assigned
	maxDisplayString = 255
)

type sysOR struct {
	id     OID
	descr  string
	uptime uint32
}

// systemGroup holds the SET-able system and snmp group objects.
type systemGroup struct {
	mu                      sync.Mutex
	descr                   string
	objectID                OID
	contact, name, location string
	services                int32
	enableAuthenTraps       atomic.Bool
	or                      []sysOR // sorted by index (1-based position)
	orLastChange            uint32
}

func displayString(v Value) gosnmp.SNMPError {
	b, ok := v.AsBytes()
	if !ok {
		return gosnmp.WrongType
	}
	if len(b) > maxDisplayString {
		return gosnmp.WrongLength
	}
	for _, c := range b {
		if c >= 0x7f || (c < 0x20 && c != '\r' && c != '\n' && c != '\t') {
			return gosnmp.WrongValue
		}
	}
	return gosnmp.NoError
}

// stringScalar is a SET-able DisplayString backed by *p under g.mu.
func (g *systemGroup) stringScalar(p *string) Scalar {
	return Scalar{
		Get: func() Value {
			g.mu.Lock()
			defer g.mu.Unlock()
			return String(*p)
		},
		Type:  gosnmp.OctetString,
		Check: displayString,
		Set: func(v Value) Value {
			b, _ := v.AsBytes()
			g.mu.Lock()
			defer g.mu.Unlock()
			old := String(*p)
			*p = string(b)
			return old
		},
	}
}

// AddSysOR registers a capability in sysORTable (RFC 3418) and returns its
// index. MIB modules call it when they register.
func (a *Agent) AddSysOR(id OID, descr string) int {
	g := a.sys
	up := a.upTime()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.or = append(g.or, sysOR{id.Clone(), descr, up})
	g.orLastChange = up
	return len(g.or)
}

func (a *Agent) registerBuiltins(s System) error {
	g := &systemGroup{descr: s.Descr, objectID: s.ObjectID, contact: s.Contact, name: s.Name, location: s.Location, services: s.Services}
	if g.objectID == nil {
		g.objectID = defaultObjectID
	}
	if g.services == 0 {
		g.services = 72
	}
	g.enableAuthenTraps.Store(false)
	a.sys = g
	c := &a.cnt
	counter := func(p *atomic.Uint64) Scalar {
		return Scalar{Get: func() Value { return Counter32(uint32(p.Load())) }}
	}
	sys := NewScalarGroup(OIDSystem, map[uint32]Scalar{
		1: {Get: func() Value { return String(g.descr) }},
		2: {Get: func() Value { return ObjectIdentifier(g.objectID) }},
		3: {Get: func() Value { return TimeTicks(a.upTime()) }},
		4: g.stringScalar(&g.contact),
		5: g.stringScalar(&g.name),
		6: g.stringScalar(&g.location),
		7: {Get: func() Value { return Integer(g.services) }},
		8: {Get: func() Value {
			g.mu.Lock()
			defer g.mu.Unlock()
			return TimeTicks(g.orLastChange)
		}},
	})
	orTable := NewTable(OIDSysOREntry, []uint32{2, 3, 4},
		func() []OID {
			g.mu.Lock()
			defer g.mu.Unlock()
			rows := make([]OID, len(g.or))
			for i := range g.or {
				rows[i] = OID{uint32(i + 1)}
			}
			return rows
		},
		func(col uint32, idx OID) (Value, bool) {
			g.mu.Lock()
			defer g.mu.Unlock()
			if len(idx) != 1 || idx[0] < 1 || int(idx[0]) > len(g.or) {
				return Value{}, false
			}
			e := g.or[idx[0]-1]
			switch col {
			case 2:
				return ObjectIdentifier(e.id), true
			case 3:
				return String(e.descr), true
			case 4:
				return TimeTicks(e.uptime), true
			}
			return Value{}, false
		})
	snmp := NewScalarGroup(OIDSNMP, map[uint32]Scalar{
		1:  counter(&c.InPkts),
		2:  counter(&c.OutPkts),
		3:  counter(&c.InBadVersions),
		4:  counter(&c.InBadCommunityNames),
		5:  counter(&c.InBadCommunityUses),
		6:  counter(&c.InASNParseErrs),
		15: counter(&c.InGetRequests),
		16: counter(&c.InGetNexts),
		17: counter(&c.InSetRequests),
		20: counter(&c.OutTooBigs),
		21: counter(&c.OutNoSuchNames),
		22: counter(&c.OutBadValues),
		24: counter(&c.OutGenErrs),
		28: counter(&c.OutGetResponses),
		29: counter(&c.OutTraps),
		30: {
			Get: func() Value {
				if g.enableAuthenTraps.Load() {
					return Integer(1)
				}
				return Integer(2)
			},
			Check: func(v Value) gosnmp.SNMPError {
				if i, _ := v.AsInt(); i != 1 && i != 2 {
					return gosnmp.WrongValue
				}
				return gosnmp.NoError
			},
			Set: func(v Value) Value {
				i, _ := v.AsInt()
				old := g.enableAuthenTraps.Swap(i == 1)
				if old {
					return Integer(1)
				}
				return Integer(2)
			},
		},
		31: counter(&c.SilentDrops),
		32: counter(&c.ProxyDrops),
	})
	engine := NewScalarGroup(OIDSnmpEngine, map[uint32]Scalar{
		1: {Get: func() Value { return OctetString(a.EngineID()) }},
		2: {Get: func() Value { b, _ := a.engineTime(); return Integer(int32(b)) }},
		3: {Get: func() Value { _, t := a.engineTime(); return Integer(int32(t)) }},
		4: {Get: func() Value { return Integer(int32(a.maxMsg)) }},
	})
	mpd := NewScalarGroup(oidMPDStats, map[uint32]Scalar{
		1: counter(&c.UnknownSecurityModels),
		2: counter(&c.InvalidMsgs),
		3: counter(&c.UnknownPDUHandlers),
	})
	usm := NewScalarGroup(oidUsmStats, map[uint32]Scalar{
		1: counter(&c.UsmUnsupportedSecLevels),
		2: counter(&c.UsmNotInTimeWindows),
		3: counter(&c.UsmUnknownUserNames),
		4: counter(&c.UsmUnknownEngineIDs),
		5: counter(&c.UsmWrongDigests),
		6: counter(&c.UsmDecryptionErrors),
	})
	unknownContexts := NewScalarGroup(MustOID("1.3.6.1.6.3.12.1"), map[uint32]Scalar{
		5: counter(&c.UnknownContexts),
	})
	regs := []struct {
		at OID
		h  Handler
	}{
		{OIDSystem, sys.WithSubtree(9, orTable)},
		{OIDSNMP, snmp},
		{OIDSnmpEngine, engine},
		{oidMPDStats, mpd},
		{oidUsmStats, usm},
		{MustOID("1.3.6.1.6.3.12.1.5"), unknownContexts},
	}
	for _, r := range regs {
		if err := a.tree.Register(r.at, r.h); err != nil {
			return err
		}
	}
	for _, m := range []struct {
		id    OID
		descr string
	}{
		{oidSNMPv2MIB, "The MIB module for SNMP entities (RFC 3418)"},
		{oidFrameworkMIB, "The SNMP management architecture MIB (RFC 3411)"},
		{MustOID("1.3.6.1.6.3.11.3.1.1"), "The MIB for message processing and dispatching (RFC 3412)"},
		{oidUSMMIB.Append(2, 1, 1), "The management information definitions for the SNMP User-based Security Model (RFC 3414)"},
		{oidVACMMIB.Append(2, 2, 1), "The View-based Access Control Model for SNMP (RFC 3415)"},
	} {
		a.AddSysOR(m.id, m.descr)
	}
	return nil
}
