package ifmib

import (
	"fmt"
	"slices"
	"time"
)

// State is what IF-MIB must carry to the standby: the ifIndex
// assignment, the SET-able columns, ifLastChange and the served counter
// values (so none goes backward after the failover).
type State struct {
	Ports     []PortState `json:"ports"`
	NextIndex uint32      `json:"next_index"`
	// TableLastChange is ifTableLastChange in sysUpTime ticks.
	TableLastChange uint32 `json:"table_last_change"`
}

// PortState is one port ever seen, present or not.
type PortState struct {
	Name       string   `json:"name"`
	Index      uint32   `json:"ifindex"`
	Alias      string   `json:"alias,omitempty"`
	LinkTraps  bool     `json:"link_traps"`
	LastChange uint32   `json:"last_change"`
	Counters   Counters `json:"counters"`
}

// Export samples the source (unless the last sample is fresh) and
// returns the module's failover state.
func (i *Interfaces) Export() State {
	_ = i.sample(false) // on error the last sample is exported
	i.mu.Lock()
	defer i.mu.Unlock()
	st := State{NextIndex: i.next, TableLastChange: i.tableLastChange}
	for _, p := range i.ports {
		st.Ports = append(st.Ports, PortState{Name: p.name, Index: p.index, Alias: p.alias, LinkTraps: p.linkTraps,
			LastChange: p.lastChange, Counters: p.served})
	}
	slices.SortFunc(st.Ports, func(a, b PortState) int { return int(a.Index) - int(b.Index) })
	return st
}

// Import takes over st, exported by the previous active blade: its ifIndex
// assignment wins (ports only this blade knew get fresh indexes after
// it), and served counters become at least the imported values, growing
// from this blade's next sample.
func (i *Interfaces) Import(st State) error {
	names, idx := map[string]bool{}, map[uint32]bool{}
	next := st.NextIndex
	for _, p := range st.Ports {
		switch {
		case p.Name == "" || p.Index == 0:
			return fmt.Errorf("ifmib: import: port %q ifIndex %d: name and index required", p.Name, p.Index)
		case names[p.Name]:
			return fmt.Errorf("ifmib: import: port %q twice", p.Name)
		case idx[p.Index]:
			return fmt.Errorf("ifmib: import: ifIndex %d twice", p.Index)
		case len(p.Alias) > maxAlias:
			return fmt.Errorf("ifmib: import: port %q: alias of %d octets", p.Name, len(p.Alias))
		case p.Index > 1<<31-1:
			return fmt.Errorf("ifmib: import: port %q: ifIndex %d out of range", p.Name, p.Index)
		}
		names[p.Name], idx[p.Index] = true, true
		next = max(next, p.Index+1)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	old := i.ports
	i.ports = map[string]*port{}
	for _, ps := range st.Ports {
		p := &port{name: ps.Name, index: ps.Index, alias: ps.Alias, linkTraps: ps.LinkTraps, lastChange: ps.LastChange, served: ps.Counters}
		if o := old[ps.Name]; o != nil {
			// This blade served the port already: keep its source
			// baseline and never serve less than either value.
			p.present, p.up, p.hw, p.speed, p.raw, p.haveRaw = o.present, o.up, o.hw, o.speed, o.raw, o.haveRaw
			s, os := p.served.fields(), o.served.fields()
			for k := range s {
				*s[k] = max(*s[k], *os[k])
			}
		}
		i.ports[ps.Name] = p
	}
	for name, o := range old {
		if i.ports[name] == nil {
			o.index = next
			next++
			i.ports[name] = o
		}
	}
	i.next = next
	i.tableLastChange = max(i.tableLastChange, st.TableLastChange)
	i.rebuild()
	i.sampled = time.Time{} // stale: the next request samples
	return nil
}
