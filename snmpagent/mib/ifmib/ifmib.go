package ifmib

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cgoa/cgoa/hal"
	"github.com/cgoa/cgoa/snmpagent"
	"github.com/gosnmp/gosnmp"
)

// PortSource lists the ports to serve.
type PortSource interface {
	Ports() ([]hal.Port, error)
}

// PortsFunc adapts a function (such as (*hal.Ports).List) to PortSource.
type PortsFunc func() ([]hal.Port, error)

// Ports calls f.
func (f PortsFunc) Ports() ([]hal.Port, error) { return f() }

// Clock gives the module its time.
type Clock interface{ Now() time.Time }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Options configure Interfaces.
type Options struct {
	// Speed returns a port's nominal speed in bits/s (0: unknown); nil
	// reads /sys/class/net/NAME/speed.
	Speed func(name string) uint64
	// Admin, when set, makes ifAdminStatus writable: it brings the port
	// administratively up or down.
	Admin func(name string, up bool) error
	// MaxAge is how long one sample of the ports answers requests
	// (default 1 s): a walk reads the source once, not once per cell.
	MaxAge time.Duration
	Clock  Clock
}

// OIDs of IF-MIB.
var (
	OIDInterfaces   = snmpagent.MustOID("1.3.6.1.2.1.2")
	OIDIfEntry      = snmpagent.MustOID("1.3.6.1.2.1.2.2.1")
	OIDIfMIB        = snmpagent.MustOID("1.3.6.1.2.1.31")
	OIDIfMIBObjects = snmpagent.MustOID("1.3.6.1.2.1.31.1")
	OIDIfXEntry     = snmpagent.MustOID("1.3.6.1.2.1.31.1.1.1")
	OIDLinkDown     = snmpagent.MustOID("1.3.6.1.6.3.1.1.5.3")
	OIDLinkUp       = snmpagent.MustOID("1.3.6.1.6.3.1.1.5.4")
)

// ifTable and ifXTable columns served.
const (
	colIndex       = 1
	colDescr       = 2
	colType        = 3
	colMtu         = 4
	colSpeed       = 5
	colPhysAddress = 6
	colAdminStatus = 7
	colOperStatus  = 8
	colLastChange  = 9
	colInOctets    = 10
	colInUcast     = 11
	colInDiscards  = 13
	colInErrors    = 14
	colOutOctets   = 16
	colOutUcast    = 17
	colOutDiscards = 19
	colOutErrors   = 20

	xName          = 1
	xHCInOctets    = 6
	xHCInUcast     = 7
	xHCOutOctets   = 10
	xHCOutUcast    = 11
	xLinkTrap      = 14
	xHighSpeed     = 15
	xAlias         = 18
	ifTypeEthernet = 6 // IANAifType ethernetCsmacd
	maxAlias       = 64
)

// Counters are a port's served counter values.
type Counters struct {
	InOctets    uint64 `json:"in_octets"`
	InPkts      uint64 `json:"in_pkts"`
	InDiscards  uint64 `json:"in_discards"`
	InErrors    uint64 `json:"in_errors"`
	OutOctets   uint64 `json:"out_octets"`
	OutPkts     uint64 `json:"out_pkts"`
	OutDiscards uint64 `json:"out_discards"`
	OutErrors   uint64 `json:"out_errors"`
}

func (c *Counters) fields() [8]*uint64 {
	return [8]*uint64{&c.InOctets, &c.InPkts, &c.InDiscards, &c.InErrors, &c.OutOctets, &c.OutPkts, &c.OutDiscards, &c.OutErrors}
}

func countersOf(p hal.Port) Counters {
	return Counters{p.RxBytes, p.RxPackets, p.RxDropped, p.RxErrors, p.TxBytes, p.TxPackets, p.TxDropped, p.TxErrors}
}

// LinkChange is an ifOperStatus change seen by a sample.
type LinkChange struct {
	Index   uint32
	Name    string
	Up      bool // new ifOperStatus is up(1)
	AdminUp bool
	// TrapEnabled is ifLinkUpDownTrapEnable: false means the manager
	// asked for no linkUp/linkDown for this port.
	TrapEnabled bool
}

