package blade

import (
	"net/netip"

	"github.com/cgoa/cgoa/ha/evt"
)

type evtEvent = evt.Event

func netipAny(port uint16) netip.AddrPort { return netip.AddrPortFrom(netip.IPv4Unspecified(), port) }

// HA frames go to the limited broadcast address: every blade on the backplane segment
// receives them whatever its plane address, and no ARP is on the HA path.
func netipBroadcast(port uint16) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{255, 255, 255, 255}), port)
}
