package bridge

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"

	"sync/atomic"
	"time"

	"github.com/cgoa/cgoa/netstack/netns"
	"github.com/cgoa/cgoa/stp"
	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/jsimonetti/rtnetlink/v2/driver"
	"github.com/mdlayher/netlink"
	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"
)

// STPMode is the bridge's IFLA_BR_STP_STATE: who runs spanning tree.
type STPMode uint32

// STP modes as the kernel reports them.
const (
	STPOff    STPMode = 0 // BR_NO_STP: no spanning tree; the bridge floods BPDUs
	STPKernel STPMode = 1 // BR_KERNEL_STP: the kernel's own 802.1D
	STPUser   STPMode = 2 // BR_USER_STP: /sbin/bridge-stp handed STP to user space
)

func (m STPMode) String() string {
	switch m {
	case STPOff:
		return "off"
	case STPKernel:
		return "kernel"
	case STPUser:
		return "user"
	}
	return fmt.Sprintf("stp-mode(%d)", uint32(m))
}

// Errors.
var (
	// ErrNotUserSTP: the bridge does not report user-space STP mode, so
	// the kernel would fight over (kernel STP) or ignore (STP off) the
	// port states; Open refuses to run. See Config.NoSTP for tests.
	ErrNotUserSTP = errors.New("bridge is not in user-space STP mode")
	// ErrNotOff: no-STP mode was asked for but the bridge runs STP.
	ErrNotOff = errors.New("bridge STP is not off")
	// ErrStateMismatch: a port state read back differs from the one written.
	ErrStateMismatch = errors.New("port state read back differs")
	// ErrNoPort: the port number is not one of the bridge's.
	ErrNoPort = errors.New("no such port")
)

// Port names a bridge port and the STP parameters it starts with.
type Port struct {
	Name string // interface name, e.g. "isl0"
	// Number is the STP port number (1..4095); 0 takes the port's
	// position in Config.Ports, counting from 1.
	Number uint16
	// Priority is the STP port priority (a multiple of 16); 0 takes
	// stp.DefaultPortPriority (128). Port identifiers then equal the
	// Linux bridge's defaults (0x8000 | number).
	Priority uint8
	// PathCost 0 takes stp.DefaultPathCost(0) (802.1D-2004 table; the
	// kernel bridge uses the 1998 costs, so set it explicitly where a
	// tree must match kernel bridges).
	PathCost uint32
}

// Config says which Linux bridge to drive.
type Config struct {
	// Name is the bridge interface, e.g. "br0".
	Name string
	// Create makes the bridge if it does not exist.
	Create bool
	// Ports are enslaved to the bridge (if not already) and brought up.
	Ports []Port
	// NoSTP runs with the bridge's STP off instead of in user mode. It
	// is for process-mode tests only: a bridge in a non-initial network
	// namespace cannot enter user mode (the kernel calls /sbin/bridge-stp
	// only for init_net), so there the choice is kernel STP or none.
	// With STP off the kernel behaves differently, and this package
	// compensates: it writes Listening where STP says Blocking (the
	// kernel turns a blocking port straight into forwarding when STP is
	// off; listening neither learns nor forwards either, so the data
	// plane is the same) and installs a tc ingress filter on every port
	// that drops BPDUs before the bridge would flood them. A carrier-up
	// still makes the kernel forward on the port until the agent has
	// reacted (milliseconds). Open refuses a bridge whose STP is not off.
	NoSTP bool
	// NetNS is the path of a network namespace to work in (e.g.
	// /var/run/netns/x); empty is the process's own.
	NetNS string
	// EdgePorts are interfaces enslaved to the bridge and held forwarding
	// outside spanning tree: ports that face end stations which bridge
	// nothing (the switch blade's node-slot channels) or a link inside a
	// protected pair of bridges. Open puts them in forwarding; Run and Hold
	// put them back whenever the kernel changes them (in user mode it makes
	// a port blocking on carrier up). No BPDUs are sent or read on them.
	EdgePorts []string
	// OnEdgeCarrier, when set, is told when an edge port's carrier changes while Run or Hold
	// watches the links (the switch blade's standby hub watches isl0: its mate was pulled).
	// It runs on the watch goroutine and must not block.
	OnEdgeCarrier func(name string, up bool)
}

