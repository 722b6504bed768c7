// Package shelf is what every blade knows of the shelf it sits in: which role each slot
// holds (the shelf map the shelf manager hands out), the HA model each role declares, and the
// shelf's backplane addressing. The HA configuration must be identical on every blade, so it
// is derived here, in one place, from the shelf map:
//
//   - mgmt blades form the service group "mgmt", 2N, succession in slot order;
//   - switch (hub) blades form "switch", 2N;
//   - EPON blades form "olt", N+M with one spare (M = 1) when there are two or more.
//
// Every slot votes (hubs included), so a shelf with two mgmt blades never needs a tie-break
// between just those two.
package shelf

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cgoa/cgoa/ha/amf"
	"github.com/cgoa/cgoa/ha/clm"
)

// Member is one occupied slot.
type Member struct {
	Slot int    `json:"slot"`
	Role string `json:"role"`
}

// Roles are the blade roles a shelf map may name.
var Roles = []string{"mgmt", "switch", "epon"}

// DefaultMap is the default shelf: hubs in 1 and 2, mgmt in 3 and 4, EPON in 5.
const DefaultMap = "1:switch,2:switch,3:mgmt,4:mgmt,5:epon"

// ParseMap parses "SLOT:ROLE,SLOT:ROLE,...". Errors name the bad entry.
func ParseMap(s string) ([]Member, error) {
	var out []Member
	seen := map[int]bool{}
	for _, e := range strings.Split(s, ",") {
		e = strings.TrimSpace(e)
		slotS, role, ok := strings.Cut(e, ":")
		if !ok {
			return nil, fmt.Errorf("shelf map: entry %q: want SLOT:ROLE", e)
		}
		slot, err := strconv.Atoi(slotS)
		if err != nil || slot < 1 || slot > 16 {
			return nil, fmt.Errorf("shelf map: entry %q: slot must be 1..16", e)
		}
		if !slices.Contains(Roles, role) {
			return nil, fmt.Errorf("shelf map: entry %q: unknown role %q (roles: %s)", e, role, strings.Join(Roles, ", "))
		}
		if (role == "switch") != (slot <= 2) {
			return nil, fmt.Errorf("shelf map: entry %q: switch blades sit in hub slots 1 and 2, and only they do", e)
		}
		if seen[slot] {
			return nil, fmt.Errorf("shelf map: slot %d listed twice", slot)
		}
		seen[slot] = true
		out = append(out, Member{Slot: slot, Role: role})
	}
	slices.SortFunc(out, func(a, b Member) int { return a.Slot - b.Slot })
	return out, nil
}

// FormatMap is the inverse of ParseMap.
func FormatMap(ms []Member) string {
	var parts []string
	for _, m := range ms {
		parts = append(parts, fmt.Sprintf("%d:%s", m.Slot, m.Role))
	}
	return strings.Join(parts, ",")
}

// Group names the roles declare.
const (
	GroupMgmt   = "mgmt"
	GroupSwitch = "switch"
	GroupOLT    = "olt"
)

// CkptKeepAlive is the idle poll of the roles' checkpoint writers to their replicas
// (ckpt.Options.KeepAlive). The HA transport broadcasts every frame on both channels, so an
// idle poll and its ack reach every blade: at the checkpoint service's default of 100 ms the
// two writers' polls and their acks were 40 frames a second at rest, on each channel, each an
// interrupt and a wake-up on every emulated blade. At 250 ms the in-sync lease is 1.79 s with the
// shelf's 1 s HA lease (1.49 s at 100 ms): how long a synchronous write can wait on a dead
// standby that carrier fencing did not catch.
const CkptKeepAlive = 250 * time.Millisecond

// UnitName is a service unit's name: "<group>-<slot>".
func UnitName(group string, slot int) string { return fmt.Sprintf("%s-%d", group, slot) }

