package snmpagent_test

import (
	"fmt"
	"slices"
	"sync"

	"github.com/cgoa/cgoa/snmpagent"
	"github.com/gosnmp/gosnmp"
)

// A MIB module registers a table with a writable column, the way IF-MIB's
// ifTable (ifAdminStatus) would, and announces itself in sysORTable.
func Example_table() {
	a, err := snmpagent.New(snmpagent.Config{})
	if err != nil {
		panic(err)
	}
	var mu sync.Mutex
	ports := map[uint32]string{1: "base0", 2: "base1"}
	admin := map[uint32]int64{1: 1, 2: 2}
	ifEntry := snmpagent.MustOID("1.3.6.1.2.1.2.2.1")
	table := snmpagent.NewTable(ifEntry, []uint32{1, 2, 7},
		func() []snmpagent.OID { // rows, ascending
			mu.Lock()
			defer mu.Unlock()
			var rows []snmpagent.OID
			for i := range ports {
				rows = append(rows, snmpagent.OID{i})
			}
			slices.SortFunc(rows, snmpagent.OID.Compare)
			return rows
		},
		func(col uint32, idx snmpagent.OID) (snmpagent.Value, bool) {
			mu.Lock()
			defer mu.Unlock()
			if len(idx) != 1 || ports[idx[0]] == "" {
				return snmpagent.Value{}, false
			}
			switch col {
			case 1:
				return snmpagent.Integer(int32(idx[0])), true
			case 2:
				return snmpagent.String(ports[idx[0]]), true
			case 7:
				return snmpagent.Integer(int32(admin[idx[0]])), true
			}
			return snmpagent.Value{}, false
		}).WithSet(
		func(col uint32, idx snmpagent.OID, v snmpagent.Value) gosnmp.SNMPError {
			if col != 7 {
				return gosnmp.NotWritable
			}
			if n, ok := v.AsInt(); !ok {
				return gosnmp.WrongType
			} else if n < 1 || n > 3 {
				return gosnmp.WrongValue
			}
			return gosnmp.NoError
		},
		func(col uint32, idx snmpagent.OID, v snmpagent.Value) (func() error, gosnmp.SNMPError) {
			mu.Lock()
			defer mu.Unlock()
			old := admin[idx[0]]
			admin[idx[0]], _ = v.AsInt()
			return func() error { mu.Lock(); admin[idx[0]] = old; mu.Unlock(); return nil }, gosnmp.NoError
		})
	if err := a.Tree().Register(ifEntry, table); err != nil {
		panic(err)
	}
	a.AddSysOR(snmpagent.MustOID("1.3.6.1.2.1.31"), "The MIB module to describe generic objects for network interface sub-layers")

	for oid := ifEntry; ; {
		next, v, ok := a.Tree().Next(oid, nil)
		if !ok || !next.HasPrefix(ifEntry) {
			break
		}
		fmt.Println(next, v)
		oid = next
	}
	// Output:
	// .1.3.6.1.2.1.2.2.1.1.1 Integer:1
	// .1.3.6.1.2.1.2.2.1.1.2 Integer:2
	// .1.3.6.1.2.1.2.2.1.2.1 OctetString:"base0"
	// .1.3.6.1.2.1.2.2.1.2.2 OctetString:"base1"
	// .1.3.6.1.2.1.2.2.1.7.1 Integer:1
	// .1.3.6.1.2.1.2.2.1.7.2 Integer:2
}