// Bridge is a Linux bridge driven by a user-space STP agent: the rtnetlink
// side (mode, port states, ageing, FDB, carrier) and one raw packet socket
// per port for BPDUs. It implements stp.Env. Open makes one; Close releases
// it. A Bridge is safe for concurrent use.
type Bridge struct {
	cfg   Config
	nl    *rtnetlink.Conn
	raw   *netlink.Conn // AF_BRIDGE port settings and tc
	index uint32
	mac   net.HardwareAddr
	mode  STPMode
	ports []*port // in Config.Ports order
	edges []*port // Config.EdgePorts: no STP number, no socket

	ageingErrors atomic.Uint64
	watchErrors  atomic.Uint64 // link notifications lost or undecodable
	resyncs      atomic.Uint64 // kernel port states put back (Run)
}

type port struct {
	Port
	index uint32
	mac   net.HardwareAddr
	conn  *packet.Conn

	rxFrames, rxErrors, txFrames, txErrors atomic.Uint64
	stateWrites, stateErrors, flushes      atomic.Uint64
}

// PortCounters are the shell's per-port I/O counters (the protocol
// counters live in stp.PortSnapshot).
type PortCounters struct {
	RxFrames    uint64 `json:"rx_frames"`    // BPDU frames read from the socket
	RxErrors    uint64 `json:"rx_errors"`    // socket read errors
	TxFrames    uint64 `json:"tx_frames"`    // BPDU frames sent
	TxErrors    uint64 `json:"tx_errors"`    // encode or send errors
	StateWrites uint64 `json:"state_writes"` // port states written and verified
	StateErrors uint64 `json:"state_errors"` // writes refused or read back different
	Flushes     uint64 `json:"flushes"`      // FDB flushes
}

// Open finds (or, with Create, makes) the bridge, checks its STP mode,
// enslaves and brings up the ports, disables them in the bridge until the
// agent enables them, and opens their BPDU sockets.
func Open(cfg Config) (*Bridge, error) {
	if cfg.Name == "" {
		return nil, errors.New("bridge: open: no bridge name")
	}
	b := &Bridge{cfg: cfg}
	if err := b.open(); err != nil {
		b.Close()
		return nil, fmt.Errorf("bridge: open %s: %w", cfg.Name, err)
	}
	return b, nil
}

