package snmpagent

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/gosnmp/gosnmp"
)

// Handler serves the instances under one registered subtree.
//
// Get returns the value of the exact instance oid; ok=false means there is
// no such instance. Next returns the first instance in the subtree that is
// lexicographically greater than oid (oid may lie before the subtree);
// ok=false means the subtree has nothing after oid. Handlers are called
// concurrently and guard their own state.
type Handler interface {
	Get(oid OID) (v Value, ok bool)
	Next(oid OID) (next OID, v Value, ok bool)
}

// Setter is implemented by handlers with writable instances. A SET request
// is all-or-nothing: the agent calls TestSet for every varbind first (no
// side effects allowed), then CommitSet for each in order. If a commit
// fails, the agent calls the undo functions of the commits already done,
// in reverse order. SETs are serialized by the agent. Values passed in are
// owned by the handler (octets are copies of the request buffer).
type Setter interface {
	TestSet(oid OID, v Value) gosnmp.SNMPError
	CommitSet(oid OID, v Value) (undo func() error, status gosnmp.SNMPError)
}

type registration struct {
	prefix OID
	h      Handler
}

// Tree is the agent's registrable MIB: modules register non-overlapping
// subtrees, each served by a Handler. Reads are lock-free.
type Tree struct {
	mu   sync.Mutex // serializes writers of regs
	regs atomic.Pointer[[]registration]
}

// NewTree returns an empty tree.
func NewTree() *Tree {
	t := &Tree{}
	t.regs.Store(&[]registration{})
	return t
}

// Register adds h for the subtree prefix. Subtrees may not overlap.
func (t *Tree) Register(prefix OID, h Handler) error {
	if len(prefix) == 0 || h == nil {
		return fmt.Errorf("snmpagent: register %v: empty prefix or nil handler", prefix)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.regs.Load()
	for _, r := range old {
		if prefix.HasPrefix(r.prefix) || r.prefix.HasPrefix(prefix) {
			return fmt.Errorf("snmpagent: register %v: overlaps registered subtree %v", prefix, r.prefix)
		}
	}
	regs := append(slices.Clone(old), registration{prefix.Clone(), h})
	slices.SortFunc(regs, func(a, b registration) int { return a.prefix.Compare(b.prefix) })
	t.regs.Store(&regs)
	return nil
}

// Unregister removes the subtree registered at exactly prefix.
func (t *Tree) Unregister(prefix OID) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.regs.Load()
	i := slices.IndexFunc(old, func(r registration) bool { return r.prefix.Compare(prefix) == 0 })
	if i < 0 {
		return false
	}
	regs := slices.Delete(slices.Clone(old), i, i+1)
	t.regs.Store(&regs)
	return true
}

// find returns the registration whose subtree holds oid, and the index of
// the first registration at or after oid.
func (t *Tree) find(oid OID) (regs []registration, holder int, start int) {
	regs = *t.regs.Load()
	j, _ := slices.BinarySearchFunc(regs, oid, func(r registration, o OID) int { return r.prefix.Compare(o) })
	// regs[j-1].prefix <= oid < regs[j].prefix, or regs[j].prefix == oid.
	if j < len(regs) && oid.HasPrefix(regs[j].prefix) {
		return regs, j, j
	}
	if j > 0 && oid.HasPrefix(regs[j-1].prefix) {
		return regs, j - 1, j - 1
	}
	return regs, -1, j
}

// Get returns the value of instance oid or a noSuchObject/noSuchInstance
// exception value.
func (t *Tree) Get(oid OID) Value {
	regs, i, _ := t.find(oid)
	if i < 0 {
		return exception(gosnmp.NoSuchObject)
	}
	v, ok := regs[i].h.Get(oid)
	if !ok {
		return exception(gosnmp.NoSuchInstance)
	}
	return v
}

// Next returns the first instance after oid accepted by allow (nil allows
// all), walking the registered subtrees in lexicographic order.
func (t *Tree) Next(oid OID, allow func(OID, Value) bool) (OID, Value, bool) {
	regs, _, start := t.find(oid)
	for i := start; i < len(regs); i++ {
		cur := oid
		for {
			n, v, ok := regs[i].h.Next(cur)
			if !ok {
				break
			}
			if n.Compare(cur) <= 0 || !n.HasPrefix(regs[i].prefix) {
				// A handler that does not advance would loop forever.
				break
			}
			if allow == nil || allow(n, v) {
				return n, v, true
			}
			cur = n
		}
	}
	return nil, Value{}, false
}

