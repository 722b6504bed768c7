package blade

import (
	"net/netip"

	"github.com/cgoa/cgoa/blades/shelf"
	"github.com/cgoa/cgoa/ha/evt"
	"github.com/cgoa/cgoa/ha/transport"
)

type evtEvent = evt.Event

func netipAny(port uint16) netip.AddrPort { return netip.AddrPortFrom(netip.IPv4Unspecified(), port) }

// haPath is the HA transport's path over port, which carries the addresses of planes.
//
// A hub's br0 carries both planes: its frames go to the limited broadcast address, which
// every blade takes on both of its base interfaces (hub 1's reach base1 over the inter-hub
// link), and it takes whatever reaches it. No ARP is on the HA path either way.
//
// A blade's base interface carries one plane: its frames go to that plane's broadcast
// address, and its socket takes only that, its own plane address and the limited broadcast
// (hubs, and blades of an older release during a rolling upgrade). The frames it sends on
// base0 also reach every base1 over the inter-hub link (and those on base1 every base0):
// the copies the receiver already has from the other path. They are dropped in the kernel
// now, where each cost a wake-up, a read and an authentication before the replay window
// named it a duplicate: half of what a blade read.
func haPath(port string, planes []int, slot int) transport.UDPPath {
	limited := netip.AddrFrom4([4]byte{255, 255, 255, 255})
	if len(planes) != 1 {
		return transport.UDPPath{Interface: port, Local: netipAny(shelf.HAPort),
			Broadcast: netip.AddrPortFrom(limited, shelf.HAPort)}
	}
	p := planes[0]
	return transport.UDPPath{Interface: port, Local: netipAny(shelf.HAPort),
		Broadcast:    netip.AddrPortFrom(shelf.PlaneBroadcast(p), shelf.HAPort),
		Destinations: []netip.Addr{shelf.PlaneBroadcast(p), shelf.PlaneAddr(p, slot).Addr(), limited}}
}
