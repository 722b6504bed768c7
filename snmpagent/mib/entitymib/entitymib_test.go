package entitymib_test

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cgoa/cgoa/hal"
	"github.com/cgoa/cgoa/snmpagent/mib/entitymib"
	"github.com/cgoa/cgoa/snmpagent/mib/internal/mibtest"
)

const ent = ".1.3.6.1.2.1.47.1.1.1.1"

func TestWalkEntityMIB(t *testing.T) {
	var (
		mu    sync.Mutex
		shelf = entitymib.Shelf{Number: 1, FRU: entitymib.FRU{Serial: "SHELF-0001", Model: "ATCA-14"}, Slots: []entitymib.Slot{
			{Number: 1, Present: true, Role: "switch", Blade: entitymib.FRU{Serial: "CGOA-SWITCH-001-01", SoftwareRev: "v1.2.0"}, Ports: []string{"base0", "uplink0"}},
			{Number: 3, Present: true, Role: "mgmt", Blade: entitymib.FRUFromIPMI(hal.IPMIStatus{Present: true, Firmware: "1.05",
				DeviceRevision: 3, ManufacturerID: 343, ProductID: 0x1234}, "CGOA-MGMT-001-03\x01", "")},
			{Number: 5},
		}}
		fail error
	)
	inv := entitymib.InventoryFunc(func() (entitymib.Shelf, error) {
		mu.Lock()
		defer mu.Unlock()
		return shelf, fail
	})
	e := entitymib.New(inv, entitymib.Options{IfIndex: func(slot int, port string) (uint32, bool) {
		return map[string]uint32{"base0": 4}[port], slot == 1 && port == "base0"
	}})
	clk := &mibtest.Clock{}
	a := mibtest.Agent(t, clk)
	if err := e.Register(a); err != nil {
		t.Fatal(err)
	}
	vbs := mibtest.Walk(t, a, ".1.3.6.1.2.1.47")
	for _, w := range []struct{ oid, typ, val string }{
		{ent + ".2.1", "STRING", "CGOA ATCA shelf"},
		{ent + ".5.1", "INTEGER", "3"},
		{ent + ".4.1", "INTEGER", "0"},
		{ent + ".6.1", "INTEGER", "-1"},
		{ent + ".11.1", "STRING", "SHELF-0001"},
		{ent + ".5.1000", "INTEGER", "5"},
		{ent + ".4.1000", "INTEGER", "1"},
		{ent + ".6.1000", "INTEGER", "1"},
		{ent + ".7.1000", "STRING", "slot 1"},
		{ent + ".5.1001", "INTEGER", "9"},
		{ent + ".4.1001", "INTEGER", "1000"},
		{ent + ".7.1001", "STRING", "switch-s1"},
		{ent + ".10.1001", "STRING", "v1.2.0"},
		{ent + ".16.1001", "INTEGER", "1"},
		{ent + ".5.1101", "INTEGER", "10"},
		{ent + ".4.1102", "INTEGER", "1001"},
		{ent + ".7.1102", "STRING", "uplink0"},
		{ent + ".16.1101", "INTEGER", "2"},
		{ent + ".8.3001", "STRING", "3"},
		{ent + ".9.3001", "STRING", "1.05"},
		{ent + ".11.3001", "STRING", "CGOA-MGMT-001-03"}, // control character dropped
		{ent + ".12.3001", "STRING", "IANA enterprise 343"},
		{ent + ".13.3001", "STRING", "product 0x1234"},
		{ent + ".17.3001", "Hex-STRING", "00 00 00 00 00 00 00 00"},
		{ent + ".5.5000", "INTEGER", "5"},
		{".1.3.6.1.2.1.47.1.3.2.1.2.1101.0", "OID", ".1.3.6.1.2.1.2.2.1.1.4"},
		{".1.3.6.1.2.1.47.1.4.1.0", "Timeticks", "(0) 0:00:00.00"},
	} {
		mibtest.Want(t, vbs, w.oid, w.typ, w.val)
	}
	if _, ok := mibtest.Find(vbs, ent+".2.5001"); ok {
		t.Errorf("an empty slot has a module row")
	}
	// Rows: chassis, 3 containers, 2 blades, 2 ports = 8 rows x 17 columns,
	// + 1 alias mapping + entLastChangeTime.
	if len(vbs) != 8*17+2 {
		t.Errorf("walk returned %d varbinds, want %d", len(vbs), 8*17+2)
	}

	// A blade pulled: its module row goes.
	mu.Lock()
	shelf.Slots = slices.Clone(shelf.Slots) // the module keeps what it was given
	shelf.Slots[1].Present = false
	mu.Unlock()
	clk.Advance(10 * time.Second)
	vbs = mibtest.Walk(t, a, ".1.3.6.1.2.1.47")
	if _, ok := mibtest.Find(vbs, ent+".5.3001"); ok {
		t.Errorf("pulled blade still listed")
	}
	if lc, _ := mibtest.Find(vbs, ".1.3.6.1.2.1.47.1.4.1.0"); !strings.HasPrefix(lc.Value, "(10") {
		t.Errorf("entLastChangeTime after the change = %s, want about 10 s of sysUpTime", lc.Value)
	}
	// A failing inventory keeps the last good one and is counted.
	mu.Lock()
	fail = errors.New("shelf manager unreachable")
	mu.Unlock()
	vbs = mibtest.Walk(t, a, ent+".5")
	if len(vbs) != 7 || e.InventoryErrors() == 0 {
		t.Errorf("with a failing inventory: %d rows, %d errors; want the last 7 rows and errors counted", len(vbs), e.InventoryErrors())
	}
}