func (b *Bridge) open() error {
	nc := &netlink.Config{}
	if b.cfg.NetNS != "" {
		f, err := os.Open(b.cfg.NetNS)
		if err != nil {
			return err
		}
		defer f.Close()
		nc.NetNS = int(f.Fd())
	}
	var err error
	if b.nl, err = rtnetlink.Dial(nc); err != nil {
		return fmt.Errorf("rtnetlink: %w", err)
	}
	if b.raw, err = netlink.Dial(unix.NETLINK_ROUTE, nc); err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	links, err := b.nl.Link.List()
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	byName := map[string]rtnetlink.LinkMessage{}
	for _, l := range links {
		if l.Attributes != nil {
			byName[l.Attributes.Name] = l
		}
	}
	br, ok := byName[b.cfg.Name]
	if !ok {
		if !b.cfg.Create {
			return errors.New("no such bridge")
		}
		// User mode is entered by switching STP on: the kernel then
		// runs /sbin/bridge-stp, which says user space takes it.
		want := driver.BridgeStpStateEnabled
		if b.cfg.NoSTP {
			want = driver.BridgeStpStateDisabled
		}
		err := b.nl.Link.New(&rtnetlink.LinkMessage{
			Attributes: &rtnetlink.LinkAttributes{
				Name: b.cfg.Name,
				Info: &rtnetlink.LinkInfo{Kind: "bridge", Data: &driver.Bridge{StpState: &want}},
			},
		})
		if err != nil {
			return fmt.Errorf("create: %w", err)
		}
		if br, err = b.linkByName(b.cfg.Name); err != nil {
			return err
		}
	} else if info := br.Attributes.Info; info == nil || info.Kind != "bridge" {
		return errors.New("not a bridge")
	}
	b.index = br.Index
	b.mac = br.Attributes.Address
	if b.mode, err = b.STPMode(); err != nil {
		return err
	}
	if !b.cfg.NoSTP && b.mode == STPOff {
		// An existing bridge with STP off: ask for STP, which is how
		// user mode starts (the kernel runs /sbin/bridge-stp).
		on := driver.BridgeStpStateEnabled
		if err := b.setBridge(&driver.Bridge{StpState: &on}); err != nil {
			return fmt.Errorf("switch STP on: %w", err)
		}
		if b.mode, err = b.STPMode(); err != nil {
			return err
		}
	}
	switch {
	case b.cfg.NoSTP && b.mode != STPOff:
		return fmt.Errorf("%w: it reports %v (no-STP mode)", ErrNotOff, b.mode)
	case !b.cfg.NoSTP && b.mode != STPUser:
		return fmt.Errorf("%w: it reports %v (is /sbin/bridge-stp installed, and is this the initial network namespace?)", ErrNotUserSTP, b.mode)
	}

	seen := map[uint16]bool{}
	for i, pc := range b.cfg.Ports {
		if pc.Number == 0 {
			pc.Number = uint16(i + 1)
		}
		if pc.Number > stp.MaxPortNumber || seen[pc.Number] {
			return fmt.Errorf("port %s: number %d invalid or repeated", pc.Name, pc.Number)
		}
		seen[pc.Number] = true
		if pc.Priority == 0 {
			pc.Priority = stp.DefaultPortPriority
		}
		l, ok := byName[pc.Name]
		if !ok {
			return fmt.Errorf("port %s: no such interface", pc.Name)
		}
		p := &port{Port: pc, index: l.Index, mac: l.Attributes.Address}
		if len(p.mac) != 6 {
			return fmt.Errorf("port %s: not an Ethernet interface", pc.Name)
		}
		b.ports = append(b.ports, p)
		if l.Attributes.Master == nil || *l.Attributes.Master != b.index {
			if err := b.nl.Link.SetMaster(l.Index, b.index, nil); err != nil {
				return fmt.Errorf("port %s: enslave: %w", pc.Name, err)
			}
		}
		if b.cfg.NoSTP {
			if err := installGuard(b.raw, p.index); err != nil {
				return fmt.Errorf("port %s: %w", pc.Name, err)
			}
		}
		if err := b.setUp(l.Index); err != nil {
			return fmt.Errorf("port %s: up: %w", pc.Name, err)
		}
	}
	for _, name := range b.cfg.EdgePorts {
		l, ok := byName[name]
		if !ok {
			return fmt.Errorf("edge port %s: no such interface", name)
		}
		for _, p := range b.ports {
			if p.Name == name {
				return fmt.Errorf("edge port %s: also an STP port", name)
			}
		}
		e := &port{Port: Port{Name: name}, index: l.Index, mac: l.Attributes.Address}
		b.edges = append(b.edges, e)
		if l.Attributes.Master == nil || *l.Attributes.Master != b.index {
			if err := b.nl.Link.SetMaster(l.Index, b.index, nil); err != nil {
				return fmt.Errorf("edge port %s: enslave: %w", name, err)
			}
		}
		if err := b.setUp(l.Index); err != nil {
			return fmt.Errorf("edge port %s: up: %w", name, err)
		}
	}
	if err := b.setUp(b.index); err != nil {
		return fmt.Errorf("up: %w", err)
	}
	b.holdEdges()
	// Disabled until the agent says otherwise: a port that forwards
	// before STP has run can close a loop. In no-STP mode a carrier
	// event still in flight (the kernel applies them asynchronously)
	// makes the kernel forward again; Run puts such a port back where
	// STP wants it, so only a refused write is an error here.
	for _, p := range b.ports {
		if err := b.writeState(p, stp.Disabled); err != nil && !(b.cfg.NoSTP && errors.Is(err, ErrStateMismatch)) {
			return err
		}
	}
	return netns.Do(b.cfg.NetNS, b.openSockets)
}

