package hal

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/jsimonetti/rtnetlink/v2"
	"golang.org/x/sys/unix"
)

// Port is one network port of the blade as the console and SNMP see it.
type Port struct {
	Name      string `json:"name"`
	Index     int    `json:"ifindex"`
	MAC       string `json:"mac"`
	MTU       int    `json:"mtu"`
	AdminUp   bool   `json:"admin_up"`
	OperUp    bool   `json:"oper_up"`
	Carrier   bool   `json:"carrier"`
	RxPackets uint64 `json:"rx_packets"`
	TxPackets uint64 `json:"tx_packets"`
	RxBytes   uint64 `json:"rx_bytes"`
	TxBytes   uint64 `json:"tx_bytes"`
	RxErrors  uint64 `json:"rx_errors"`
	TxErrors  uint64 `json:"tx_errors"`
	RxDropped uint64 `json:"rx_dropped"`
	TxDropped uint64 `json:"tx_dropped"`
}

// Ports reads and controls the blade's ports through rtnetlink.
type Ports struct {
	mu   sync.Mutex
	conn *rtnetlink.Conn
	// skip says which links are not ports (loopback, and in blade mode anything off the wiring
	// that kept its kernel name, such as bridges the roles create later).
	skip func(name string) bool
	// index caches port name -> ifindex for the address calls, which are on the failover path
	// (a management address moving): a full link dump per call costs milliseconds under
	// emulation. An index that went stale (ENODEV) is looked up again.
	index map[string]int
}

// openPorts dials rtnetlink in the current network namespace.
func openPorts(skip func(string) bool) (*Ports, error) {
	c, err := rtnetlink.Dial(nil)
	if err != nil {
		return nil, fmt.Errorf("hal: ports: rtnetlink: %w", err)
	}
	return &Ports{conn: c, skip: skip}, nil
}

// Close releases the netlink socket.
func (p *Ports) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conn.Close()
}