// TrapOID is linkUp or linkDown.
func (c LinkChange) TrapOID() snmpagent.OID {
	if c.Up {
		return OIDLinkUp
	}
	return OIDLinkDown
}

// Varbinds are the notification's objects: ifIndex, ifAdminStatus,
// ifOperStatus of the port (RFC 2863 linkUp/linkDown).
func (c LinkChange) Varbinds() []snmpagent.Varbind {
	return []snmpagent.Varbind{
		{OID: OIDIfEntry.Append(colIndex, c.Index), Value: snmpagent.Integer(int32(c.Index))},
		{OID: OIDIfEntry.Append(colAdminStatus, c.Index), Value: snmpagent.Integer(status(c.AdminUp))},
		{OID: OIDIfEntry.Append(colOperStatus, c.Index), Value: snmpagent.Integer(status(c.Up))},
	}
}

func status(up bool) int32 {
	if up {
		return 1
	}
	return 2
}

type port struct {
	name       string
	index      uint32
	alias      string
	linkTraps  bool
	present    bool
	hw         hal.Port
	speed      uint64
	up         bool
	lastChange uint32
	served     Counters
	raw        Counters
	haveRaw    bool // raw is a baseline of the current source
}

// Interfaces is the IF-MIB module.
type Interfaces struct {
	src  PortSource
	opts Options

	upTime atomic.Pointer[func() uint32]
	// SourceErrors counts failed reads of the port source; the last good
	// sample keeps being served.
	sourceErrors atomic.Uint64

	mu              sync.Mutex
	ports           map[string]*port
	rows            []*port // present ports by index
	next            uint32
	sampled         time.Time
	everSampled     bool
	tableLastChange uint32
	listeners       []func(LinkChange)
}

// New builds the module; it reads src only when asked.
func New(src PortSource, opts Options) *Interfaces {
	if opts.Clock == nil {
		opts.Clock = systemClock{}
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = time.Second
	}
	if opts.Speed == nil {
		opts.Speed = SysfsSpeed
	}
	i := &Interfaces{src: src, opts: opts, ports: map[string]*port{}, next: 1}
	zero := func() uint32 { return 0 }
	i.upTime.Store(&zero)
	return i
}

// SysfsSpeed reads a port's speed from /sys/class/net; 0 when unknown.
func SysfsSpeed(name string) uint64 {
	if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		return 0
	}
	b, err := os.ReadFile("/sys/class/net/" + name + "/speed")
	if err != nil {
		return 0
	}
	mbps, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || mbps <= 0 {
		return 0
	}
	return uint64(mbps) * 1_000_000
}

// SourceErrors is how many reads of the port source failed.
func (i *Interfaces) SourceErrors() uint64 { return i.sourceErrors.Load() }

// OnLinkChange calls f (outside any lock, on the goroutine that sampled)
// for every ifOperStatus change a sample sees.
func (i *Interfaces) OnLinkChange(f func(LinkChange)) {
	i.mu.Lock()
	i.listeners = append(i.listeners, f)
	i.mu.Unlock()
}

// IfIndex returns the ifIndex assigned to a port name.
func (i *Interfaces) IfIndex(name string) (uint32, bool) {
	i.sample(false)
	i.mu.Lock()
	defer i.mu.Unlock()
	p := i.ports[name]
	if p == nil {
		return 0, false
	}
	return p.index, true
}

// Refresh samples the source now, whatever the age of the last sample,
// and reports link changes. Call it when the platform says a link
// changed, or let Poll call it.
func (i *Interfaces) Refresh() error { return i.sample(true) }