func (b *Bridge) openSockets() error {
	filter, err := bpduMatch(true, 0x40000, 0)
	if err != nil {
		return err
	}
	for _, p := range b.ports {
		ifi := &net.Interface{Index: int(p.index), Name: p.Name, HardwareAddr: p.mac}
		c, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_ALL, &packet.Config{Filter: filter})
		if err != nil {
			return fmt.Errorf("port %s: packet socket: %w", p.Name, err)
		}
		p.conn = c
		// Bridge ports are promiscuous anyway; joining the group keeps
		// BPDUs coming on a NIC that filters multicast by itself.
		if err := c.JoinGroup(stp.GroupAddress); err != nil {
			return fmt.Errorf("port %s: join %s: %w", p.Name, stp.GroupAddress, err)
		}
	}
	return nil
}

func (b *Bridge) linkByName(name string) (rtnetlink.LinkMessage, error) {
	links, err := b.nl.Link.List()
	if err != nil {
		return rtnetlink.LinkMessage{}, fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		if l.Attributes != nil && l.Attributes.Name == name {
			return l, nil
		}
	}
	return rtnetlink.LinkMessage{}, fmt.Errorf("%s: no such interface", name)
}

func (b *Bridge) setUp(index uint32) error {
	return b.nl.Link.Set(&rtnetlink.LinkMessage{Index: index, Flags: unix.IFF_UP, Change: unix.IFF_UP})
}

func (b *Bridge) setBridge(d *driver.Bridge) error {
	return b.nl.Link.Set(&rtnetlink.LinkMessage{
		Index:      b.index,
		Attributes: &rtnetlink.LinkAttributes{Info: &rtnetlink.LinkInfo{Kind: "bridge", Data: d}},
	})
}

func (b *Bridge) bridgeAttrs() (*driver.Bridge, error) {
	l, err := b.nl.Link.Get(b.index)
	if err != nil {
		return nil, fmt.Errorf("get bridge: %w", err)
	}
	if l.Attributes == nil || l.Attributes.Info == nil {
		return nil, errors.New("get bridge: no link info")
	}
	d, ok := l.Attributes.Info.Data.(*driver.Bridge)
	if !ok {
		return nil, fmt.Errorf("get bridge: link kind %q", l.Attributes.Info.Kind)
	}
	return d, nil
}

// Close closes the port sockets and netlink connections. In no-STP mode
// it removes the BPDU guards. The bridge and its ports stay as they are.
func (b *Bridge) Close() error {
	var errs []error
	for _, p := range b.ports {
		if p.conn != nil {
			errs = append(errs, p.conn.Close())
		}
		if b.cfg.NoSTP && b.raw != nil {
			errs = append(errs, removeGuard(b.raw, p.index))
		}
	}
	if b.raw != nil {
		errs = append(errs, b.raw.Close())
	}
	if b.nl != nil {
		errs = append(errs, b.nl.Close())
	}
	return errors.Join(errs...)
}

// Release hands the bridge back to no spanning tree and closes b: STP off
// (in user mode the kernel runs /sbin/bridge-stp stop), every STP and edge
// port with carrier forwarding, as a bridge without an agent forwards. Use
// it only where the wiring has no loop.
func (b *Bridge) Release() error {
	var errs []error
	off := driver.BridgeStpStateDisabled
	if err := b.setBridge(&driver.Bridge{StpState: &off}); err != nil {
		errs = append(errs, fmt.Errorf("bridge %s: release: STP off: %w", b.cfg.Name, err))
	}
	for _, p := range append(slices.Clone(b.ports), b.edges...) {
		if l, err := b.portLink(p); err != nil || !carrier(l) {
			continue
		}
		errs = append(errs, b.writeState(p, stp.Forwarding))
	}
	errs = append(errs, b.Close())
	return errors.Join(errs...)
}