// List returns every port, sorted by name.
func (p *Ports) List() ([]Port, error) {
	p.mu.Lock()
	msgs, err := p.conn.Link.List()
	p.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("hal: ports: list links: %w", err)
	}
	var out []Port
	for _, m := range msgs {
		if m.Attributes == nil || m.Attributes.Name == "lo" || p.skip(m.Attributes.Name) {
			continue
		}
		out = append(out, portFromMessage(m))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ErrNoPort is returned for a port name the blade does not have.
var ErrNoPort = errors.New("no such port")

// Get returns one port by name.
func (p *Ports) Get(name string) (Port, error) {
	all, err := p.List()
	if err != nil {
		return Port{}, err
	}
	for _, pt := range all {
		if pt.Name == name {
			return pt, nil
		}
	}
	return Port{}, fmt.Errorf("hal: port %q: %w", name, ErrNoPort)
}

// SetAdmin brings a port administratively up or down.
func (p *Ports) SetAdmin(name string, up bool) error {
	pt, err := p.Get(name)
	if err != nil {
		return err
	}
	var flags uint32
	if up {
		flags = unix.IFF_UP
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.conn.Link.Set(&rtnetlink.LinkMessage{Family: unix.AF_UNSPEC, Index: uint32(pt.Index), Flags: flags, Change: unix.IFF_UP}); err != nil {
		return fmt.Errorf("hal: port %s: set admin state: %w", name, err)
	}
	return nil
}

func portFromMessage(m rtnetlink.LinkMessage) Port {
	a := m.Attributes
	pt := Port{
		Name:    a.Name,
		Index:   int(m.Index),
		MTU:     int(a.MTU),
		AdminUp: m.Flags&unix.IFF_UP != 0,
		OperUp:  a.OperationalState == rtnetlink.OperStateUp,
	}
	if a.Address != nil {
		pt.MAC = a.Address.String()
	}
	if a.Carrier != nil {
		pt.Carrier = *a.Carrier != 0
	}
	if s := a.Stats64; s != nil {
		pt.RxPackets, pt.TxPackets, pt.RxBytes, pt.TxBytes = s.RXPackets, s.TXPackets, s.RXBytes, s.TXBytes
		pt.RxErrors, pt.TxErrors, pt.RxDropped, pt.TxDropped = s.RXErrors, s.TXErrors, s.RXDropped, s.TXDropped
	}
	return pt
}

// nameByWiring renames every NIC found on the backplane wiring to its port name and brings it
// up. It returns one error per NIC it could not name; NICs off the wiring keep their names.
func (p *Ports) nameByWiring(sysClassNet string, hub bool) []error {
	entries, err := os.ReadDir(sysClassNet)
	if err != nil {
		return []error{fmt.Errorf("hal: ports: %w", err)}
	}
	var errs []error
	for _, e := range entries {
		ifname := e.Name()
		real, err := filepath.EvalSymlinks(filepath.Join(sysClassNet, ifname))
		if err != nil {
			continue
		}
		dev, ok := pciDeviceOfPath(real)
		if !ok {
			continue
		}
		want, ok := PortNameForPCI(dev, hub)
		if !ok {
			errs = append(errs, fmt.Errorf("hal: NIC %s at PCI device %#x is not on the %s wiring", ifname, dev, map[bool]string{true: "hub", false: "node"}[hub]))
			continue
		}
		if err := p.rename(ifname, want); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := p.SetAdmin(want, true); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// pciDeviceOfPath finds the device number of the innermost bus-0 PCI device in a sysfs path
// such as /sys/devices/pci0000:00/0000:00:08.0/virtio1/net/eth0.
func pciDeviceOfPath(p string) (int, bool) {
	dev, found := 0, false
	for _, c := range strings.Split(p, "/") {
		if d, ok := pciDeviceFromAddress(c); ok {
			dev, found = d, true
		}
	}
	return dev, found
}

func (p *Ports) rename(from, to string) error {
	if from == to {
		return nil
	}
	ifi, err := net.InterfaceByName(from)
	if err != nil {
		return fmt.Errorf("hal: rename %s to %s: %w", from, to, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// A link must be down to be renamed.
	if err := p.conn.Link.Set(&rtnetlink.LinkMessage{Family: unix.AF_UNSPEC, Index: uint32(ifi.Index), Flags: 0, Change: unix.IFF_UP}); err != nil {
		return fmt.Errorf("hal: rename %s to %s: set down: %w", from, to, err)
	}
	if err := p.conn.Link.Set(&rtnetlink.LinkMessage{Family: unix.AF_UNSPEC, Index: uint32(ifi.Index), Attributes: &rtnetlink.LinkAttributes{Name: to}}); err != nil {
		return fmt.Errorf("hal: rename %s to %s: %w", from, to, err)
	}
	return nil
}

// AddAddress assigns an IPv4 or IPv6 prefix (e.g. "10.0.2.15/24") to a port; an address
// already there is not an error.
func (p *Ports) AddAddress(name, prefix string) error {
	return p.address(name, prefix, func(m *rtnetlink.AddressMessage) error {
		if err := p.conn.Address.New(m); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("hal: port %s: add address %s: %w", name, prefix, err)
		}
		return nil
	})
}

// address runs op (with p.mu held) on the address message for name and prefix, looking the
// port's index up again if the cached one is stale.
func (p *Ports) address(name, prefix string, op func(*rtnetlink.AddressMessage) error) error {
	for fresh := false; ; fresh = true {
		msg, err := p.addressMessage(name, prefix, fresh)
		if err != nil {
			return err
		}
		p.mu.Lock()
		err = op(msg)
		p.mu.Unlock()
		if err == nil || fresh || !errors.Is(err, unix.ENODEV) {
			return err
		}
	}
}

// DelAddress removes a prefix from a port; removing an absent address is not an error.
func (p *Ports) DelAddress(name, prefix string) error {
	return p.address(name, prefix, func(m *rtnetlink.AddressMessage) error {
		if err := p.conn.Address.Delete(m); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("hal: port %s: delete address %s: %w", name, prefix, err)
		}
		return nil
	})
}

func (p *Ports) addressMessage(name, prefix string, fresh bool) (*rtnetlink.AddressMessage, error) {
	p.mu.Lock()
	idx, ok := p.index[name]
	p.mu.Unlock()
	if !ok || fresh {
		pt, err := p.Get(name)
		if err != nil {
			return nil, err
		}
		idx = pt.Index
		p.mu.Lock()
		if p.index == nil {
			p.index = map[string]int{}
		}
		p.index[name] = idx
		p.mu.Unlock()
	}
	ip, ipn, err := net.ParseCIDR(prefix)
	if err != nil {
		return nil, fmt.Errorf("hal: port %s: address %q: %w", name, prefix, err)
	}
	ones, _ := ipn.Mask.Size()
	family := uint8(unix.AF_INET6)
	if ip4 := ip.To4(); ip4 != nil {
		ip, family = ip4, unix.AF_INET
	}
	return &rtnetlink.AddressMessage{Family: family, PrefixLength: uint8(ones), Index: uint32(idx),
		Attributes: &rtnetlink.AddressAttributes{Address: ip, Local: ip}}, nil
}