// Poll refreshes every interval until ctx ends.
func (i *Interfaces) Poll(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		_ = i.Refresh() // counted in SourceErrors
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (i *Interfaces) ticks() uint32 { return (*i.upTime.Load())() }

// sample reads the source when the last sample is older than MaxAge (or
// always when force) and updates rows, counters and link states.
func (i *Interfaces) sample(force bool) error {
	now := i.opts.Clock.Now()
	i.mu.Lock()
	if !force && i.everSampled && now.Sub(i.sampled) < i.opts.MaxAge && now.Sub(i.sampled) >= 0 {
		i.mu.Unlock()
		return nil
	}
	i.mu.Unlock()
	hw, err := i.src.Ports()
	if err != nil {
		i.sourceErrors.Add(1)
		return fmt.Errorf("ifmib: ports: %w", err)
	}
	speeds := make([]uint64, len(hw))
	for k, p := range hw {
		speeds[k] = i.opts.Speed(p.Name)
	}
	ticks := i.ticks()
	i.mu.Lock()
	first := !i.everSampled
	i.sampled, i.everSampled = now, true
	var changes []LinkChange
	seen := map[string]bool{}
	tableChanged := false
	for k, h := range hw {
		if h.Name == "" || seen[h.Name] {
			continue
		}
		seen[h.Name] = true
		p := i.ports[h.Name]
		if p == nil {
			p = &port{name: h.Name, index: i.next, linkTraps: true}
			i.next++
			i.ports[h.Name] = p
		}
		up := h.OperUp || (h.AdminUp && h.Carrier)
		switch {
		case !p.present:
			// (Re)appeared: it entered its state now, unless this is
			// the first look after the agent (re)started.
			tableChanged = true
			if !first {
				p.lastChange = ticks
			}
		case up != p.up:
			p.lastChange = ticks
			changes = append(changes, LinkChange{Index: p.index, Name: p.name, Up: up, AdminUp: h.AdminUp, TrapEnabled: p.linkTraps})
		}
		p.present, p.up, p.hw, p.speed = true, up, h, speeds[k]
		p.advance(countersOf(h))
	}
	for _, p := range i.ports {
		if p.present && !seen[p.name] {
			// Gone: keep its index and served counters; its next
			// appearance is a new source baseline.
			p.present, p.haveRaw = false, false
			tableChanged = true
		}
	}
	if tableChanged {
		i.rebuild()
		if !first {
			i.tableLastChange = ticks
		}
	}
	listeners := slices.Clone(i.listeners)
	i.mu.Unlock()
	for _, c := range changes {
		for _, f := range listeners {
			f(c)
		}
	}
	return nil
}

// advance adds the source counters' growth since the last sample.
func (p *port) advance(raw Counters) {
	if !p.haveRaw {
		if p.served == (Counters{}) {
			p.served = raw
		}
		p.raw, p.haveRaw = raw, true
		return
	}
	s, r, last := p.served.fields(), raw.fields(), p.raw.fields()
	for k := range s {
		if *r[k] >= *last[k] {
			*s[k] += *r[k] - *last[k]
		} else {
			*s[k] += *r[k]
		}
	}
	p.raw = raw
}

func (i *Interfaces) rebuild() {
	i.rows = i.rows[:0]
	for _, p := range i.ports {
		if p.present {
			i.rows = append(i.rows, p)
		}
	}
	slices.SortFunc(i.rows, func(a, b *port) int { return int(a.index) - int(b.index) })
}

func (i *Interfaces) rowIndexes() []snmpagent.OID {
	i.sample(false)
	i.mu.Lock()
	defer i.mu.Unlock()
	out := make([]snmpagent.OID, len(i.rows))
	for k, p := range i.rows {
		out[k] = snmpagent.OID{p.index}
	}
	return out
}

// row returns the present port at index idx (i.mu held).
func (i *Interfaces) row(idx snmpagent.OID) *port {
	if len(idx) != 1 {
		return nil
	}
	k, ok := slices.BinarySearchFunc(i.rows, idx[0], func(p *port, n uint32) int { return int(p.index) - int(n) })
	if !ok {
		return nil
	}
	return i.rows[k]
}

func mac(s string) []byte {
	hw, err := net.ParseMAC(s)
	if err != nil {
		return []byte{}
	}
	return hw
}

func (i *Interfaces) ifCell(col uint32, idx snmpagent.OID) (snmpagent.Value, bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	p := i.row(idx)
	if p == nil {
		return snmpagent.Value{}, false
	}
	c := p.served
	switch col {
	case colIndex:
		return snmpagent.Integer(int32(p.index)), true
	case colDescr:
		return snmpagent.String(p.name), true
	case colType:
		return snmpagent.Integer(ifTypeEthernet), true
	case colMtu:
		return snmpagent.Integer(int32(p.hw.MTU)), true
	case colSpeed:
		return snmpagent.Gauge32(uint32(min(p.speed, 1<<32-1))), true
	case colPhysAddress:
		return snmpagent.OctetString(mac(p.hw.MAC)), true
	case colAdminStatus:
		return snmpagent.Integer(status(p.hw.AdminUp)), true
	case colOperStatus:
		return snmpagent.Integer(status(p.up)), true
	case colLastChange:
		return snmpagent.TimeTicks(p.lastChange), true
	case colInOctets:
		return snmpagent.Counter32(uint32(c.InOctets)), true
	case colInUcast:
		return snmpagent.Counter32(uint32(c.InPkts)), true
	case colInDiscards:
		return snmpagent.Counter32(uint32(c.InDiscards)), true
	case colInErrors:
		return snmpagent.Counter32(uint32(c.InErrors)), true
	case colOutOctets:
		return snmpagent.Counter32(uint32(c.OutOctets)), true
	case colOutUcast:
		return snmpagent.Counter32(uint32(c.OutPkts)), true
	case colOutDiscards:
		return snmpagent.Counter32(uint32(c.OutDiscards)), true
	case colOutErrors:
		return snmpagent.Counter32(uint32(c.OutErrors)), true
	}
	return snmpagent.Value{}, false
}

func (i *Interfaces) ifXCell(col uint32, idx snmpagent.OID) (snmpagent.Value, bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	p := i.row(idx)
	if p == nil {
		return snmpagent.Value{}, false
	}
	switch col {
	case xName:
		return snmpagent.String(p.name), true
	case xHCInOctets:
		return snmpagent.Counter64(p.served.InOctets), true
	case xHCInUcast:
		return snmpagent.Counter64(p.served.InPkts), true
	case xHCOutOctets:
		return snmpagent.Counter64(p.served.OutOctets), true
	case xHCOutUcast:
		return snmpagent.Counter64(p.served.OutPkts), true
	case xLinkTrap:
		return snmpagent.Integer(status(p.linkTraps)), true
	case xHighSpeed:
		return snmpagent.Gauge32(uint32(min(p.speed/1_000_000, 1<<32-1))), true
	case xAlias:
		return snmpagent.String(p.alias), true
	}
	return snmpagent.Value{}, false
}

func upDown(v snmpagent.Value) (bool, gosnmp.SNMPError) {
	n, ok := v.AsInt()
	switch {
	case !ok:
		return false, gosnmp.WrongType
	case n == 1:
		return true, gosnmp.NoError
	case n == 2:
		return false, gosnmp.NoError
	}
	return false, gosnmp.WrongValue
}

func checkAlias(v snmpagent.Value) gosnmp.SNMPError {
	b, ok := v.AsBytes()
	if !ok || v.Type != gosnmp.OctetString {
		return gosnmp.WrongType
	}
	if len(b) > maxAlias {
		return gosnmp.WrongLength
	}
	for _, c := range b {
		if c >= 0x7f || (c < 0x20 && c != '\r' && c != '\n' && c != '\t') {
			return gosnmp.WrongValue
		}
	}
	return gosnmp.NoError
}

func (i *Interfaces) testIf(col uint32, idx snmpagent.OID, v snmpagent.Value) gosnmp.SNMPError {
	if col != colAdminStatus || i.opts.Admin == nil {
		return gosnmp.NotWritable
	}
	i.sample(false)
	i.mu.Lock()
	p := i.row(idx)
	i.mu.Unlock()
	if p == nil {
		return gosnmp.NoCreation
	}
	_, st := upDown(v)
	return st
}

func (i *Interfaces) commitIf(col uint32, idx snmpagent.OID, v snmpagent.Value) (func() error, gosnmp.SNMPError) {
	up, st := upDown(v)
	if st != gosnmp.NoError || col != colAdminStatus || i.opts.Admin == nil {
		return nil, gosnmp.CommitFailed
	}
	i.mu.Lock()
	p := i.row(idx)
	var name string
	var was bool
	if p != nil {
		name, was = p.name, p.hw.AdminUp
	}
	i.mu.Unlock()
	if p == nil {
		return nil, gosnmp.CommitFailed
	}
	if err := i.opts.Admin(name, up); err != nil {
		return nil, gosnmp.CommitFailed
	}
	i.mu.Lock()
	p.hw.AdminUp = up
	i.sampled = time.Time{} // read the port's real state on the next request
	i.mu.Unlock()
	return func() error { return i.opts.Admin(name, was) }, gosnmp.NoError
}

func (i *Interfaces) testIfX(col uint32, idx snmpagent.OID, v snmpagent.Value) gosnmp.SNMPError {
	i.sample(false)
	i.mu.Lock()
	p := i.row(idx)
	i.mu.Unlock()
	switch {
	case col != xAlias && col != xLinkTrap:
		return gosnmp.NotWritable
	case p == nil:
		return gosnmp.NoCreation
	case col == xAlias:
		return checkAlias(v)
	}
	_, st := upDown(v)
	return st
}

func (i *Interfaces) commitIfX(col uint32, idx snmpagent.OID, v snmpagent.Value) (func() error, gosnmp.SNMPError) {
	i.mu.Lock()
	defer i.mu.Unlock()
	p := i.row(idx)
	if p == nil {
		return nil, gosnmp.CommitFailed
	}
	switch col {
	case xAlias:
		b, _ := v.AsBytes()
		old := p.alias
		p.alias = string(b)
		return func() error { i.mu.Lock(); p.alias = old; i.mu.Unlock(); return nil }, gosnmp.NoError
	case xLinkTrap:
		on, st := upDown(v)
		if st != gosnmp.NoError {
			return nil, gosnmp.CommitFailed
		}
		old := p.linkTraps
		p.linkTraps = on
		return func() error { i.mu.Lock(); p.linkTraps = old; i.mu.Unlock(); return nil }, gosnmp.NoError
	}
	return nil, gosnmp.CommitFailed
}

// Register serves the module in a's tree (interfaces group and
// ifMIBObjects) and announces IF-MIB in sysORTable.
func (i *Interfaces) Register(a *snmpagent.Agent) error {
	up := func() uint32 {
		n, _ := a.Tree().Get(snmpagent.OIDSysUpTime).AsUint()
		return uint32(n)
	}
	i.upTime.Store(&up)
	ifCols := []uint32{colIndex, colDescr, colType, colMtu, colSpeed, colPhysAddress, colAdminStatus, colOperStatus,
		colLastChange, colInOctets, colInUcast, colInDiscards, colInErrors, colOutOctets, colOutUcast, colOutDiscards, colOutErrors}
	ifTable := snmpagent.NewTable(OIDIfEntry, ifCols, i.rowIndexes, i.ifCell).WithSet(i.testIf, i.commitIf)
	ifXCols := []uint32{xName, xHCInOctets, xHCInUcast, xHCOutOctets, xHCOutUcast, xLinkTrap, xHighSpeed, xAlias}
	ifXTable := snmpagent.NewTable(OIDIfXEntry, ifXCols, i.rowIndexes, i.ifXCell).WithSet(i.testIfX, i.commitIfX)
	interfaces := snmpagent.NewScalarGroup(OIDInterfaces, map[uint32]snmpagent.Scalar{
		1: {Get: func() snmpagent.Value { return snmpagent.Integer(int32(len(i.rowIndexes()))) }},
	}).WithSubtree(2, ifTable)
	objects := snmpagent.NewScalarGroup(OIDIfMIBObjects, map[uint32]snmpagent.Scalar{
		5: {Get: func() snmpagent.Value {
			i.sample(false)
			i.mu.Lock()
			defer i.mu.Unlock()
			return snmpagent.TimeTicks(i.tableLastChange)
		}},
	}).WithSubtree(1, ifXTable)
	if err := a.Tree().Register(OIDInterfaces, interfaces); err != nil {
		return fmt.Errorf("ifmib: %w", err)
	}
	if err := a.Tree().Register(OIDIfMIBObjects, objects); err != nil {
		a.Tree().Unregister(OIDInterfaces)
		return fmt.Errorf("ifmib: %w", err)
	}
	a.AddSysOR(OIDIfMIB, "The MIB module to describe generic objects for network interface sub-layers")
	return nil
}