// Name is the bridge's interface name.
func (b *Bridge) Name() string { return b.cfg.Name }

// MAC is the bridge's address, the usual MAC part of its bridge identifier.
func (b *Bridge) MAC() net.HardwareAddr { return slices.Clone(b.mac) }

// EdgePorts lists the edge ports' names (Config.EdgePorts).
func (b *Bridge) EdgePorts() []string {
	out := make([]string, len(b.edges))
	for i, e := range b.edges {
		out[i] = e.Name
	}
	return out
}

// Ports lists the ports as configured (numbers and priorities filled in).
func (b *Bridge) Ports() []Port {
	out := make([]Port, len(b.ports))
	for i, p := range b.ports {
		out[i] = p.Port
	}
	return out
}

// PortMAC is the address the port's BPDUs are sent from.
func (b *Bridge) PortMAC(n uint16) (net.HardwareAddr, error) {
	p, err := b.port(n)
	if err != nil {
		return nil, err
	}
	return slices.Clone(p.mac), nil
}

func (b *Bridge) port(n uint16) (*port, error) {
	for _, p := range b.ports {
		if p.Number == n {
			return p, nil
		}
	}
	return nil, fmt.Errorf("bridge %s: port %d: %w", b.cfg.Name, n, ErrNoPort)
}

// STPMode reads the bridge's IFLA_BR_STP_STATE from the kernel.
func (b *Bridge) STPMode() (STPMode, error) {
	d, err := b.bridgeAttrs()
	if err != nil {
		return 0, err
	}
	if d.StpState == nil {
		return 0, errors.New("kernel reports no IFLA_BR_STP_STATE")
	}
	return STPMode(*d.StpState), nil
}

// NewSTP makes the stp.Bridge this Linux bridge runs: identifier from
// cfg.ID, or the default priority and the bridge's MAC when cfg.ID is 0,
// and one STP port per configured port. It pushes the initial (disabled)
// port states and the ageing time to the kernel.
func (b *Bridge) NewSTP(cfg stp.Config, clock stp.Clock) (*stp.Bridge, error) {
	if cfg.ID == 0 {
		id, err := stp.NewBridgeID(stp.DefaultPriority, b.mac)
		if err != nil {
			return nil, err
		}
		cfg.ID = id
	}
	sb, err := stp.New(cfg, clock, b)
	if err != nil {
		return nil, err
	}
	for _, p := range b.ports {
		err := sb.AddPort(stp.PortConfig{Number: p.Number, Name: p.Name, Priority: p.Priority, PathCost: p.PathCost})
		if err != nil {
			return nil, err
		}
	}
	return sb, nil
}

// kernelState is the IFLA_BRPORT_STATE for an 802.1D state. In no-STP
// mode Blocking is written as Listening (see Config.NoSTP).
func (b *Bridge) kernelState(s stp.PortState) (driver.BridgePortState, error) {
	switch s {
	case stp.Disabled:
		return driver.BridgePortStateDisabled, nil
	case stp.Listening:
		return driver.BridgePortStateListening, nil
	case stp.Learning:
		return driver.BridgePortStateLearning, nil
	case stp.Forwarding:
		return driver.BridgePortStateForwarding, nil
	case stp.Blocking:
		if b.cfg.NoSTP {
			return driver.BridgePortStateListening, nil
		}
		return driver.BridgePortStateBlocking, nil
	}
	return 0, fmt.Errorf("unknown port state %v", s)
}

func fromKernel(k driver.BridgePortState) (stp.PortState, error) {
	switch k {
	case driver.BridgePortStateDisabled:
		return stp.Disabled, nil
	case driver.BridgePortStateListening:
		return stp.Listening, nil
	case driver.BridgePortStateLearning:
		return stp.Learning, nil
	case driver.BridgePortStateForwarding:
		return stp.Forwarding, nil
	case driver.BridgePortStateBlocking:
		return stp.Blocking, nil
	}
	return 0, fmt.Errorf("kernel port state %d unknown", uint8(k))
}