// HAConfig derives the shelf's HA configuration from its map.
func HAConfig(shelfNo int, ms []Member, timers clm.Timers) (amf.Config, error) {
	c := amf.Config{Shelf: uint16(shelfNo), Timers: timers,
		Escalation: amf.Escalation{MaxRestarts: 3, MaxUnitFailovers: 2, Window: time.Minute}}
	byRole := map[string][]amf.ServiceUnit{}
	group := map[string]string{"mgmt": GroupMgmt, "switch": GroupSwitch, "epon": GroupOLT}
	for _, m := range ms {
		c.Slots = append(c.Slots, uint8(m.Slot))
		g := group[m.Role]
		if m.Role == "switch" {
			c.Hubs = append(c.Hubs, uint8(m.Slot))
		}
		byRole[m.Role] = append(byRole[m.Role], amf.ServiceUnit{Name: UnitName(g, m.Slot), Node: uint8(m.Slot)})
	}
	if u := byRole["mgmt"]; len(u) > 0 {
		c.Groups = append(c.Groups, amf.ServiceGroup{Name: GroupMgmt, Model: amf.TwoN, Units: u})
	}
	if u := byRole["switch"]; len(u) > 0 {
		c.Groups = append(c.Groups, amf.ServiceGroup{Name: GroupSwitch, Model: amf.TwoN, Units: u})
	}
	if u := byRole["epon"]; len(u) > 0 {
		// N+M with one spare: N = units - 1 instances (at least one).
		n := max(1, len(u)-1)
		var sis []string
		for i := 0; i < n; i++ {
			sis = append(sis, fmt.Sprintf("olt%d", i))
		}
		c.Groups = append(c.Groups, amf.ServiceGroup{Name: GroupOLT, Model: amf.NPlusM, Units: u, Instances: sis, PerUnit: 1})
	}
	if err := c.Validate(); err != nil {
		return amf.Config{}, err
	}
	return c, nil
}

// Backplane addressing. The two base planes (through hub 1 and hub 2) each have a network; a
// blade's address on a plane is the network plus its slot. Hubs bridge their node ports and
// the inter-switch link, so a hub sits on both planes through its bridge.
var (
	BasePlane = [2]netip.Prefix{netip.MustParsePrefix("169.254.1.0/24"), netip.MustParsePrefix("169.254.2.0/24")}
	// MgmtService is the management address: on the active mgmt blade only.
	MgmtService = netip.MustParsePrefix("169.254.3.1/24")
)

// Ports for HA frames and the management service probe.
const (
	HAPort    = 7400
	ProbePort = 7500
)

// PlaneAddr is slot's address on base plane p (0 or 1).
func PlaneAddr(p, slot int) netip.Prefix {
	a := BasePlane[p].Addr().As4()
	a[3] = byte(slot)
	return netip.PrefixFrom(netip.AddrFrom4(a), BasePlane[p].Bits())
}

// PlaneBroadcast is base plane p's broadcast address.
func PlaneBroadcast(p int) netip.Addr {
	a := BasePlane[p].Addr().As4()
	a[3] = 255
	return netip.AddrFrom4(a)
}

// ParseTimers parses "INTERVALxMISSES", e.g. "10msx3".
func ParseTimers(s string) (clm.Timers, error) {
	iv, misses, ok := strings.Cut(s, "x")
	if !ok {
		return clm.Timers{}, fmt.Errorf("HA timers %q: want INTERVALxMISSES, e.g. 50msx4", s)
	}
	d, err := time.ParseDuration(iv)
	if err != nil {
		return clm.Timers{}, fmt.Errorf("HA timers %q: %v", s, err)
	}
	n, err := strconv.Atoi(misses)
	if err != nil {
		return clm.Timers{}, fmt.Errorf("HA timers %q: misses %q is not a number", s, misses)
	}
	t := clm.Timers{Interval: d, Misses: n}
	if err := t.Validate(); err != nil {
		return clm.Timers{}, fmt.Errorf("HA timers %q: %v", s, err)
	}
	return t, nil
}
