package snmpagent

import (
	"bytes"
	"fmt"
	"slices"
	"time"
)

// State is what must survive a failover: the standby imports the active's
// last exported State so that a v3 manager carries on without re-discovery
// (same engine ID and boots, engineTime continuing) and no counter goes
// backward. It holds secrets (passphrases) and must only be checkpointed
// on the shelf's authenticated HA channel.
type State struct {
	EngineID    []byte
	EngineBoots uint32
	EngineTime  uint32        // snmpEngineTime at SavedAt
	UpTime      time.Duration // sysUpTime at SavedAt
	SavedAt     time.Time

	Counters Counters

	SysContact, SysName, SysLocation string
	EnableAuthenTraps                bool

	Communities []Community
	Users       []User
	Views       []ViewFamily
	Members     []GroupMember
	Access      []Access
	Targets     []Target
}

// Export snapshots the agent's failover state.
func (a *Agent) Export() State {
	boots, et := a.engineTime()
	a.mu.RLock()
	st := State{
		EngineID:    bytes.Clone(a.engineID),
		EngineBoots: boots,
		EngineTime:  et,
		SavedAt:     a.clock.Now(),
	}
	st.UpTime = st.SavedAt.Sub(a.upBase)
	for _, c := range a.communities {
		st.Communities = append(st.Communities, *c)
	}
	for _, u := range a.users {
		st.Users = append(st.Users, u.User)
	}
	st.Targets = append(st.Targets, a.targets...)
	a.mu.RUnlock()
	slices.SortFunc(st.Communities, func(x, y Community) int { return cmpString(x.Name, y.Name) })
	slices.SortFunc(st.Users, func(x, y User) int { return cmpString(x.Name, y.Name) })
	st.Counters = a.cnt.snapshot()
	a.sys.mu.Lock()
	st.SysContact, st.SysName, st.SysLocation = a.sys.contact, a.sys.name, a.sys.location
	a.sys.mu.Unlock()
	st.EnableAuthenTraps = a.sys.enableAuthenTraps.Load()
	v := a.vacm.export()
	for _, f := range v.Views {
		if f.View != allView {
			st.Views = append(st.Views, f)
		}
	}
	slices.SortStableFunc(st.Views, func(x, y ViewFamily) int { return cmpString(x.View, y.View) })
	st.Members, st.Access = v.Members, v.Access
	return st
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Import replaces the agent's failover state with st. Engine time and
// sysUpTime continue from st (plus the time since st was saved); counters
// are raised to at least st's values so none goes backward. Configuration
// (communities, users, VACM, targets) is replaced.
func (a *Agent) Import(st State) error {
	if len(st.EngineID) < 5 || len(st.EngineID) > 32 {
		return fmt.Errorf("snmpagent: import: engine ID of %d octets", len(st.EngineID))
	}
	users := map[string]*usmUser{}
	for _, u := range st.Users {
		uu, err := localize(u, st.EngineID)
		if err != nil {
			return fmt.Errorf("snmpagent: import: %w", err)
		}
		users[u.Name] = uu
	}
	vacm := newVACM()
	_ = vacm.AddView(ViewFamily{View: allView, Subtree: OID{0}})
	_ = vacm.AddView(ViewFamily{View: allView, Subtree: OID{1}})
	_ = vacm.AddView(ViewFamily{View: allView, Subtree: OID{2}})
	for _, f := range st.Views {
		if err := vacm.AddView(f); err != nil {
			return fmt.Errorf("snmpagent: import: %w", err)
		}
	}
	for _, m := range st.Members {
		if err := vacm.AddGroupMember(m); err != nil {
			return fmt.Errorf("snmpagent: import: %w", err)
		}
	}
	for _, ac := range st.Access {
		if err := vacm.AddAccess(ac); err != nil {
			return fmt.Errorf("snmpagent: import: %w", err)
		}
	}
	comms := map[string]*Community{}
	for _, c := range st.Communities {
		c := c
		if c.View != "" && vacm.views[c.View] == nil {
			return fmt.Errorf("snmpagent: import: community %q: unknown view %q", c.Name, c.View)
		}
		comms[c.Name] = &c
	}
	now := a.clock.Now()
	since := max(now.Sub(st.SavedAt), 0)
	a.mu.Lock()
	a.engineID = bytes.Clone(st.EngineID)
	a.boots = max(st.EngineBoots, 1)
	a.timeBase = now.Add(-(time.Duration(st.EngineTime)*time.Second + since))
	a.upBase = now.Add(-(st.UpTime + since))
	a.users = users
	a.communities = comms
	a.targets = append([]Target(nil), st.Targets...)
	a.mu.Unlock()
	a.vacm.replace(vacm)
	a.cnt.raise(st.Counters)
	a.sys.mu.Lock()
	a.sys.contact, a.sys.name, a.sys.location = st.SysContact, st.SysName, st.SysLocation
	a.sys.mu.Unlock()
	a.sys.enableAuthenTraps.Store(st.EnableAuthenTraps)
	return nil
}
