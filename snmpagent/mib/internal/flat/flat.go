// Package flat serves a read-only MIB subtree from a list of instances
// built per request from one consistent snapshot of the data: the list is
// sorted once, so GET and GETNEXT are binary searches and a walk sees
// instances in lexicographic order by construction.
package flat

import (
	"slices"

	"github.com/cgoa/cgoa/snmpagent"
)

// Entry is one instance and its value.
type Entry struct {
	OID   snmpagent.OID
	Value snmpagent.Value
}

// Builder accumulates the entries of one snapshot.
type Builder struct{ entries []Entry }

// Add appends prefix.sub... = v.
func (b *Builder) Add(prefix snmpagent.OID, v snmpagent.Value, sub ...uint32) {
	b.entries = append(b.entries, Entry{prefix.Append(sub...), v})
}

// Handler serves the entries Build returns; Build is called once per
// Get/Next and must return instances under the registered prefix.
type Handler struct {
	Build func(*Builder)
}

func (h Handler) entries() []Entry {
	var b Builder
	h.Build(&b)
	slices.SortFunc(b.entries, func(x, y Entry) int { return x.OID.Compare(y.OID) })
	return b.entries
}

func (h Handler) Get(oid snmpagent.OID) (snmpagent.Value, bool) {
	es := h.entries()
	i, ok := slices.BinarySearchFunc(es, oid, func(e Entry, o snmpagent.OID) int { return e.OID.Compare(o) })
	if !ok {
		return snmpagent.Value{}, false
	}
	return es[i].Value, true
}

func (h Handler) Next(oid snmpagent.OID) (snmpagent.OID, snmpagent.Value, bool) {
	es := h.entries()
	i, found := slices.BinarySearchFunc(es, oid, func(e Entry, o snmpagent.OID) int { return e.OID.Compare(o) })
	if found {
		i++
	}
	if i >= len(es) {
		return nil, snmpagent.Value{}, false
	}
	return es[i].OID, es[i].Value, true
}
