package snmpagent

import (
	"fmt"
	"slices"
	"sync"

	"github.com/gosnmp/gosnmp"
)

// SecurityModel numbers (RFC 3411 SnmpSecurityModel).
type SecurityModel int

const (
	ModelAny SecurityModel = 0
	ModelV1  SecurityModel = 1
	ModelV2c SecurityModel = 2
	ModelUSM SecurityModel = 3
)

// SecurityLevel orders noAuthNoPriv < authNoPriv < authPriv.
type SecurityLevel int

const (
	NoAuthNoPriv SecurityLevel = 1
	AuthNoPriv   SecurityLevel = 2
	AuthPriv     SecurityLevel = 3
)

func levelOf(flags gosnmp.SnmpV3MsgFlags) SecurityLevel {
	switch flags & gosnmp.AuthPriv {
	case gosnmp.AuthPriv:
		return AuthPriv
	case gosnmp.AuthNoPriv:
		return AuthNoPriv
	}
	return NoAuthNoPriv
}

// ViewFamily is one vacmViewTreeFamilyEntry: a subtree, an optional mask
// (bit i, MSB first, set = sub-identifier i must match; missing bits are
// 1) and whether the family is included or excluded from the view.
type ViewFamily struct {
	View     string
	Subtree  OID
	Mask     []byte
	Excluded bool
}

func (f *ViewFamily) matches(oid OID) bool {
	if len(oid) < len(f.Subtree) {
		return false
	}
	for i, sub := range f.Subtree {
		if byteI := i / 8; byteI < len(f.Mask) && f.Mask[byteI]&(0x80>>(i%8)) == 0 {
			continue // wildcard
		}
		if oid[i] != sub {
			return false
		}
	}
	return true
}

// View is a MIB view: the set of families with the same view name.
type View struct {
	Name     string
	families []ViewFamily
}

// Includes reports whether oid is in the view (RFC 3415 3.2: the most
// specific matching family decides; a nil view includes nothing).
func (v *View) Includes(oid OID) bool {
	if v == nil {
		return false
	}
	var best *ViewFamily
	for i := range v.families {
		f := &v.families[i]
		if !f.matches(oid) {
			continue
		}
		if best == nil || len(f.Subtree) > len(best.Subtree) ||
			(len(f.Subtree) == len(best.Subtree) && f.Subtree.Compare(best.Subtree) > 0) {
			best = f
		}
	}
	return best != nil && !best.Excluded
}

// GroupMember maps a security name under a model to a VACM group
// (vacmSecurityToGroupTable).
type GroupMember struct {
	Model        SecurityModel
	SecurityName string
	Group        string
}

// Access grants a group views at a minimum security level
// (vacmAccessTable, default context only). Empty view names grant nothing.
type Access struct {
	Group  string
	Model  SecurityModel // ModelAny matches every model
	Level  SecurityLevel // minimum level
	Read   string
	Write  string
	Notify string
}

// VACM holds views, groups and access entries.
type VACM struct {
	mu      sync.RWMutex
	views   map[string]*View
	groups  map[groupKey]string
	access  []Access
	members []GroupMember
}

type groupKey struct {
	model SecurityModel
	name  string
}

func newVACM() *VACM {
	return &VACM{views: map[string]*View{}, groups: map[groupKey]string{}}
}

// AddView adds a family to the named view.
func (m *VACM) AddView(f ViewFamily) error {
	if f.View == "" || len(f.Subtree) == 0 {
		return fmt.Errorf("snmpagent: view family %q %v: empty name or subtree", f.View, f.Subtree)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	v := m.views[f.View]
	if v == nil {
		v = &View{Name: f.View}
	}
	// Copy on write: requests read views without the lock.
	nv := &View{Name: f.View, families: append(append([]ViewFamily(nil), v.families...), ViewFamily{
		View: f.View, Subtree: f.Subtree.Clone(), Mask: append([]byte(nil), f.Mask...), Excluded: f.Excluded,
	})}
	m.views[f.View] = nv
	return nil
}

// AddGroupMember puts a security name into a group.
func (m *VACM) AddGroupMember(g GroupMember) error {
	if g.Group == "" || g.SecurityName == "" || g.Model == ModelAny {
		return fmt.Errorf("snmpagent: group member %+v: empty group, name or model", g)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := groupKey{g.Model, g.SecurityName}
	if _, ok := m.groups[k]; !ok {
		m.members = append(m.members, g)
	} else {
		for i := range m.members {
			if m.members[i].Model == g.Model && m.members[i].SecurityName == g.SecurityName {
				m.members[i] = g
			}
		}
	}
	m.groups[k] = g.Group
	return nil
}

// RemoveGroupMember takes a security name out of its group.
func (m *VACM) RemoveGroupMember(model SecurityModel, name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.groups, groupKey{model, name})
	m.members = slices.DeleteFunc(m.members, func(g GroupMember) bool { return g.Model == model && g.SecurityName == name })
}

// AddAccess adds an access entry.
func (m *VACM) AddAccess(a Access) error {
	if a.Group == "" || a.Level < NoAuthNoPriv || a.Level > AuthPriv {
		return fmt.Errorf("snmpagent: access %+v: empty group or bad level", a)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.access = append(m.access, a)
	return nil
}

// View returns the named view or nil.
func (m *VACM) View(name string) *View {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.views[name]
}

// resolve returns the read, write and notify views of a principal, or
// ok=false when it has no group or no access entry (RFC 3415 noGroupName,
// noAccessEntry).
func (m *VACM) resolve(model SecurityModel, name string, level SecurityLevel) (read, write, notify *View, ok bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	group, found := m.groups[groupKey{model, name}]
	if !found {
		return nil, nil, nil, false
	}
	var best *Access
	for i := range m.access {
		a := &m.access[i]
		if a.Group != group || a.Level > level || (a.Model != ModelAny && a.Model != model) {
			continue
		}
		// Prefer an exact model, then the highest level (RFC 3415 4).
		if best == nil || (best.Model == ModelAny && a.Model != ModelAny) ||
			((best.Model == ModelAny) == (a.Model == ModelAny) && a.Level > best.Level) {
			best = a
		}
	}
	if best == nil {
		return nil, nil, nil, false
	}
	return m.views[best.Read], m.views[best.Write], m.views[best.Notify], true
}

type vacmState struct {
	Views   []ViewFamily
	Members []GroupMember
	Access  []Access
}

func (m *VACM) export() vacmState {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var s vacmState
	for _, v := range m.views {
		s.Views = append(s.Views, v.families...)
	}
	s.Members = append(s.Members, m.members...)
	s.Access = append(s.Access, m.access...)
	return s
}

// replace takes over the tables of n.
func (m *VACM) replace(n *VACM) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.views, m.groups, m.access, m.members = n.views, n.groups, n.access, n.members
}
