package amf

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cgoa/cgoa/ha/clm"
)

// Model is a service group's redundancy model.
type Model string

// Redundancy models.
const (
	// TwoN: one active unit holds every service instance, one standby
	// unit is ready to take them all (mgmt, switch).
	TwoN Model = "2n"
	// NPlusM: each service instance is active on one unit; units without
	// an instance are standby (spare) for any of them (olt).
	NPlusM Model = "n+m"
	// NWayActive: every in-service unit is active for every instance
	// while its node is in the quorum partition; nothing is exclusive.
	NWayActive Model = "n-way-active"
	// NoRedundancy: each instance is active on at most one unit, moved to
	// another unit only when its unit fails; no standby.
	NoRedundancy Model = "no-redundancy"
)

// ServiceUnit is a unit of a service group, placed on one blade slot.
type ServiceUnit struct {
	Name string `json:"name" yaml:"name"`
	Node uint8  `json:"node" yaml:"node"`
}

// ServiceGroup is a set of units protecting a set of service instances.
type ServiceGroup struct {
	Name  string `json:"name" yaml:"name"`
	Model Model  `json:"model" yaml:"model"`
	// Units in succession order: the first eligible unit takes an
	// assignment. For N+M and no-redundancy the order is rotated per
	// instance so instances spread over the units.
	Units []ServiceUnit `json:"units" yaml:"units"`
	// Instances are the service instances (SIs); empty means one SI named
	// after the group.
	Instances []string `json:"instances,omitempty" yaml:"instances,omitempty"`
	// PerUnit is how many instances one unit may hold active (N+M and
	// no-redundancy; default 1).
	PerUnit int `json:"per_unit,omitempty" yaml:"per_unit,omitempty"`
}

// Config is the shelf's HA configuration.
type Config struct {
	Shelf uint16  `json:"shelf" yaml:"shelf"`
	Slots []uint8 `json:"slots" yaml:"slots"` // every configured member; all vote
	// Hubs are the hub slots of a dual-star backplane: each other slot has
	// one channel to each hub, and the hubs one to each other. With them the
	// members fence a blade as soon as the far end of each of its channels
	// reports no carrier (Node.SetLinks), instead of waiting out the
	// detection time. Empty: no fencing by carrier (process mode, tests).
	Hubs []uint8 `json:"hubs,omitempty" yaml:"hubs,omitempty"`
	// Timers: heartbeat interval and misses. The lease equals the
	// detection time Interval × Misses.
	Timers clm.Timers `json:"timers" yaml:"timers"`
	// Drift bounds clock rates (see quorum.Timing); default 1e-3.
	Drift float64 `json:"drift,omitempty" yaml:"drift,omitempty"`
	// HealthInterval is the period of component health checks (default
	// Timers.Interval).
	HealthInterval time.Duration `json:"health_interval,omitempty" yaml:"health_interval,omitempty"`
	// Escalation limits.
	Escalation Escalation     `json:"escalation" yaml:"escalation"`
	Groups     []ServiceGroup `json:"groups" yaml:"groups"`
}

// Escalation bounds the recovery steps: a failing component is restarted
// up to MaxRestarts times within Window, then its unit fails over; more
// than MaxUnitFailovers unit failovers on a node within Window fail the
// whole node over.
type Escalation struct {
	MaxRestarts      int           `json:"max_restarts" yaml:"max_restarts"`
	MaxUnitFailovers int           `json:"max_unit_failovers" yaml:"max_unit_failovers"`
	Window           time.Duration `json:"window" yaml:"window"`
}

func (c *Config) withDefaults() Config {
	d := *c
	if d.Drift == 0 {
		d.Drift = 1e-3
	}
	if d.HealthInterval == 0 {
		d.HealthInterval = d.Timers.Interval
	}
	if d.Escalation.Window == 0 {
		d.Escalation.Window = 10 * time.Second
	}
	if d.Escalation.MaxRestarts == 0 {
		d.Escalation.MaxRestarts = 2
	}
	if d.Escalation.MaxUnitFailovers == 0 {
		d.Escalation.MaxUnitFailovers = 2
	}
	d.Groups = slices.Clone(d.Groups)
	for i := range d.Groups {
		g := &d.Groups[i]
		if len(g.Instances) == 0 {
			g.Instances = []string{g.Name}
		}
		if g.PerUnit == 0 {
			g.PerUnit = 1
		}
	}
	return d
}

