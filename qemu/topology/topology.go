package topology

import (
	_ "embed"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Role is the firmware build a blade runs.
type Role string

// The blade roles, one per firmware build tag.
const (
	Switch Role = "switch"
	Mgmt   Role = "mgmt"
	EPON   Role = "epon"
)

// Roles lists every valid role.
var Roles = []Role{Switch, Mgmt, EPON}

// Shelf limits.
const (
	MaxSlot     = 16 // ATCA 14-slot shelves number node slots up to 16 here (node<N> up to 0x1c)
	MaxPON      = 8  // pon0..pon7 (PCI 0x10..0x17)
	DefaultPON  = 2
	HostSlot    = 0 // End.Slot of a host-side far end
	maxNameLen  = 32
	maxShelfNum = 255
)

// Blade is one occupied slot.
type Blade struct {
	Slot   int
	Role   Role
	PON    int  // number of PON ports (epon only)
	Uplink bool // hub has uplink0 (switch only)
}

// Hub reports whether the blade sits in a hub slot.
func (b Blade) Hub() bool { return IsHubSlot(b.Slot) }

// Hostname is the blade's hostname and console prompt stem, "<role>-s<slot>".
func (b Blade) Hostname() string { return fmt.Sprintf("%s-s%d", b.Role, b.Slot) }

// Prompt is the console prompt the firmware prints, "<hostname>> ".
func (b Blade) Prompt() string { return b.Hostname() + "> " }

// IsHubSlot reports whether slot is an ATCA hub slot (1 or 2).
func IsHubSlot(slot int) bool { return slot == 1 || slot == 2 }

// Kind says what a channel connects.
type Kind string

// Channel kinds.
const (
	Base   Kind = "base"   // node base0/base1 <-> hub node<N>
	ISL    Kind = "isl"    // hub isl0 <-> hub isl0
	Uplink Kind = "uplink" // hub uplink0 <-> host sink
	PON    Kind = "pon"    // epon pon<i> <-> host ONU emulator
)

// End is one end of a channel: a blade port, or (Slot == HostSlot) a host
// endpoint named by Port.
type End struct {
	Slot int
	Port string
}

// Host reports whether the end is a host-side far end.
func (e End) Host() bool { return e.Slot == HostSlot }

func (e End) String() string {
	if e.Host() {
		return "host/" + e.Port
	}
	return fmt.Sprintf("s%d/%s", e.Slot, e.Port)
}

// Channel is a point-to-point link. A is always a blade port; B is a blade
// port or a host endpoint.
type Channel struct {
	Kind Kind
	A, B End
}

// Shelf is a validated topology.
type Shelf struct {
	Name     string
	Number   int
	Blades   []Blade // sorted by slot
	Channels []Channel
}

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML returns the text of the embedded default topology.
func DefaultYAML() []byte { return append([]byte(nil), defaultYAML...) }

// Default returns the standard shelf: switch hubs in 1 and 2, mgmt in 3 and
// 4, epon in 5 with pon0 and pon1.
func Default() *Shelf {
	s, err := Parse("default.yaml", defaultYAML)
	if err != nil {
		panic("topology: embedded default.yaml is invalid: " + err.Error()) // caught by TestDefault
	}
	return s
}

// Blade returns the blade in slot.
func (s *Shelf) Blade(slot int) (Blade, bool) {
	for _, b := range s.Blades {
		if b.Slot == slot {
			return b, true
		}
	}
	return Blade{}, false
}

// Hubs returns the hub blades.
func (s *Shelf) Hubs() []Blade {
	var hubs []Blade
	for _, b := range s.Blades {
		if b.Hub() {
			hubs = append(hubs, b)
		}
	}
	return hubs
}

// Ports returns the blade's ports in PCI device order.
func (s *Shelf) Ports(slot int) []string {
	var ports []string
	for _, c := range s.Channels {
		if c.A.Slot == slot {
			ports = append(ports, c.A.Port)
		}
		if c.B.Slot == slot {
			ports = append(ports, c.B.Port)
		}
	}
	sort.Slice(ports, func(i, j int) bool {
		a, _ := PCIDevice(ports[i])
		b, _ := PCIDevice(ports[j])
		return a < b
	})
	return ports
}

// Peer returns the far end of the channel at (slot, port).
func (s *Shelf) Peer(slot int, port string) (End, Channel, bool) {
	for _, c := range s.Channels {
		if c.A.Slot == slot && c.A.Port == port {
			return c.B, c, true
		}
		if !c.B.Host() && c.B.Slot == slot && c.B.Port == port {
			return c.A, c, true
		}
	}
	return End{}, Channel{}, false
}

// HostEnds returns the channels whose far end is on the host.
func (s *Shelf) HostEnds() []Channel {
	var hs []Channel
	for _, c := range s.Channels {
		if c.B.Host() {
			hs = append(hs, c)
		}
	}
	return hs
}

var nodePortRE = regexp.MustCompile(`^(node|pon)([0-9]+)$`)

// PCIDevice returns the PCI device number (bus 0) of a port, mirroring the
// firmware's hal.PortByPCIDevice table:
//
//	0x07 craft0, 0x08 base0, 0x09 base1, 0x0a isl0, 0x0b uplink0,
//	0x0c+N node<N> (N = 3..16), 0x10+i pon<i> (i = 0..7).
func PCIDevice(port string) (int, error) {
	switch port {
	case "craft0":
		return 0x07, nil
	case "base0":
		return 0x08, nil
	case "base1":
		return 0x09, nil
	case "isl0":
		return 0x0a, nil
	case "uplink0":
		return 0x0b, nil
	}
	if m := nodePortRE.FindStringSubmatch(port); m != nil && (len(m[2]) == 1 || m[2][0] != '0') {
		n, _ := strconv.Atoi(m[2])
		switch {
		case m[1] == "node" && n >= 3 && n <= MaxSlot:
			return 0x0c + n, nil
		case m[1] == "pon" && n < MaxPON:
			return 0x10 + n, nil
		}
	}
	return 0, fmt.Errorf("topology: no PCI device for port %q", port)
}

// MAC returns the MAC address of a blade port: 52:54:<shelf>:<slot>:00:<pci dev>.
func MAC(shelf, slot int, port string) (string, error) {
	dev, err := PCIDevice(port)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("52:54:%02x:%02x:00:%02x", shelf, slot, dev), nil
}

// HostEndName names the host endpoint serving a blade port.
func HostEndName(kind Kind, slot int, port string) string {
	if kind == Uplink {
		return fmt.Sprintf("uplink-s%d", slot)
	}
	return fmt.Sprintf("onu-s%d-%s", slot, port)
}

// wire derives the channels from the blades.
func (s *Shelf) wire() {
	s.Channels = nil
	hubs := s.Hubs()
	if len(hubs) == 2 {
		s.Channels = append(s.Channels, Channel{Kind: ISL, A: End{hubs[0].Slot, "isl0"}, B: End{hubs[1].Slot, "isl0"}})
	}
	for _, h := range hubs {
		if h.Uplink {
			s.Channels = append(s.Channels, Channel{Kind: Uplink, A: End{h.Slot, "uplink0"}, B: End{HostSlot, HostEndName(Uplink, h.Slot, "uplink0")}})
		}
	}
	for _, b := range s.Blades {
		if b.Hub() {
			continue
		}
		for _, h := range hubs {
			s.Channels = append(s.Channels, Channel{Kind: Base, A: End{b.Slot, fmt.Sprintf("base%d", h.Slot-1)}, B: End{h.Slot, fmt.Sprintf("node%d", b.Slot)}})
		}
		for i := 0; i < b.PON; i++ {
			p := fmt.Sprintf("pon%d", i)
			s.Channels = append(s.Channels, Channel{Kind: PON, A: End{b.Slot, p}, B: End{HostSlot, HostEndName(PON, b.Slot, p)}})
		}
	}
}

// String renders the shelf one blade per line, for humans.
func (s *Shelf) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "shelf %s (number %d)\n", s.Name, s.Number)
	for _, b := range s.Blades {
		fmt.Fprintf(&sb, "  slot %2d %-6s", b.Slot, b.Role)
		for _, p := range s.Ports(b.Slot) {
			peer, _, _ := s.Peer(b.Slot, p)
			fmt.Fprintf(&sb, " %s->%s", p, peer)
		}
		sb.WriteByte('\n')
	}
	return sb.String()
}
