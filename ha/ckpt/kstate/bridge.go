package kstate

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/jsimonetti/rtnetlink/v2/driver"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// PortState is a bridge port's IFLA_BRPORT_STATE (BR_STATE_*).
type PortState uint8

// Port states as the kernel numbers them.
const (
	Disabled   PortState = PortState(driver.BridgePortStateDisabled)
	Listening  PortState = PortState(driver.BridgePortStateListening)
	Learning   PortState = PortState(driver.BridgePortStateLearning)
	Forwarding PortState = PortState(driver.BridgePortStateForwarding)
	Blocking   PortState = PortState(driver.BridgePortStateBlocking)
)

var portStateNames = [...]string{"disabled", "listening", "learning", "forwarding", "blocking"}

func (s PortState) String() string {
	if int(s) < len(portStateNames) {
		return portStateNames[s]
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// MarshalText writes the state's name (a section stays readable).
func (s PortState) MarshalText() ([]byte, error) {
	if int(s) >= len(portStateNames) {
		return nil, fmt.Errorf("kstate: port state %d", uint8(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText reads a state's name.
func (s *PortState) UnmarshalText(b []byte) error {
	i := slices.Index(portStateNames[:], string(b))
	if i < 0 {
		return fmt.Errorf("kstate: port state %q", b)
	}
	*s = PortState(i)
	return nil
}

// BridgePort is one captured port of a bridge.
type BridgePort struct {
	Port  string    `json:"port"`
	State PortState `json:"state"`
}

// BridgePorts is what a bridge-ports section holds.
type BridgePorts struct {
	Bridge string       `json:"bridge"`
	Ports  []BridgePort `json:"ports"`
}

// MaxPorts bounds a decoded bridge-ports section.
const MaxPorts = 4096

// ErrBadPorts is returned for a bridge-ports section that does not decode.
var ErrBadPorts = errors.New("kstate: bad bridge ports section")

func validIfName(n string) bool {
	return n != "" && len(n) < unix.IFNAMSIZ && !strings.ContainsAny(n, "/ \x00")
}

// DecodePorts parses a bridge-ports section (bytes from a checkpoint
// replica).
func DecodePorts(b []byte) (BridgePorts, error) {
	bp, err := decode(b, ErrBadPorts, MaxPorts, func(bp *BridgePorts) []BridgePort { return bp.Ports },
		func(p BridgePort) bool { return validIfName(p.Port) })
	if err == nil && !validIfName(bp.Bridge) {
		return BridgePorts{}, fmt.Errorf("%w: bridge %q", ErrBadPorts, bp.Bridge)
	}
	return bp, err
}

// bridgePorts lists the ports of bridge (IFLA_MASTER) with their state
// (IFLA_BRPORT_STATE from the link's bridge slave data), by name.
func bridgePorts(c *rtnetlink.Conn, bridge string) (map[string]rtnetlink.LinkMessage, []BridgePort, error) {
	links, err := c.Link.List()
	if err != nil {
		return nil, nil, fmt.Errorf("kstate: links: %w", err)
	}
	var br *rtnetlink.LinkMessage
	for i, l := range links {
		if l.Attributes != nil && l.Attributes.Name == bridge {
			br = &links[i]
		}
	}
	if br == nil {
		return nil, nil, fmt.Errorf("kstate: no bridge %q", bridge)
	}
	if br.Attributes.Info == nil || br.Attributes.Info.Kind != "bridge" {
		return nil, nil, fmt.Errorf("kstate: %s is not a bridge", bridge)
	}
	byName := map[string]rtnetlink.LinkMessage{}
	var ports []BridgePort
	for _, l := range links {
		a := l.Attributes
		if a == nil || a.Master == nil || *a.Master != br.Index {
			continue
		}
		if a.Info == nil {
			return nil, nil, fmt.Errorf("kstate: port %s of %s: kernel reports no bridge port data", a.Name, bridge)
		}
		d, ok := a.Info.SlaveData.(*driver.BridgePort)
		if !ok || d.State == nil {
			return nil, nil, fmt.Errorf("kstate: port %s of %s: kernel reports no IFLA_BRPORT_STATE", a.Name, bridge)
		}
		byName[a.Name] = l
		ports = append(ports, BridgePort{Port: a.Name, State: PortState(*d.State)})
	}
	slices.SortFunc(ports, func(a, b BridgePort) int { return strings.Compare(a.Port, b.Port) })
	return byName, ports, nil
}

// CaptureBridgePorts returns the state of every port of bridge as a
// section's bytes.
func CaptureBridgePorts(nsFD int, bridge string) ([]byte, error) {
	c, err := dial(nsFD)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_, ports, err := bridgePorts(c, bridge)
	if err != nil {
		return nil, err
	}
	return json.Marshal(BridgePorts{Bridge: bridge, Ports: ports})
}

// RestoreBridgePorts sets every port of a captured section to its state
// and reads the states back. The bridge must have the same name and its
// ports the same names here; ports it has that the section does not name
// are left alone. With the kernel's own STP on the kernel owns the states
// and refuses (EBUSY): restore into a bridge whose STP is off or in user
// mode (the role's STP agent owns the states then).
func RestoreBridgePorts(nsFD int, section []byte) error {
	bp, err := DecodePorts(section)
	if err != nil {
		return err
	}
	c, err := dial(nsFD)
	if err != nil {
		return err
	}
	defer c.Close()
	raw, err := netlink.Dial(unix.NETLINK_ROUTE, &netlink.Config{NetNS: nsFD})
	if err != nil {
		return fmt.Errorf("kstate: netlink: %w", err)
	}
	defer raw.Close()
	byName, _, err := bridgePorts(c, bp.Bridge)
	if err != nil {
		return err
	}
	for _, p := range bp.Ports {
		l, ok := byName[p.Port]
		if !ok {
			return fmt.Errorf("kstate: restore %s: no port %q", bp.Bridge, p.Port)
		}
		if err := setPortState(raw, l.Index, p.State); err != nil {
			return fmt.Errorf("kstate: restore %s port %s %v: %w", bp.Bridge, p.Port, p.State, err)
		}
	}
	_, now, err := bridgePorts(c, bp.Bridge)
	if err != nil {
		return err
	}
	for _, want := range bp.Ports {
		i := slices.IndexFunc(now, func(p BridgePort) bool { return p.Port == want.Port })
		if i < 0 || now[i].State != want.State {
			return fmt.Errorf("kstate: restore %s port %s: kernel state %v after writing %v", bp.Bridge, want.Port, now, want.State)
		}
	}
	return nil
}

// setPortState writes IFLA_BRPORT_STATE the way `bridge link set` does:
// RTM_SETLINK of family AF_BRIDGE with IFLA_PROTINFO. (RTM_NEWLINK's
// slave data path also raises NETDEV_CHANGE, on which the bridge
// re-enables a disabled port whose carrier is up.)
func setPortState(raw *netlink.Conn, index uint32, s PortState) error {
	ae := netlink.NewAttributeEncoder()
	ae.Nested(unix.IFLA_PROTINFO|unix.NLA_F_NESTED, func(nae *netlink.AttributeEncoder) error {
		nae.Uint8(unix.IFLA_BRPORT_STATE, uint8(s))
		return nil
	})
	a, err := ae.Encode()
	if err != nil {
		return err
	}
	ifi := make([]byte, unix.SizeofIfInfomsg)
	ifi[0] = unix.AF_BRIDGE
	binary.NativeEndian.PutUint32(ifi[4:], index)
	_, err = raw.Execute(netlink.Message{
		Header: netlink.Header{Type: unix.RTM_SETLINK, Flags: netlink.Request | netlink.Acknowledge},
		Data:   append(ifi, a...),
	})
	return err
}
