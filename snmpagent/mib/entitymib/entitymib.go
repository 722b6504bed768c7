package entitymib

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cgoa/cgoa/hal"
	"github.com/cgoa/cgoa/snmpagent"
	"github.com/cgoa/cgoa/snmpagent/mib/internal/flat"
)

// FRU is what a field-replaceable unit tells about itself.
type FRU struct {
	Serial      string
	Model       string
	MfgName     string
	HardwareRev string
	FirmwareRev string
	SoftwareRev string
}

// Slot is one slot of the shelf.
type Slot struct {
	Number  int // 1..16
	Present bool
	Role    string // "switch", "mgmt", "epon"
	Blade   FRU
	Ports   []string // the blade's ports, in a stable order
}

// Shelf is the inventory.
type Shelf struct {
	Number int
	Descr  string // default "CGOA ATCA shelf"
	FRU    FRU
	Slots  []Slot
}

// Inventory gives the current shelf inventory. The module keeps the
// returned Shelf: the source must not modify it afterwards.
type Inventory interface {
	Shelf() (Shelf, error)
}

// InventoryFunc adapts a function to Inventory.
type InventoryFunc func() (Shelf, error)

// Shelf calls f.
func (f InventoryFunc) Shelf() (Shelf, error) { return f() }

// FRUFromIPMI fills the firmware and hardware revisions and the vendor
// from an IPMI Get Device ID answer; serial and model stay as given.
func FRUFromIPMI(s hal.IPMIStatus, serial, model string) FRU {
	f := FRU{Serial: serial, Model: model}
	if s.Present && s.Error == "" {
		f.FirmwareRev = s.Firmware
		f.HardwareRev = fmt.Sprint(s.DeviceRevision)
		f.MfgName = fmt.Sprintf("IANA enterprise %d", s.ManufacturerID)
		if f.Model == "" {
			f.Model = fmt.Sprintf("product %#04x", s.ProductID)
		}
	}
	return f
}

// Options configure the module.
type Options struct {
	// IfIndex maps a blade's port to its IF-MIB ifIndex, for
	// entAliasMappingTable; nil or unknown leaves the port unmapped.
	IfIndex func(slot int, port string) (uint32, bool)
}

// OIDs of ENTITY-MIB.
var (
	OIDEntityMIB      = snmpagent.MustOID("1.3.6.1.2.1.47")
	OIDEntityObjects  = snmpagent.MustOID("1.3.6.1.2.1.47.1")
	OIDPhysicalEntry  = snmpagent.MustOID("1.3.6.1.2.1.47.1.1.1.1")
	OIDAliasMapEntry  = snmpagent.MustOID("1.3.6.1.2.1.47.1.3.2.1")
	OIDLastChangeTime = snmpagent.MustOID("1.3.6.1.2.1.47.1.4.1.0")
	oidIfIndex        = snmpagent.MustOID("1.3.6.1.2.1.2.2.1.1")
	zeroDotZero       = snmpagent.OID{0, 0}
)

// PhysicalClass values.
const (
	ClassChassis   = 3
	ClassContainer = 5
	ClassModule    = 9
	ClassPort      = 10
)

// Index scheme (see the package doc).
func ChassisIndex() uint32         { return 1 }
func SlotIndex(slot int) uint32    { return uint32(slot) * 1000 }
func BladeIndex(slot int) uint32   { return uint32(slot)*1000 + 1 }
func PortIndex(slot, k int) uint32 { return uint32(slot)*1000 + 100 + uint32(k) }

const maxPorts, maxSlot = 899, hal.MaxSlot

// Entity is the ENTITY-MIB module.
type Entity struct {
	inv    Inventory
	opts   Options
	upTime atomic.Pointer[func() uint32]
	errors atomic.Uint64

	mu          sync.Mutex
	last        Shelf // last good inventory
	have        bool
	fingerprint string
	lastChange  uint32
}

// New builds the module.
func New(inv Inventory, opts Options) *Entity {
	e := &Entity{inv: inv, opts: opts}
	zero := func() uint32 { return 0 }
	e.upTime.Store(&zero)
	return e
}

// InventoryErrors counts failed reads of the inventory; the last good
// one keeps being served.
func (e *Entity) InventoryErrors() uint64 { return e.errors.Load() }

func (e *Entity) shelf() (Shelf, bool) {
	s, err := e.inv.Shelf()
	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil {
		e.errors.Add(1)
		return e.last, e.have
	}
	fp := fmt.Sprintf("%+v", s)
	if e.have && fp != e.fingerprint {
		e.lastChange = (*e.upTime.Load())()
	}
	e.last, e.have, e.fingerprint = s, true, fp
	return s, true
}