// setter returns the Setter serving oid, or why there is none.
func (t *Tree) setter(oid OID) (Setter, gosnmp.SNMPError) {
	regs, i, _ := t.find(oid)
	if i < 0 {
		return nil, gosnmp.NoCreation
	}
	s, ok := regs[i].h.(Setter)
	if !ok {
		return nil, gosnmp.NotWritable
	}
	return s, gosnmp.NoError
}

// Scalar is one scalar object (instance .0) of a ScalarGroup.
type Scalar struct {
	Get func() Value
	// Set is nil for read-only scalars. Check validates without side
	// effects; Set applies and returns the previous value for undo.
	Check func(v Value) gosnmp.SNMPError
	Set   func(v Value) (old Value)
	// Type is the SET type checked before Check; 0 means Get's type.
	Type gosnmp.Asn1BER
}

// ScalarGroup serves scalars prefix.N.0 for the sub-identifiers N given,
// and optionally nested subtrees prefix.M (e.g. a table beside the
// scalars of a MIB group, like sysORTable in system or ifTable in
// interfaces) served by their own handlers.
type ScalarGroup struct {
	prefix OID
	ids    []uint32 // scalars and subtrees, ascending
	items  map[uint32]Scalar
	insts  map[uint32]OID // prefix.N.0, shared: callers must not modify
	subs   map[uint32]Handler
	ends   map[uint32]OID // prefix.(M+1): everything in subtree M is below
}

// NewScalarGroup builds a group of scalars under prefix.
func NewScalarGroup(prefix OID, items map[uint32]Scalar) *ScalarGroup {
	g := &ScalarGroup{prefix: prefix.Clone(), items: items, insts: map[uint32]OID{}, subs: map[uint32]Handler{}, ends: map[uint32]OID{}}
	for id := range items {
		g.ids = append(g.ids, id)
		g.insts[id] = g.prefix.Append(id, 0)
	}
	slices.Sort(g.ids)
	return g
}

// WithSubtree serves prefix.id by h. id must not also be a scalar.
func (g *ScalarGroup) WithSubtree(id uint32, h Handler) *ScalarGroup {
	if _, dup := g.items[id]; !dup {
		if _, dup := g.subs[id]; !dup {
			g.ids = append(g.ids, id)
			slices.Sort(g.ids)
		}
		g.subs[id] = h
		g.ends[id] = g.prefix.Append(id + 1)
	}
	return g
}

func (g *ScalarGroup) scalar(oid OID) (Scalar, bool) {
	if len(oid) != len(g.prefix)+2 || oid[len(oid)-1] != 0 || !oid.HasPrefix(g.prefix) {
		return Scalar{}, false
	}
	s, ok := g.items[oid[len(g.prefix)]]
	return s, ok
}

func (g *ScalarGroup) sub(oid OID) Handler {
	if len(oid) <= len(g.prefix) || !oid.HasPrefix(g.prefix) {
		return nil
	}
	return g.subs[oid[len(g.prefix)]]
}

func (g *ScalarGroup) Get(oid OID) (Value, bool) {
	if h := g.sub(oid); h != nil {
		return h.Get(oid)
	}
	s, ok := g.scalar(oid)
	if !ok {
		return Value{}, false
	}
	return s.Get(), true
}

func (g *ScalarGroup) Next(oid OID) (OID, Value, bool) {
	for _, id := range g.ids {
		if h := g.subs[id]; h != nil {
			if oid.Compare(g.ends[id]) >= 0 {
				continue
			}
			if n, v, ok := h.Next(oid); ok {
				return n, v, true
			}
			continue
		}
		if inst := g.insts[id]; inst.Compare(oid) > 0 {
			return inst, g.items[id].Get(), true
		}
	}
	return nil, Value{}, false
}

func (g *ScalarGroup) TestSet(oid OID, v Value) gosnmp.SNMPError {
	if h := g.sub(oid); h != nil {
		if s, ok := h.(Setter); ok {
			return s.TestSet(oid, v)
		}
		return gosnmp.NotWritable
	}
	s, ok := g.scalar(oid)
	if !ok {
		return gosnmp.NoCreation
	}
	if s.Set == nil {
		return gosnmp.NotWritable
	}
	want := s.Type
	if want == 0 {
		want = s.Get().Type
	}
	if v.Type != want {
		return gosnmp.WrongType
	}
	if s.Check != nil {
		return s.Check(v)
	}
	return gosnmp.NoError
}

