package mib_test

import (
	"strings"
	"testing"

	"github.com/cgoa/cgoa/ha"
	"github.com/cgoa/cgoa/ha/amf"
	"github.com/cgoa/cgoa/hal"
	"github.com/cgoa/cgoa/snmpagent/mib/bridgemib"
	"github.com/cgoa/cgoa/snmpagent/mib/entitymib"
	"github.com/cgoa/cgoa/snmpagent/mib/eponmib"
	"github.com/cgoa/cgoa/snmpagent/mib/hamib"
	"github.com/cgoa/cgoa/snmpagent/mib/ifmib"
	"github.com/cgoa/cgoa/snmpagent/mib/internal/mibtest"
	"github.com/cgoa/cgoa/stp"
)

type haStatus struct{}

func (haStatus) Status() ha.Status {
	return ha.Status{Status: amf.Status{Self: 3, InQuorum: true, Voters: []uint8{3, 4},
		Groups: []amf.GroupStatus{{Name: "mgmt", Model: amf.TwoN, Units: []amf.UnitStatus{{Name: "mgmt-a", Node: 3, State: amf.Active, Oper: amf.InService, Known: true}}}}}}
}

// Every module in one agent: the registrations do not overlap, and a
// walk and a bulk walk of the whole tree agree and are ordered.
func TestAllModulesInOneAgent(t *testing.T) {
	a := mibtest.Agent(t, nil)
	ifs := ifmib.New(ifmib.PortsFunc(func() ([]hal.Port, error) {
		return []hal.Port{{Name: "base0", MAC: "02:00:00:00:00:01", OperUp: true, AdminUp: true, RxBytes: 1 << 40}}, nil
	}), ifmib.Options{Speed: func(string) uint64 { return 1e9 }})
	ent := entitymib.New(entitymib.InventoryFunc(func() (entitymib.Shelf, error) {
		return entitymib.Shelf{Number: 1, Slots: []entitymib.Slot{{Number: 3, Present: true, Role: "mgmt", Ports: []string{"base0"}}}}, nil
	}), entitymib.Options{})
	br := bridgemib.New(bridgemib.SourceFunc(func() (stp.Snapshot, bool) {
		return stp.Snapshot{Ports: []stp.PortSnapshot{{Number: 1, Name: "base0", State: stp.Forwarding, Enabled: true}}}, true
	}), bridgemib.Options{IfIndex: ifs.IfIndex})
	if err := ifs.Register(a); err != nil {
		t.Fatal(err)
	}
	if err := ent.Register(a); err != nil {
		t.Fatal(err)
	}
	if err := hamib.New(haStatus{}).Register(a); err != nil {
		t.Fatal(err)
	}
	if err := br.Register(a); err != nil {
		t.Fatal(err)
	}
	if err := eponmib.New(eponmib.SourceFunc(func() []eponmib.Link {
		return []eponmib.Link{{IfIndex: 0x05000001, LinkID: 1, State: eponmib.Registered, RTT: 600}}
	})).Register(a); err != nil {
		t.Fatal(err)
	}
	// Registering a module twice is refused, not a silent overlap.
	if err := br.Register(a); err == nil {
		t.Errorf("second BRIDGE-MIB registration = nil, want overlap error")
	}
	walk := mibtest.Walk(t, a, ".1")
	out, err := mibtest.Tool(t, "snmpbulkwalk", "-v2c", "-c", "public", "-On", "-Oe", "-Cr10", mibtest.Target(a), ".1")
	if err != nil {
		t.Fatalf("snmpbulkwalk = %v", err)
	}
	bulk := mibtest.Parse(t, out)
	if len(bulk) != len(walk) {
		t.Fatalf("bulk walk %d varbinds, walk %d", len(bulk), len(walk))
	}
	for i := range walk {
		if walk[i].OID.Compare(bulk[i].OID) != 0 {
			t.Fatalf("varbind %d: walk %v, bulk walk %v", i, walk[i].OID, bulk[i].OID)
		}
	}
	for _, prefix := range []string{".1.3.6.1.2.1.2.2.1.", ".1.3.6.1.2.1.31.1.1.1.6.1", ".1.3.6.1.2.1.47.1.1.1.1.", ".1.3.6.1.2.1.17.2.15.1.", ".1.3.6.1.4.1.99999.2.1.1.3.1."} {
		found := false
		for _, vb := range walk {
			found = found || strings.HasPrefix(vb.OID.String(), prefix)
		}
		if !found {
			t.Errorf("whole-tree walk has nothing under %s", prefix)
		}
	}
	mibtest.Want(t, walk, ".1.3.6.1.2.1.31.1.1.1.6.1", "Counter64", "1099511627776")
	mibtest.Want(t, walk, ".1.3.6.1.2.1.17.1.4.1.2.1", "INTEGER", "1")
}
