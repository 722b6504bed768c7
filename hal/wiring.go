package hal

import (
	"fmt"
	"strconv"
	"strings"
)

// The backplane wiring: a blade names its NICs by their PCI position, the way a real ATCA
// blade's ports are fixed by the board layout, not by the order drivers happen to probe. The
// QEMU launcher places each emulated NIC at the PCI device number given here (bus 0).
const (
	pciCraft  = 0x07 // craft0: service port on the front panel
	pciBase0  = 0x08 // base0: node slot's base channel to hub slot 1
	pciBase1  = 0x09 // base1: node slot's base channel to hub slot 2
	pciISL    = 0x0a // isl0: inter-switch link between the two hubs
	pciUplink = 0x0b // uplink0: hub's uplink to the core network
	pciNode   = 0x0c // node<N> at pciNode+N: hub's base channel to node slot N (3..16)
	pciPON    = 0x10 // pon<i> at pciPON+i: EPON blade's PON port i (0..7)

	// MaxPON is the number of PON ports an EPON blade can carry.
	MaxPON = 8
)

// PortNameForPCI gives the stable port name for a NIC at PCI device number dev on bus 0 of a
// blade; hub says whether the blade sits in a hub slot (hubs have node<N> ports where node
// blades have PON ports). ok is false for a position that is not on the wiring.
func PortNameForPCI(dev int, hub bool) (name string, ok bool) {
	switch {
	case dev == pciCraft:
		return "craft0", true
	case dev == pciBase0 && !hub:
		return "base0", true
	case dev == pciBase1 && !hub:
		return "base1", true
	case dev == pciISL && hub:
		return "isl0", true
	case dev == pciUplink && hub:
		return "uplink0", true
	case hub && dev >= pciNode+3 && dev <= pciNode+MaxSlot:
		return fmt.Sprintf("node%d", dev-pciNode), true
	case !hub && dev >= pciPON && dev < pciPON+MaxPON:
		return fmt.Sprintf("pon%d", dev-pciPON), true
	}
	return "", false
}

// PCIForPort is the inverse of PortNameForPCI: where the launcher must place a port's NIC.
func PCIForPort(name string, hub bool) (int, error) {
	fixed := map[string]int{"craft0": pciCraft}
	if hub {
		fixed["isl0"], fixed["uplink0"] = pciISL, pciUplink
	} else {
		fixed["base0"], fixed["base1"] = pciBase0, pciBase1
	}
	if d, ok := fixed[name]; ok {
		return d, nil
	}
	prefix, lo, hi, base := "pon", 0, MaxPON-1, pciPON
	if hub {
		prefix, lo, hi, base = "node", 3, MaxSlot, pciNode
	}
	if rest, ok := strings.CutPrefix(name, prefix); ok {
		if n, err := strconv.Atoi(rest); err == nil && n >= lo && n <= hi && rest == strconv.Itoa(n) {
			return base + n, nil
		}
	}
	kind := "node"
	if hub {
		kind = "hub"
	}
	return 0, fmt.Errorf("hal: no port %q on a %s blade", name, kind)
}

// PortMAC is the MAC address the wiring gives a port: 52:54:<shelf>:<slot>:00:<pci dev>, in
// QEMU's locally administered range, unique across a shelf.
func PortMAC(shelf, slot, pciDev int) string {
	return fmt.Sprintf("52:54:%02x:%02x:00:%02x", shelf&0xff, slot&0xff, pciDev&0xff)
}

// pciDeviceFromAddress parses the device number out of a PCI address such as "0000:00:08.0"
// (bus 0 only: the backplane NICs sit on the root bus).
func pciDeviceFromAddress(addr string) (int, bool) {
	parts := strings.Split(addr, ":")
	if len(parts) != 3 || parts[1] != "00" {
		return 0, false
	}
	devfn := strings.Split(parts[2], ".")
	if len(devfn) != 2 {
		return 0, false
	}
	d, err := strconv.ParseUint(devfn[0], 16, 8)
	if err != nil || d > 31 {
		return 0, false
	}
	return int(d), true
}
