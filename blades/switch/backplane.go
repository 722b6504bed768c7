package switchblade

import (
	"fmt"
	"net"
	"strings"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/jsimonetti/rtnetlink/v2/driver"
	"golang.org/x/sys/unix"

	"github.com/cgoa/cgoa/blades/blade"
)

// Bridge is the name of the hub's backplane bridge.
const Bridge = "br0"

// bridgedPort says which ports join the backplane bridge: the base channels to every node
// slot, the inter-switch link and the uplink.
func bridgedPort(name string) bool {
	return strings.HasPrefix(name, "node") || name == "isl0" || strings.HasPrefix(name, "uplink")
}

// startBackplane creates br0 over the hub's backplane ports and brings it up with kernel STP
// off, so the HA transport runs over it at once (node blades do not bridge base0 and base1:
// the backplane has no loop). The uplinks join br0 but stay down unless upUplinks: the STP
// agent brings them up once br0 is in user STP mode, where they start blocking. In mode off
// (upUplinks) they forward from boot, as a bridge without spanning tree does.
func startBackplane(b *blade.Blade, upUplinks bool) error {
	c, err := rtnetlink.Dial(nil)
	if err != nil {
		return fmt.Errorf("backplane: %w", err)
	}
	defer c.Close()
	br, err := net.InterfaceByName(Bridge)
	if err != nil {
		off := driver.BridgeStpStateDisabled
		if err := c.Link.New(&rtnetlink.LinkMessage{Family: unix.AF_UNSPEC, Attributes: &rtnetlink.LinkAttributes{
			Name: Bridge, Info: &rtnetlink.LinkInfo{Kind: "bridge", Data: &driver.Bridge{StpState: &off}}}}); err != nil {
			return fmt.Errorf("backplane: create %s: %w", Bridge, err)
		}
		if br, err = net.InterfaceByName(Bridge); err != nil {
			return fmt.Errorf("backplane: %w", err)
		}
	}
	ports, err := b.HW.Ports.List()
	if err != nil {
		return err
	}
	var joined []string
	for _, p := range ports {
		if !bridgedPort(p.Name) {
			continue
		}
		// rtnetlink v2.3.0's SetMaster also sends the link type as IFLA_LINK, which the kernel
		// refuses with EBUSY; IFLA_MASTER alone is what enslaving needs.
		master := uint32(br.Index)
		if err := c.Link.Set(&rtnetlink.LinkMessage{Family: unix.AF_UNSPEC, Index: uint32(p.Index),
			Attributes: &rtnetlink.LinkAttributes{Master: &master}}); err != nil {
			return fmt.Errorf("backplane: add %s to %s: %w", p.Name, Bridge, err)
		}
		joined = append(joined, p.Name)
		if strings.HasPrefix(p.Name, "uplink") && !upUplinks {
			// Down until the agent opens br0 in user STP mode: it may have been up
			// (a restarted role), so say it.
			if err := b.HW.Ports.SetAdmin(p.Name, false); err != nil {
				return err
			}
			continue
		}
		if err := b.HW.Ports.SetAdmin(p.Name, true); err != nil {
			return err
		}
	}
	if err := c.Link.Set(&rtnetlink.LinkMessage{Family: unix.AF_UNSPEC, Index: uint32(br.Index), Flags: unix.IFF_UP, Change: unix.IFF_UP}); err != nil {
		return fmt.Errorf("backplane: bring %s up: %w", Bridge, err)
	}
	b.Log.Printf("backplane: %s bridges %v", Bridge, joined)
	return nil
}
