package amf

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/cgoa/cgoa/ha/evt"
	"github.com/cgoa/cgoa/ha/transport"
)

// Fencing by carrier.
//
// On a dual-star backplane (Config.Hubs) a blade's channels end at the hubs,
// and a hub's at every other blade. When a blade is pulled, loses power or
// has its channels cut, the far end of each channel loses carrier at once:
// the PHY tells, no heartbeat needs to be missed. Every member reports the
// slots whose channel to it has no carrier (Node.SetLinks, a TypeLinks frame
// on change and again while anything is down), and a member fences slot x
// when the far end of every channel of x reports it without carrier: x can
// neither be heard nor reach anyone. Fencing x declares it failed in the
// membership view and ends this voter's promises to x (quorum.Lessor.Revoke),
// so its standby takes over in one request round trip instead of one lease.
//
// The blade itself sees the same event: when every one of its own channels
// has lost carrier it gives up every lease at once (isolated) and asks for
// none until a channel returns. Frames of a fenced slot still in flight are
// dropped; the fence ends when a report says the carrier is back, or when
// the reports that made it are no longer refreshed.
//
// Without a report from the far end of every channel (a reporter dead, a
// channel with carrier) nothing is fenced and the detection time applies:
// a hung blade keeps its carrier and is found by its missing heartbeats.

type linkReport struct {
	inc  uint64
	at   time.Duration
	down []uint8
}

// reportLife is how long a carrier report counts without being refreshed;
// a member refreshes a non-empty report every detection time.
func (n *Node) reportLife() time.Duration {
	return 2*n.cfg.Timers.Detection() + n.cfg.Timers.Interval
}

// SetLinks takes this blade's carrier report: the slots whose backplane
// channel to it has no carrier now. Slots it has no channel to are
// ignored. The first call and every change go out at once.
func (n *Node) SetLinks(now time.Duration, down []uint8) {
	if n.stopped {
		return
	}
	peers := n.cfg.channelPeers(n.self)
	var d []uint8
	for _, s := range down {
		if slices.Contains(peers, s) && !slices.Contains(d, s) {
			d = append(d, s)
		}
	}
	slices.Sort(d)
	if n.linksSet && slices.Equal(d, n.linksDown) {
		return
	}
	n.linksSet, n.linksDown = true, d
	n.sendLinks(now)
	// One repeat against loss an interval later; then every detection
	// time while something is down (sendLinks).
	n.nextLinks = now + n.cfg.Timers.Interval
	isolated := len(peers) > 0 && len(d) == len(peers)
	if isolated != n.isolated {
		n.isolated = isolated
		if isolated {
			var keys []string
			for _, k := range n.lessee.Keys() {
				if n.lessee.Holds(k, now) {
					keys = append(keys, k)
				}
				n.release(k)
			}
			n.publish(now, evt.Fault, strconv.Itoa(int(n.self)), "", "isolated",
				fmt.Sprintf("no carrier on any backplane channel: leases given up %v", keys))
		} else {
			n.publish(now, evt.Fault, strconv.Itoa(int(n.self)), "isolated", "connected", "carrier back on a backplane channel")
		}
	}
	n.fence(now)
	n.update(now)
	n.kick(now)
}

func (n *Node) sendLinks(now time.Duration) {
	n.env.Send(transport.TypeLinks, transport.Broadcast, MarshalLinks(n.linksDown))
}

// linksTick resends the report when due.
func (n *Node) linksTick(now time.Duration) {
	if !n.linksSet || now < n.nextLinks {
		return
	}
	if len(n.linksDown) > 0 {
		n.sendLinks(now)
		n.nextLinks = now + n.cfg.Timers.Detection()
		return
	}
	// The one repeat of an empty report (all carriers are up).
	n.sendLinks(now)
	n.nextLinks = never
}

// never is a deadline that does not come.
const never = time.Duration(1<<63 - 1)

// receiveLinks takes a member's carrier report.
func (n *Node) receiveLinks(now time.Duration, f transport.Frame) {
	down, err := UnmarshalLinks(f.Payload)
	if err != nil {
		n.badPayload(f, err)
		return
	}
	if r, ok := n.reports[f.From]; ok && r.inc > f.Epoch {
		return // an older life of the reporter
	}
	n.reports[f.From] = linkReport{inc: f.Epoch, at: now, down: down}
	n.fence(now)
}

// cutOff reports whether the far end of every channel of x reports it
// without carrier, by reports of live members refreshed in time.
func (n *Node) cutOff(now time.Duration, x uint8) bool {
	peers := n.cfg.channelPeers(x)
	if len(peers) == 0 {
		return false
	}
	for _, e := range peers {
		if e == n.self {
			if !n.linksSet || !slices.Contains(n.linksDown, x) {
				return false
			}
			continue
		}
		r, ok := n.reports[e]
		if !ok || n.fenced[e] || !n.mem.Up(e) || r.inc != n.mem.Inc(e) || now-r.at > n.reportLife() || !slices.Contains(r.down, x) {
			return false
		}
	}
	return true
}

// fence fences the slots now cut off and lifts the fence of those no
// longer cut off.
func (n *Node) fence(now time.Duration) {
	if len(n.cfg.Hubs) == 0 {
		return
	}
	changed := false
	for _, x := range n.cfg.Slots {
		if x == n.self {
			continue
		}
		cut := n.cutOff(now, x)
		switch {
		case cut && !n.fenced[x]:
			n.fenced[x] = true
			changed = true
			for _, c := range n.mem.Fence(now, x) {
				n.membershipChange(now, c)
			}
			keys := n.lessor.Revoke(x)
			for _, m := range n.requesters {
				delete(m, x)
			}
			n.publish(now, evt.Membership, strconv.Itoa(int(x)), "", "fenced",
				fmt.Sprintf("no carrier at the far end of any of its channels; promises ended %v", keys))
		case !cut && n.fenced[x]:
			delete(n.fenced, x)
			n.publish(now, evt.Membership, strconv.Itoa(int(x)), "fenced", "unfenced", "a channel has carrier again")
		}
	}
	if changed {
		n.grantDue(now)
	}
}

// nextFenceCheck is when the next report that may hold a fence runs out,
// after now (reports that ran out already hold none).
func (n *Node) nextFenceCheck(now time.Duration) (time.Duration, bool) {
	var next time.Duration
	ok := false
	if len(n.fenced) == 0 {
		return 0, false
	}
	for _, r := range n.reports {
		if t := r.at + n.reportLife() + 1; len(r.down) > 0 && t > now && (!ok || t < next) {
			next, ok = t, true
		}
	}
	return next, ok
}

// LinkStatus is the carrier fencing part of Status.
type LinkStatus struct {
	// Down: the slots whose channel to this blade has no carrier.
	Down []uint8 `json:"down"`
	// Isolated: no carrier on any channel; this blade holds no lease.
	Isolated bool `json:"isolated"`
	// Fenced: the slots fenced now (no carrier at the far end of any of
	// their channels).
	Fenced []uint8 `json:"fenced"`
}

func (n *Node) linkStatus() *LinkStatus {
	if len(n.cfg.Hubs) == 0 {
		return nil
	}
	s := &LinkStatus{Down: slices.Clone(n.linksDown), Isolated: n.isolated}
	for _, x := range n.cfg.Slots {
		if n.fenced[x] {
			s.Fenced = append(s.Fenced, x)
		}
	}
	return s
}