func (g *ScalarGroup) CommitSet(oid OID, v Value) (func() error, gosnmp.SNMPError) {
	if h := g.sub(oid); h != nil {
		if s, ok := h.(Setter); ok {
			return s.CommitSet(oid, v)
		}
		return nil, gosnmp.CommitFailed
	}
	s, ok := g.scalar(oid)
	if !ok || s.Set == nil {
		return nil, gosnmp.CommitFailed
	}
	old := s.Set(v)
	return func() error { s.Set(old); return nil }, gosnmp.NoError
}

// Table serves a conceptual table registered at its entry OID
// (e.g. sysOREntry); instances are entry.column.index.
type Table struct {
	entry   OID
	columns []uint32
	// Rows returns the row indexes in ascending order.
	rows func() []OID
	// Cell returns the value of one cell.
	cell func(col uint32, index OID) (Value, bool)
	// test and commit make cells writable (see WithSet).
	test   func(col uint32, index OID, v Value) gosnmp.SNMPError
	commit func(col uint32, index OID, v Value) (undo func() error, st gosnmp.SNMPError)
}

// WithSet makes the table's cells writable: test validates one cell
// without side effects (return NotWritable for read-only columns,
// NoCreation for rows that cannot be created); commit applies it and
// returns how to undo it. See Setter for the all-or-nothing protocol.
func (t *Table) WithSet(
	test func(col uint32, index OID, v Value) gosnmp.SNMPError,
	commit func(col uint32, index OID, v Value) (undo func() error, st gosnmp.SNMPError),
) *Table {
	t.test, t.commit = test, commit
	return t
}

func (t *Table) split(oid OID) (uint32, OID, bool) {
	if len(oid) < len(t.entry)+2 || !oid.HasPrefix(t.entry) {
		return 0, nil, false
	}
	return oid[len(t.entry)], oid[len(t.entry)+1:], true
}

func (t *Table) TestSet(oid OID, v Value) gosnmp.SNMPError {
	col, idx, ok := t.split(oid)
	switch {
	case !ok:
		return gosnmp.NoCreation
	case t.test == nil:
		return gosnmp.NotWritable
	}
	return t.test(col, idx, v)
}

func (t *Table) CommitSet(oid OID, v Value) (func() error, gosnmp.SNMPError) {
	col, idx, ok := t.split(oid)
	if !ok || t.commit == nil {
		return nil, gosnmp.CommitFailed
	}
	return t.commit(col, idx, v)
}

// NewTable builds a read-only table. columns are the accessible column
// numbers; rows returns the sorted row indexes; cell reads one cell.
func NewTable(entry OID, columns []uint32, rows func() []OID, cell func(col uint32, index OID) (Value, bool)) *Table {
	cols := slices.Clone(columns)
	slices.Sort(cols)
	return &Table{entry: entry.Clone(), columns: cols, rows: rows, cell: cell}
}

func (t *Table) Get(oid OID) (Value, bool) {
	if len(oid) < len(t.entry)+2 || !oid.HasPrefix(t.entry) {
		return Value{}, false
	}
	col := oid[len(t.entry)]
	if _, found := slices.BinarySearch(t.columns, col); !found {
		return Value{}, false
	}
	return t.cell(col, oid[len(t.entry)+1:])
}

func (t *Table) Next(oid OID) (OID, Value, bool) {
	var rel OID
	if oid.HasPrefix(t.entry) {
		rel = oid[len(t.entry):]
	} else if oid.Compare(t.entry) > 0 {
		return nil, Value{}, false
	}
	rows := t.rows()
	for _, col := range t.columns {
		var after OID // rows must be greater than this index
		strict := false
		if len(rel) > 0 {
			if col < rel[0] {
				continue
			}
			if col == rel[0] {
				after, strict = rel[1:], true
			}
		}
		for _, idx := range rows {
			if strict && idx.Compare(after) <= 0 {
				continue
			}
			if v, ok := t.cell(col, idx); ok {
				n := make(OID, 0, len(t.entry)+1+len(idx))
				n = append(append(append(n, t.entry...), col), idx...)
				return n, v, true
			}
		}
	}
	return nil, Value{}, false
}
