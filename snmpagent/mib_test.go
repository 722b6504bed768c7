package snmpagent

import (
	"errors"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
)

func TestParseOID(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		err  bool
	}{
		{"1.3.6.1", ".1.3.6.1", false},
		{".1.3.6.1.4294967295", ".1.3.6.1.4294967295", false},
		{"", "", true},
		{"1..3", "", true},
		{"1.3.", "", true},
		{"1.x", "", true},
		{"1.4294967296", "", true},
	} {
		o, err := ParseOID(tc.in)
		if (err != nil) != tc.err || (err == nil && o.String() != tc.want) {
			t.Errorf("ParseOID(%q) = %v, %v; want %q, err %v", tc.in, o, err, tc.want, tc.err)
		}
	}
	if c := MustOID("1.3.6").Compare(MustOID("1.3.6.0")); c != -1 {
		t.Errorf("Compare(1.3.6, 1.3.6.0) = %d, want -1", c)
	}
	if c := MustOID("1.3.7").Compare(MustOID("1.3.6.9")); c != 1 {
		t.Errorf("Compare(1.3.7, 1.3.6.9) = %d, want 1", c)
	}
}

// walk returns every instance of the tree in GetNext order.
func walk(tr *Tree, from OID) []string {
	var r []string
	for cur := from; ; {
		n, _, ok := tr.Next(cur, nil)
		if !ok {
			return r
		}
		r = append(r, n.String())
		cur = n
	}
}

func TestTreeWalkOrder(t *testing.T) {
	tr := NewTree()
	rows := []OID{{1}, {2, 5}, {10}}
	tbl := NewTable(MustOID("1.3.6.1.9.1"), []uint32{3, 2},
		func() []OID { return rows },
		func(col uint32, idx OID) (Value, bool) {
			if col == 3 && idx.Compare(OID{2, 5}) == 0 {
				return Value{}, false // a hole
			}
			return Integer(int32(col)), true
		})
	sg := NewScalarGroup(MustOID("1.3.6.1.8"), map[uint32]Scalar{
		2: {Get: func() Value { return Integer(2) }},
		1: {Get: func() Value { return Integer(1) }},
	})
	if err := tr.Register(MustOID("1.3.6.1.9.1"), tbl); err != nil {
		t.Fatal(err)
	}
	if err := tr.Register(MustOID("1.3.6.1.8"), sg); err != nil {
		t.Fatal(err)
	}
	if err := tr.Register(MustOID("1.3.6.1.8.1"), sg); err == nil {
		t.Errorf("Register of an overlapping subtree = nil, want error")
	}
	got := walk(tr, MustOID("1"))
	want := []string{".1.3.6.1.8.1.0", ".1.3.6.1.8.2.0",
		".1.3.6.1.9.1.2.1", ".1.3.6.1.9.1.2.2.5", ".1.3.6.1.9.1.2.10",
		".1.3.6.1.9.1.3.1", ".1.3.6.1.9.1.3.10"}
	if len(got) != len(want) {
		t.Fatalf("walk = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("walk = %v, want %v", got, want)
		}
	}
	// Starting between instances and inside a row index.
	if n, _, _ := tr.Next(MustOID("1.3.6.1.9.1.2.2"), nil); n.String() != ".1.3.6.1.9.1.2.2.5" {
		t.Errorf("Next(...2.2) = %v, want .1.3.6.1.9.1.2.2.5", n)
	}
	if v := tr.Get(MustOID("1.3.6.1.9.1.3.2.5")); v.Type != gosnmp.NoSuchInstance {
		t.Errorf("Get(hole) = %v, want noSuchInstance", v)
	}
	if v := tr.Get(MustOID("1.3.6.1.7")); v.Type != gosnmp.NoSuchObject {
		t.Errorf("Get(unregistered) = %v, want noSuchObject", v)
	}
	if !tr.Unregister(MustOID("1.3.6.1.8")) || len(walk(tr, MustOID("1"))) != 5 {
		t.Errorf("after Unregister the scalars are still walked")
	}
}