// SetPortState implements stp.Env: it writes IFLA_BRPORT_STATE and reads
// it back; a refused write or a different value read back is an error.
func (b *Bridge) SetPortState(n uint16, s stp.PortState) error {
	p, err := b.port(n)
	if err != nil {
		return err
	}
	return b.writeState(p, s)
}

func (b *Bridge) writeState(p *port, s stp.PortState) error {
	k, err := b.kernelState(s)
	if err == nil {
		err = b.setPort(p, func(ae *netlink.AttributeEncoder) { ae.Uint8(unix.IFLA_BRPORT_STATE, uint8(k)) })
	}
	if err == nil {
		var got driver.BridgePortState
		if got, err = b.kernelPortState(p); err == nil && got != k {
			err = fmt.Errorf("%w: wrote %v, kernel reports %v", ErrStateMismatch, k, got)
		}
	}
	if err != nil {
		p.stateErrors.Add(1)
		return fmt.Errorf("bridge %s: port %s: set state %v: %w", b.cfg.Name, p.Name, s, err)
	}
	p.stateWrites.Add(1)
	return nil
}

// setPort sets bridge port attributes the way mstpd and `bridge link set`
// do: RTM_SETLINK of family AF_BRIDGE with IFLA_PROTINFO. Not through
// RTM_NEWLINK's IFLA_INFO_SLAVE_DATA (the rtnetlink driver package's
// path): that also raises NETDEV_CHANGE, on which the bridge re-enables
// a disabled port whose carrier is up, undoing a write of disabled.
func (b *Bridge) setPort(p *port, attrs func(*netlink.AttributeEncoder)) error {
	ae := netlink.NewAttributeEncoder()
	ae.Nested(unix.IFLA_PROTINFO|unix.NLA_F_NESTED, func(nae *netlink.AttributeEncoder) error {
		attrs(nae)
		return nil
	})
	a, err := ae.Encode()
	if err != nil {
		return err
	}
	ifi := make([]byte, unix.SizeofIfInfomsg)
	ifi[0] = unix.AF_BRIDGE
	binary.NativeEndian.PutUint32(ifi[4:], p.index)
	_, err = b.raw.Execute(netlink.Message{
		Header: netlink.Header{Type: unix.RTM_SETLINK, Flags: netlink.Request | netlink.Acknowledge},
		Data:   append(ifi, a...),
	})
	return err
}

func (b *Bridge) portLink(p *port) (rtnetlink.LinkMessage, error) {
	l, err := b.nl.Link.Get(p.index)
	if err != nil {
		return l, err
	}
	if l.Attributes == nil || l.Attributes.Master == nil || *l.Attributes.Master != b.index {
		return l, fmt.Errorf("no longer a port of %s", b.cfg.Name)
	}
	return l, nil
}

func (b *Bridge) kernelPortState(p *port) (driver.BridgePortState, error) {
	l, err := b.portLink(p)
	if err != nil {
		return 0, err
	}
	if l.Attributes.Info == nil {
		return 0, errors.New("kernel reports no bridge port data")
	}
	d, ok := l.Attributes.Info.SlaveData.(*driver.BridgePort)
	if !ok || d.State == nil {
		return 0, errors.New("kernel reports no IFLA_BRPORT_STATE")
	}
	return *d.State, nil
}

// PortState reads the port's state from the kernel. In no-STP mode a port
// STP holds blocking reads Listening (see Config.NoSTP).
func (b *Bridge) PortState(n uint16) (stp.PortState, error) {
	p, err := b.port(n)
	if err != nil {
		return 0, err
	}
	k, err := b.kernelPortState(p)
	if err != nil {
		return 0, fmt.Errorf("bridge %s: port %s: %w", b.cfg.Name, p.Name, err)
	}
	return fromKernel(k)
}