type row struct {
	descr, name string
	containedIn uint32
	class       int32
	relPos      int32
	fru         FRU
	isFRU       bool
}

func (e *Entity) build(f *flat.Builder) {
	s, ok := e.shelf()
	if !ok {
		return
	}
	e.mu.Lock()
	lastChange := e.lastChange
	e.mu.Unlock()
	rows := map[uint32]row{}
	descr := s.Descr
	if descr == "" {
		descr = "CGOA ATCA shelf"
	}
	rows[ChassisIndex()] = row{descr: descr, name: fmt.Sprintf("shelf %d", s.Number), class: ClassChassis, relPos: -1, fru: s.FRU, isFRU: false}
	for _, sl := range s.Slots {
		if sl.Number < 1 || sl.Number > maxSlot {
			continue // not a slot of an ATCA shelf
		}
		rows[SlotIndex(sl.Number)] = row{descr: fmt.Sprintf("ATCA slot %d", sl.Number), name: fmt.Sprintf("slot %d", sl.Number),
			containedIn: ChassisIndex(), class: ClassContainer, relPos: int32(sl.Number)}
		if !sl.Present {
			continue
		}
		role := sl.Role
		if role == "" {
			role = "unknown"
		}
		rows[BladeIndex(sl.Number)] = row{descr: fmt.Sprintf("CGOA %s blade", role), name: fmt.Sprintf("%s-s%d", role, sl.Number),
			containedIn: SlotIndex(sl.Number), class: ClassModule, relPos: 1, fru: sl.Blade, isFRU: true}
		for k, p := range sl.Ports {
			if k >= maxPorts {
				break
			}
			idx := PortIndex(sl.Number, k+1)
			rows[idx] = row{descr: "Ethernet port " + p, name: p, containedIn: BladeIndex(sl.Number), class: ClassPort, relPos: int32(k + 1)}
			if e.opts.IfIndex != nil {
				if ifi, ok := e.opts.IfIndex(sl.Number, p); ok {
					f.Add(OIDAliasMapEntry, snmpagent.ObjectIdentifier(oidIfIndex.Append(ifi)), 2, idx, 0)
				}
			}
		}
	}
	for idx, r := range rows {
		col := func(c uint32, v snmpagent.Value) { f.Add(OIDPhysicalEntry, v, c, idx) }
		col(2, snmpagent.String(r.descr))
		col(3, snmpagent.ObjectIdentifier(zeroDotZero))
		col(4, snmpagent.Integer(int32(r.containedIn)))
		col(5, snmpagent.Integer(r.class))
		col(6, snmpagent.Integer(r.relPos))
		col(7, snmpagent.String(r.name))
		col(8, snmpagent.String(printable(r.fru.HardwareRev, 255)))
		col(9, snmpagent.String(printable(r.fru.FirmwareRev, 255)))
		col(10, snmpagent.String(printable(r.fru.SoftwareRev, 255)))
		col(11, snmpagent.String(printable(r.fru.Serial, 32)))
		col(12, snmpagent.String(printable(r.fru.MfgName, 255)))
		col(13, snmpagent.String(printable(r.fru.Model, 255)))
		col(14, snmpagent.String(""))
		col(15, snmpagent.String(""))
		isFRU := int32(2)
		if r.isFRU {
			isFRU = 1
		}
		col(16, snmpagent.Integer(isFRU))
		col(17, snmpagent.OctetString(make([]byte, 8))) // '0000000000000000'H: unknown
		col(18, snmpagent.String(""))
	}
	f.Add(OIDLastChangeTime[:len(OIDLastChangeTime)-1], snmpagent.TimeTicks(lastChange), 0)
}

// printable keeps a FRU string a valid SnmpAdminString: printable
// ASCII of at most n octets (32 for entPhysicalSerialNum).
func printable(s string, n int) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= n {
			break
		}
		if r >= ' ' && r < 0x7f {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Register serves the module in a's tree and announces ENTITY-MIB.
func (e *Entity) Register(a *snmpagent.Agent) error {
	up := func() uint32 {
		n, _ := a.Tree().Get(snmpagent.OIDSysUpTime).AsUint()
		return uint32(n)
	}
	e.upTime.Store(&up)
	if err := a.Tree().Register(OIDEntityObjects, flat.Handler{Build: e.build}); err != nil {
		return fmt.Errorf("entitymib: %w", err)
	}
	a.AddSysOR(OIDEntityMIB, "The MIB module for representing multiple logical entities supported by a single SNMP agent")
	return nil
}