func TestViewMask(t *testing.T) {
	v := newVACM()
	// ifEntry columns of any row, but only for ifIndex 3 via a mask on
	// the column position (1.3.6.1.2.1.2.2.1.*.3), and ifDescr excluded.
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(v.AddView(ViewFamily{View: "v", Subtree: MustOID("1.3.6.1.2.1.2.2.1.1.3"), Mask: []byte{0xff, 0xbf}}))
	must(v.AddView(ViewFamily{View: "v", Subtree: MustOID("1.3.6.1.2.1.2.2.1.2.3"), Excluded: true}))
	must(v.AddView(ViewFamily{View: "v", Subtree: MustOID("1.3.6.1.2.1.1")}))
	view := v.View("v")
	for _, tc := range []struct {
		oid  string
		want bool
	}{
		{"1.3.6.1.2.1.2.2.1.1.3", true},
		{"1.3.6.1.2.1.2.2.1.10.3", true},
		{"1.3.6.1.2.1.2.2.1.10.4", false},
		{"1.3.6.1.2.1.2.2.1.2.3", false}, // same length: the greater subtree (excluded) wins
		{"1.3.6.1.2.1.1.5.0", true},
		{"1.3.6.1.2.1.11.1.0", false},
	} {
		if got := view.Includes(MustOID(tc.oid)); got != tc.want {
			t.Errorf("Includes(%s) = %v, want %v", tc.oid, got, tc.want)
		}
	}
	must(v.AddGroupMember(GroupMember{Model: ModelUSM, SecurityName: "u", Group: "g"}))
	must(v.AddAccess(Access{Group: "g", Level: AuthNoPriv, Read: "v"}))
	must(v.AddAccess(Access{Group: "g", Model: ModelUSM, Level: AuthPriv, Read: "v", Write: "v"}))
	if _, w, _, ok := v.resolve(ModelUSM, "u", AuthPriv); !ok || w == nil {
		t.Errorf("resolve(authPriv) write view = %v, %v; want the authPriv entry", w, ok)
	}
	if r, w, _, ok := v.resolve(ModelUSM, "u", AuthNoPriv); !ok || r == nil || w != nil {
		t.Errorf("resolve(authNoPriv) = %v, %v, %v; want read only", r, w, ok)
	}
	if _, _, _, ok := v.resolve(ModelUSM, "u", NoAuthNoPriv); ok {
		t.Errorf("resolve(noAuthNoPriv) ok, want no access entry")
	}
	if _, _, _, ok := v.resolve(ModelUSM, "stranger", AuthPriv); ok {
		t.Errorf("resolve(unknown name) ok, want no group")
	}
}

// flaky is a writable scalar whose commit can be made to fail.
type flaky struct {
	vals     map[uint32]int
	failAt   uint32
	undoFail bool
}

func (f *flaky) Get(oid OID) (Value, bool) {
	v, ok := f.vals[oid[len(oid)-1]]
	return Integer(int32(v)), ok
}
func (f *flaky) Next(oid OID) (OID, Value, bool) { return nil, Value{}, false }
func (f *flaky) TestSet(oid OID, v Value) gosnmp.SNMPError {
	if _, ok := f.vals[oid[len(oid)-1]]; !ok {
		return gosnmp.NoCreation
	}
	if v.Type != gosnmp.Integer {
		return gosnmp.WrongType
	}
	return gosnmp.NoError
}
func (f *flaky) CommitSet(oid OID, v Value) (func() error, gosnmp.SNMPError) {
	k := oid[len(oid)-1]
	if k == f.failAt {
		return nil, gosnmp.CommitFailed
	}
	old := f.vals[k]
	i, _ := v.AsInt()
	f.vals[k] = int(i)
	return func() error {
		if f.undoFail {
			return errors.New("cannot undo")
		}
		f.vals[k] = old
		return nil
	}, gosnmp.NoError
}

func TestSetCommitFailureUndoes(t *testing.T) {
	a := fuzzAgent(t)
	f := &flaky{vals: map[uint32]int{1: 10, 2: 20, 3: 30}, failAt: 3}
	if err := a.Tree().Register(MustOID("1.3.6.1.4.1.99999.9"), f); err != nil {
		t.Fatal(err)
	}
	req := func(version gosnmp.SnmpVersion) *request {
		vbs := []gosnmp.SnmpPDU{
			{Name: ".1.3.6.1.4.1.99999.9.1", Type: gosnmp.Integer, Value: 11},
			{Name: ".1.3.6.1.4.1.99999.9.2", Type: gosnmp.Integer, Value: 21},
			{Name: ".1.3.6.1.4.1.99999.9.3", Type: gosnmp.Integer, Value: 31},
		}
		all := a.VACM().View("all")
		return &request{version: version, pkt: &gosnmp.SnmpPacket{PDUType: gosnmp.SetRequest, Variables: vbs}, read: all, write: all}
	}
	_, st, idx := a.set(req(gosnmp.Version2c))
	if st != gosnmp.CommitFailed || idx != 3 {
		t.Errorf("set = %v@%d, want commitFailed@3", st, idx)
	}
	if f.vals[1] != 10 || f.vals[2] != 20 {
		t.Errorf("after failed commit values = %v, want 10 and 20 restored", f.vals)
	}
	f.undoFail = true
	if _, st, idx = a.set(req(gosnmp.Version2c)); st != gosnmp.UndoFailed || idx != 3 {
		t.Errorf("set with failing undo = %v@%d, want undoFailed@3", st, idx)
	}
	if v1Status(gosnmp.CommitFailed) != gosnmp.GenErr || v1Status(gosnmp.NotWritable) != gosnmp.NoSuchName || v1Status(gosnmp.WrongType) != gosnmp.BadValue {
		t.Errorf("v1 error mapping wrong")
	}
	// A wrong type is caught before any commit.
	f.undoFail, f.failAt = false, 0
	r := req(gosnmp.Version2c)
	r.pkt.Variables[1] = gosnmp.SnmpPDU{Name: ".1.3.6.1.4.1.99999.9.2", Type: gosnmp.OctetString, Value: []byte("x")}
	before := f.vals[1]
	if _, st, idx = a.set(r); st != gosnmp.WrongType || idx != 2 || f.vals[1] != before {
		t.Errorf("set with wrong type = %v@%d (val %d), want wrongType@2 and nothing committed", st, idx, f.vals[1])
	}
}