// Carrier reports whether the port can carry traffic as the bridge sees
// it: administratively up and operationally up (or unknown, which the
// kernel treats as up).
func (b *Bridge) Carrier(n uint16) (bool, error) {
	p, err := b.port(n)
	if err != nil {
		return false, err
	}
	l, err := b.portLink(p)
	if err != nil {
		return false, fmt.Errorf("bridge %s: port %s: %w", b.cfg.Name, p.Name, err)
	}
	return carrier(l), nil
}

func carrier(l rtnetlink.LinkMessage) bool {
	if l.Flags&unix.IFF_UP == 0 || l.Attributes == nil {
		return false
	}
	st := l.Attributes.OperationalState
	return st == rtnetlink.OperStateUp || st == rtnetlink.OperStateUnknown
}

// FlushFDB implements stp.Env: it removes the dynamic FDB entries learnt
// on the port (IFLA_BRPORT_FLUSH; static and local entries stay).
func (b *Bridge) FlushFDB(n uint16) error {
	p, err := b.port(n)
	if err != nil {
		return err
	}
	if err := b.setPort(p, func(ae *netlink.AttributeEncoder) { ae.Flag(unix.IFLA_BRPORT_FLUSH, true) }); err != nil {
		return fmt.Errorf("bridge %s: port %s: flush: %w", b.cfg.Name, p.Name, err)
	}
	p.flushes.Add(1)
	return nil
}

// FlushAllFDB removes the dynamic FDB entries of every port, STP and
// edge: a hub taking over from its protection peer forgets addresses it
// learnt through the peer, which may now be dead.
func (b *Bridge) FlushAllFDB() error {
	var errs []error
	for _, p := range append(slices.Clone(b.ports), b.edges...) {
		if err := b.setPort(p, func(ae *netlink.AttributeEncoder) { ae.Flag(unix.IFLA_BRPORT_FLUSH, true) }); err != nil {
			errs = append(errs, fmt.Errorf("bridge %s: port %s: flush: %w", b.cfg.Name, p.Name, err))
			continue
		}
		p.flushes.Add(1)
	}
	return errors.Join(errs...)
}

// EdgeState reads an edge port's state from the kernel.
func (b *Bridge) EdgeState(name string) (stp.PortState, error) {
	for _, e := range b.edges {
		if e.Name == name {
			k, err := b.kernelPortState(e)
			if err != nil {
				return 0, fmt.Errorf("bridge %s: edge port %s: %w", b.cfg.Name, name, err)
			}
			return fromKernel(k)
		}
	}
	return 0, fmt.Errorf("bridge %s: edge port %s: %w", b.cfg.Name, name, ErrNoPort)
}

// holdEdges writes forwarding to every edge port that has carrier and is
// in another state; it returns how many it put back.
func (b *Bridge) holdEdges() int {
	n := 0
	for _, e := range b.edges {
		l, err := b.portLink(e)
		if err != nil || !carrier(l) {
			continue // the kernel holds it disabled; forwarding would be refused
		}
		if k, err := b.kernelPortState(e); err == nil && k == driver.BridgePortStateForwarding {
			continue
		}
		if err := b.writeState(e, stp.Forwarding); err == nil {
			n++
		}
	}
	return n
}

// centiseconds is the unit of the kernel's bridge timers (USER_HZ ticks).
const centisecond = 10 * time.Millisecond

// SetAgeingTime implements stp.Env: it writes IFLA_BR_AGEING_TIME and reads
// it back.
func (b *Bridge) SetAgeingTime(d time.Duration) error {
	cs := uint32((d + centisecond/2) / centisecond)
	err := b.setBridge(&driver.Bridge{AgeingTime: &cs})
	if err == nil {
		var got time.Duration
		if got, err = b.AgeingTime(); err == nil && got != time.Duration(cs)*centisecond {
			err = fmt.Errorf("kernel reports %v", got)
		}
	}
	if err != nil {
		b.ageingErrors.Add(1)
		return fmt.Errorf("bridge %s: set ageing time %v: %w", b.cfg.Name, d, err)
	}
	return nil
}

