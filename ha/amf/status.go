package amf

import (
	"time"

	"github.com/cgoa/cgoa/ha/clm"
)

// Status is what `show ha` prints: membership, quorum, every service
// group with its units and HA states, leases and the last failover.
type Status struct {
	Self         uint8           `json:"self"`
	Incarnation  uint64          `json:"incarnation"`
	InQuorum     bool            `json:"in_quorum"`
	Voters       []uint8         `json:"voters"`
	Lease        time.Duration   `json:"lease_ns"`
	View         clm.View        `json:"membership"`
	Groups       []GroupStatus   `json:"groups"`
	Leases       []LeaseStatus   `json:"leases"`
	LastFailover *FailoverRecord `json:"last_failover,omitempty"`
	// Links is the carrier fencing state (nil without hubs configured).
	Links *LinkStatus `json:"links,omitempty"`
	// BadPayloads counts authenticated frames whose payload did not
	// decode (dropped); LastBadPayload is the last one's error.
	BadPayloads    uint64 `json:"bad_payloads"`
	LastBadPayload string `json:"last_bad_payload,omitempty"`
}

// GroupStatus is one service group.
type GroupStatus struct {
	Name  string       `json:"name"`
	Model Model        `json:"model"`
	Units []UnitStatus `json:"units"`
}

// UnitStatus is one unit as known on this node: its own units exactly,
// others from their last heartbeat.
type UnitStatus struct {
	Name      string    `json:"name"`
	Node      uint8     `json:"node"`
	State     HAState   `json:"state"`
	Instances []string  `json:"instances,omitempty"`
	Oper      OperState `json:"oper"`
	Known     bool      `json:"known"` // false: no heartbeat from its node
}

// LeaseStatus is one lease this node holds or asks for.
type LeaseStatus struct {
	Key       string        `json:"key"`
	Held      bool          `json:"held"`
	Remaining time.Duration `json:"remaining_ns"`
}

// Status returns the node's status at now.
func (n *Node) Status(now time.Duration) Status {
	s := Status{Self: n.self, Incarnation: n.inc, InQuorum: n.lessee.Holds(nodeKey(n.self), now),
		Voters: n.voters.Slots(), Lease: n.timing.Lease, View: n.mem.View(now), Links: n.linkStatus(),
		BadPayloads: n.bad, LastBadPayload: n.lastBad}
	if n.last != nil {
		rec := *n.last
		s.LastFailover = &rec
	}
	for i := range n.cfg.Groups {
		s.Groups = append(s.Groups, n.groupStatus(&n.cfg.Groups[i]))
	}
	for _, k := range n.lessee.Keys() {
		ls := LeaseStatus{Key: k, Held: n.lessee.Holds(k, now)}
		if ls.Held {
			ls.Remaining = n.lessee.Expiry(k) - now
		}
		s.Leases = append(s.Leases, ls)
	}
	return s
}

// GroupStatus is one service group's part of Status, without the rest
// (membership view, leases): cheap enough for a role to poll.
func (n *Node) GroupStatus(name string) (GroupStatus, bool) {
	for i := range n.cfg.Groups {
		if n.cfg.Groups[i].Name == name {
			return n.groupStatus(&n.cfg.Groups[i]), true
		}
	}
	return GroupStatus{}, false
}

func (n *Node) groupStatus(g *ServiceGroup) GroupStatus {
	gs := GroupStatus{Name: g.Name, Model: g.Model}
	for _, su := range g.Units {
		us := UnitStatus{Name: su.Name, Node: su.Node}
		if u := n.units[su.Name]; u != nil {
			us.Known, us.State, us.Instances = true, u.state, u.sis
			switch {
			case u.failed:
				us.Oper = Failed
			case u.locked:
				us.Oper = Locked
			case n.extracting:
				us.Oper = Extracting
			case !n.ready(u):
				us.Oper = NotReady
			default:
				us.Oper = InService
			}
		} else if r := n.remotes[su.Node]; r != nil && n.mem.Up(su.Node) {
			for _, rep := range r.units {
				if rep.Name == su.Name {
					us.Known, us.State, us.Instances = true, rep.State, rep.Instances
					us.Oper = InService
					if !rep.Ready {
						us.Oper = NotReady // locked, failed, extracting or gated
					}
				}
			}
		}
		gs.Units = append(gs.Units, us)
	}
	return gs
}

// Active reports whether the local unit of group is active for instance
// si ("" = any instance) at now: its HA state is Active and the lease
// behind it is unexpired at now. A role acting on its own (a probe
// responder, say) checks this before every externally visible action, so
// a late timer or a resumed stopped process never acts on a lapsed lease.
func (n *Node) Active(group, si string, now time.Duration) bool {
	return now < n.ActiveUntil(group, si)
}

// ActiveUntil is the end of the lease behind the local unit of group that
// is active for instance si ("" = any instance; the latest of them), 0 if
// none is. Active is true exactly until then, unless the engine ends the
// assignment or releases the lease first (it reports that through
// Env.Released and the assignment event), so a caller may keep the value
// and check its clock against it without the engine.
func (n *Node) ActiveUntil(group, si string) time.Duration {
	var until time.Duration
	for _, name := range n.order {
		u := n.units[name]
		if u.group.Name != group || u.state != Active {
			continue
		}
		for _, s := range u.sis {
			if si != "" && s != si {
				continue
			}
			var key string
			switch u.group.Model {
			case TwoN:
				key = groupKey(group)
			case NWayActive:
				key = nodeKey(n.self)
			default:
				key = instanceKey(group, s)
			}
			until = max(until, n.lessee.Expiry(key))
		}
	}
	return until
}