func TestExportImportFailover(t *testing.T) {
	active, clk := startAgent(t)
	clk.Advance(500 * time.Second)
	g := goClient(t, active, gosnmp.Version3, "")
	if _, err := g.Get([]string{".1.3.6.1.2.1.1.1.0"}); err != nil {
		t.Fatal(err)
	}
	st := active.Export()
	if st.EngineTime < 500 || st.Counters.InPkts == 0 {
		t.Fatalf("Export = time %d, inPkts %d; want >= 500 and > 0", st.EngineTime, st.Counters.InPkts)
	}
	standby, err := New(Config{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	if err := standby.Import(st); err != nil {
		t.Fatalf("Import = %v", err)
	}
	boots, et := standby.engineTime()
	if boots != st.EngineBoots || et < st.EngineTime {
		t.Errorf("after import boots/time = %d/%d, want %d/>=%d", boots, et, st.EngineBoots, st.EngineTime)
	}
	if c := standby.Counters(); c.InPkts < st.Counters.InPkts || c.UsmUnknownEngineIDs < st.Counters.UsmUnknownEngineIDs {
		t.Errorf("counters went backward: %+v < %+v", c, st.Counters)
	}
	ctx := t.Context()
	if err := standby.Start(ctx, "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer standby.Close()
	// The manager carries on against the standby without re-discovery:
	// same gosnmp session (engine ID, boots, time cached), new address.
	g.Conn.Close()
	g.Target, g.Port = standby.Addr().Addr().String(), standby.Addr().Port()
	if err := g.Connect(); err != nil {
		t.Fatal(err)
	}
	before := standby.Counters()
	res, err := g.Get([]string{".1.3.6.1.2.1.1.5.0"})
	if err != nil || string(res.Variables[0].Value.([]byte)) != "mgmt1" {
		t.Fatalf("v3 get from standby = %v, %v", res, err)
	}
	after := standby.Counters()
	if after.UsmUnknownEngineIDs != before.UsmUnknownEngineIDs || after.UsmNotInTimeWindows != before.UsmNotInTimeWindows {
		t.Errorf("manager had to rediscover after failover: %+v -> %+v", before, after)
	}
}

func TestTableSet(t *testing.T) {
	a := fuzzAgent(t)
	vals := map[uint32]int64{1: 1}
	entry := MustOID("1.3.6.1.4.1.99999.7.1")
	tbl := NewTable(entry, []uint32{2, 3}, func() []OID { return []OID{{1}} },
		func(col uint32, idx OID) (Value, bool) { return Integer(int32(vals[col])), true }).WithSet(
		func(col uint32, idx OID, v Value) gosnmp.SNMPError {
			if col != 3 {
				return gosnmp.NotWritable
			}
			if idx.Compare(OID{1}) != 0 {
				return gosnmp.NoCreation
			}
			return gosnmp.NoError
		},
		func(col uint32, idx OID, v Value) (func() error, gosnmp.SNMPError) {
			old := vals[col]
			vals[col], _ = v.AsInt()
			return func() error { vals[col] = old; return nil }, gosnmp.NoError
		})
	if err := a.Tree().Register(entry, tbl); err != nil {
		t.Fatal(err)
	}
	all := a.VACM().View("all")
	for _, tc := range []struct {
		oid  string
		want gosnmp.SNMPError
	}{
		{".1.3.6.1.4.1.99999.7.1.3.1", gosnmp.NoError},
		{".1.3.6.1.4.1.99999.7.1.2.1", gosnmp.NotWritable},
		{".1.3.6.1.4.1.99999.7.1.3.2", gosnmp.NoCreation},
		{".1.3.6.1.4.1.99999.8.1", gosnmp.NoCreation},
	} {
		r := &request{version: gosnmp.Version2c, read: all, write: all, pkt: &gosnmp.SnmpPacket{PDUType: gosnmp.SetRequest,
			Variables: []gosnmp.SnmpPDU{{Name: tc.oid, Type: gosnmp.Integer, Value: 9}}}}
		if _, st, _ := a.set(r); st != tc.want {
			t.Errorf("set %s = %v, want %v", tc.oid, st, tc.want)
		}
	}
	if vals[3] != 9 {
		t.Errorf("column 3 = %d after SET, want 9", vals[3])
	}
}