// ParseConfig reads a configuration file's bytes (YAML, or JSON which is
// YAML) and validates it.
func ParseConfig(b []byte) (Config, error) {
	var c Config
	if err := yaml.Unmarshal(b, &c); err != nil {
		return Config{}, fmt.Errorf("amf: config: %w", err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if err := c.Timers.Validate(); err != nil {
		return fmt.Errorf("amf: %w", err)
	}
	if len(c.Slots) == 0 {
		return fmt.Errorf("amf: no slots configured")
	}
	if c.Drift < 0 || c.Drift >= 0.5 {
		return fmt.Errorf("amf: drift %v, want in [0, 0.5)", c.Drift)
	}
	if c.HealthInterval < 0 || c.Escalation.Window < 0 || c.Escalation.MaxRestarts < 0 || c.Escalation.MaxUnitFailovers < 0 {
		return fmt.Errorf("amf: negative health interval or escalation limit")
	}
	seenSlot := map[uint8]bool{}
	for _, s := range c.Slots {
		if s == 0 || s == 0xff || seenSlot[s] {
			return fmt.Errorf("amf: slot %d reserved or listed twice", s)
		}
		seenSlot[s] = true
	}
	for i, h := range c.Hubs {
		if !seenSlot[h] || slices.Contains(c.Hubs[:i], h) {
			return fmt.Errorf("amf: hub slot %d not configured or listed twice", h)
		}
	}
	units := map[string]bool{}
	groups := map[string]bool{}
	for _, g := range c.Groups {
		if g.Name == "" || strings.ContainsAny(g.Name, "/ ") || groups[g.Name] {
			return fmt.Errorf("amf: group %q: empty, duplicate or contains '/' or space", g.Name)
		}
		groups[g.Name] = true
		switch g.Model {
		case TwoN, NPlusM, NWayActive, NoRedundancy:
		default:
			return fmt.Errorf("amf: group %s: unknown redundancy model %q", g.Name, g.Model)
		}
		if len(g.Units) == 0 {
			return fmt.Errorf("amf: group %s: no units", g.Name)
		}
		nodes := map[uint8]bool{}
		for _, u := range g.Units {
			if u.Name == "" || strings.ContainsAny(u.Name, "/ ") || units[u.Name] {
				return fmt.Errorf("amf: group %s: unit %q: empty, duplicate or contains '/' or space", g.Name, u.Name)
			}
			units[u.Name] = true
			if !slices.Contains(c.Slots, u.Node) {
				return fmt.Errorf("amf: group %s: unit %s on slot %d, which is not configured", g.Name, u.Name, u.Node)
			}
			if nodes[u.Node] {
				return fmt.Errorf("amf: group %s: two units on slot %d", g.Name, u.Node)
			}
			nodes[u.Node] = true
		}
		seen := map[string]bool{}
		for _, si := range g.Instances {
			if si == "" || strings.ContainsAny(si, "/ ") || seen[si] {
				return fmt.Errorf("amf: group %s: instance %q: empty, duplicate or contains '/' or space", g.Name, si)
			}
			seen[si] = true
		}
		if g.PerUnit < 0 {
			return fmt.Errorf("amf: group %s: per_unit %d", g.Name, g.PerUnit)
		}
	}
	return nil
}

// assignment is one exclusive assignment guarded by a lease: a 2N group
// as a whole, or one instance of an N+M or no-redundancy group.
type assignment struct {
	key   string
	group *ServiceGroup
	si    string        // "" for a whole 2N group
	order []ServiceUnit // succession order
}

func groupKey(g string) string        { return "sg/" + g }
func instanceKey(g, si string) string { return "si/" + g + "/" + si }
func nodeKey(slot uint8) string       { return fmt.Sprintf("node/%d", slot) }

// assignments lists the exclusive assignments of the configuration.
func assignments(c *Config) []*assignment {
	var as []*assignment
	for gi := range c.Groups {
		g := &c.Groups[gi]
		switch g.Model {
		case TwoN:
			as = append(as, &assignment{key: groupKey(g.Name), group: g, order: g.Units})
		case NPlusM, NoRedundancy:
			for i, si := range g.Instances {
				n := len(g.Units)
				order := append(slices.Clone(g.Units[i%n:]), g.Units[:i%n]...)
				as = append(as, &assignment{key: instanceKey(g.Name, si), group: g, si: si, order: order})
			}
		}
	}
	return as
}

// channelPeers lists the slots at the other end of slot x's backplane
// channels: for a hub the other hubs and every other slot, for any other
// slot the hubs. Nil without hubs configured.
func (c *Config) channelPeers(x uint8) []uint8 {
	if len(c.Hubs) == 0 {
		return nil
	}
	if !slices.Contains(c.Hubs, x) {
		return slices.Clone(c.Hubs)
	}
	var ps []uint8
	for _, s := range c.Slots {
		if s != x {
			ps = append(ps, s)
		}
	}
	return ps
}