// AgeingTime reads the bridge's ageing time from the kernel.
func (b *Bridge) AgeingTime() (time.Duration, error) {
	d, err := b.bridgeAttrs()
	if err != nil {
		return 0, err
	}
	if d.AgeingTime == nil {
		return 0, errors.New("kernel reports no IFLA_BR_AGEING_TIME")
	}
	return time.Duration(*d.AgeingTime) * centisecond, nil
}

// FDBEntry is a filtering database entry on one of the bridge's ports.
type FDBEntry struct {
	Port      uint16           `json:"port"`
	MAC       net.HardwareAddr `json:"mac"`
	Permanent bool             `json:"permanent"` // local or static, never aged or flushed
}

// FDB dumps the bridge's filtering database entries on its STP ports
// (the bridge's own entries; the ports' device address lists, NTF_SELF,
// are left out).
func (b *Bridge) FDB() ([]FDBEntry, error) {
	msgs, err := b.nl.Execute(&rtnetlink.NeighMessage{Family: unix.AF_BRIDGE}, unix.RTM_GETNEIGH, netlink.Request|netlink.Dump)
	if err != nil {
		return nil, fmt.Errorf("bridge %s: fdb dump: %w", b.cfg.Name, err)
	}
	var out []FDBEntry
	for _, m := range msgs {
		n, ok := m.(*rtnetlink.NeighMessage)
		if !ok || n.Family != unix.AF_BRIDGE || n.Flags&unix.NTF_SELF != 0 || n.Attributes == nil {
			continue
		}
		for _, p := range b.ports {
			if p.index == n.Index {
				out = append(out, FDBEntry{
					Port:      p.Number,
					MAC:       n.Attributes.LLAddress,
					Permanent: n.State&unix.NUD_PERMANENT != 0,
				})
			}
		}
	}
	return out, nil
}

// SendBPDU implements stp.Env: it sends bpdu out of the port from the
// port's MAC to the Bridge Group Address.
func (b *Bridge) SendBPDU(n uint16, bpdu *stp.BPDU) error {
	p, err := b.port(n)
	if err != nil {
		return err
	}
	frame, err := stp.MarshalFrame(p.mac, bpdu)
	if err == nil {
		_, err = p.conn.WriteTo(frame, &packet.Addr{HardwareAddr: stp.GroupAddress})
	}
	if err != nil {
		p.txErrors.Add(1)
		return fmt.Errorf("bridge %s: port %s: send %v: %w", b.cfg.Name, p.Name, bpdu.Type, err)
	}
	p.txFrames.Add(1)
	return nil
}

// BridgeCounters are the shell's bridge-wide counters.
type BridgeCounters struct {
	AgeingErrors uint64 `json:"ageing_errors"` // ageing time writes that failed
	WatchErrors  uint64 `json:"watch_errors"`  // link notifications lost or undecodable
	Resyncs      uint64 `json:"resyncs"`       // times the kernel's port states were put back
}

// BridgeCounters returns the shell's bridge-wide counters.
func (b *Bridge) BridgeCounters() BridgeCounters {
	return BridgeCounters{
		AgeingErrors: b.ageingErrors.Load(),
		WatchErrors:  b.watchErrors.Load(),
		Resyncs:      b.resyncs.Load(),
	}
}

// Counters returns the shell's counters of port n.
func (b *Bridge) Counters(n uint16) (PortCounters, error) {
	p, err := b.port(n)
	if err != nil {
		return PortCounters{}, err
	}
	return PortCounters{
		RxFrames:    p.rxFrames.Load(),
		RxErrors:    p.rxErrors.Load(),
		TxFrames:    p.txFrames.Load(),
		TxErrors:    p.txErrors.Load(),
		StateWrites: p.stateWrites.Load(),
		StateErrors: p.stateErrors.Load(),
		Flushes:     p.flushes.Load(),
	}, nil
}

var _ stp.Env = (*Bridge)(nil)
