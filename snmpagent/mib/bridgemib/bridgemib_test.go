package bridgemib_test

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cgoa/cgoa/snmpagent/mib/bridgemib"
	"github.com/cgoa/cgoa/snmpagent/mib/internal/mibtest"
	"github.com/cgoa/cgoa/stp"
)

func snapshot(t *testing.T) stp.Snapshot {
	t.Helper()
	self, err := stp.NewBridgeID(32768, net.HardwareAddr{2, 0, 0, 0, 0, 1})
	if err != nil {
		t.Fatal(err)
	}
	root, err := stp.NewBridgeID(4096, net.HardwareAddr{2, 0, 0, 0, 0, 9})
	if err != nil {
		t.Fatal(err)
	}
	p1, _ := stp.NewPortID(128, 1)
	p2, _ := stp.NewPortID(144, 2)
	rp, _ := stp.NewPortID(128, 7)
	s := stp.Snapshot{
		ID: self, Priority: self.PriorityField(), Root: root, RootPort: 1, RootPathCost: 19,
		MaxAge: 20 * time.Second, HelloTime: 2 * time.Second, ForwardDelay: 15 * time.Second, HoldTime: time.Second,
		BridgeMaxAge: 20 * time.Second, BridgeHelloTime: 2 * time.Second, BridgeForwardDelay: 15 * time.Second,
		TopologyChanges: 3, SinceTopologyChange: 12340 * time.Millisecond,
		Ports: []stp.PortSnapshot{
			{Number: 2, Name: "base1", ID: p2, Priority: 144, Enabled: true, State: stp.Blocking, PathCost: 200000,
				DesignatedRoot: root, DesignatedCost: 19, DesignatedBridge: self, DesignatedPort: p2},
			{Number: 1, Name: "base0", ID: p1, Priority: 128, Enabled: true, State: stp.Forwarding, PathCost: 19,
				DesignatedRoot: root, DesignatedCost: 0, DesignatedBridge: root, DesignatedPort: rp,
				PortCounters: stp.PortCounters{ForwardTransitions: 4}},
		},
	}
	return s
}

func TestWalkBridgeMIB(t *testing.T) {
	var (
		mu   sync.Mutex
		have bool
	)
	snap := snapshot(t)
	src := bridgemib.SourceFunc(func() (stp.Snapshot, bool) {
		mu.Lock()
		defer mu.Unlock()
		return snap, have
	})
	ifIndex := map[string]uint32{"base0": 5, "base1": 6}
	br := bridgemib.New(src, bridgemib.Options{IfIndex: func(n string) (uint32, bool) { i, ok := ifIndex[n]; return i, ok }})
	a := mibtest.Agent(t, nil)
	if err := br.Register(a); err != nil {
		t.Fatal(err)
	}
	// No snapshot yet: nothing to walk, not zeroes.
	if out, _ := mibtest.Tool(t, "snmpwalk", "-v2c", "-c", "public", "-On", mibtest.Target(a), ".1.3.6.1.2.1.17"); !strings.Contains(out, "No Such Object") {
		t.Fatalf("walk without a snapshot = %q, want No Such Object", out)
	}
	mu.Lock()
	have = true
	mu.Unlock()

	vbs := mibtest.Walk(t, a, ".1.3.6.1.2.1.17")
	for _, w := range []struct{ oid, typ, val string }{
		{".1.3.6.1.2.1.17.1.1.0", "Hex-STRING", "02 00 00 00 00 01"},
		{".1.3.6.1.2.1.17.1.2.0", "INTEGER", "2"},
		{".1.3.6.1.2.1.17.1.3.0", "INTEGER", "2"},
		{".1.3.6.1.2.1.17.1.4.1.2.1", "INTEGER", "5"},
		{".1.3.6.1.2.1.17.1.4.1.2.2", "INTEGER", "6"},
		{".1.3.6.1.2.1.17.1.4.1.3.1", "OID", ".0.0"},
		{".1.3.6.1.2.1.17.2.1.0", "INTEGER", "3"},
		{".1.3.6.1.2.1.17.2.2.0", "INTEGER", "32768"},
		{".1.3.6.1.2.1.17.2.3.0", "Timeticks", "(1234) 0:00:12.34"},
		{".1.3.6.1.2.1.17.2.4.0", "Counter32", "3"},
		{".1.3.6.1.2.1.17.2.5.0", "Hex-STRING", "10 00 02 00 00 00 00 09"},
		{".1.3.6.1.2.1.17.2.6.0", "INTEGER", "19"},
		{".1.3.6.1.2.1.17.2.7.0", "INTEGER", "1"},
		{".1.3.6.1.2.1.17.2.8.0", "INTEGER", "2000"},
		{".1.3.6.1.2.1.17.2.9.0", "INTEGER", "200"},
		{".1.3.6.1.2.1.17.2.10.0", "INTEGER", "100"},
		{".1.3.6.1.2.1.17.2.11.0", "INTEGER", "1500"},
		{".1.3.6.1.2.1.17.2.14.0", "INTEGER", "1500"},
		{".1.3.6.1.2.1.17.2.15.1.2.2", "INTEGER", "144"},
		{".1.3.6.1.2.1.17.2.15.1.3.1", "INTEGER", "5"},
		{".1.3.6.1.2.1.17.2.15.1.3.2", "INTEGER", "2"},
		{".1.3.6.1.2.1.17.2.15.1.4.1", "INTEGER", "1"},
		{".1.3.6.1.2.1.17.2.15.1.5.2", "INTEGER", "65535"},
		{".1.3.6.1.2.1.17.2.15.1.8.1", "Hex-STRING", "10 00 02 00 00 00 00 09"},
		{".1.3.6.1.2.1.17.2.15.1.9.1", "Hex-STRING", "80 07"},
		{".1.3.6.1.2.1.17.2.15.1.10.1", "Counter32", "4"},
		{".1.3.6.1.2.1.17.2.15.1.11.2", "INTEGER", "200000"},
	} {
		mibtest.Want(t, vbs, w.oid, w.typ, w.val)
	}
	// 3 base scalars + 3 cols x 2 ports + 14 stp scalars + 11 cols x 2 ports.
	if len(vbs) != 3+6+14+22 {
		t.Errorf("walk returned %d varbinds, want 45", len(vbs))
	}
	// Rows come by port number although the snapshot lists 2 first.
	first, _ := mibtest.Find(vbs, ".1.3.6.1.2.1.17.2.15.1.1.1")
	if first.Value != "1" {
		t.Errorf("dot1dStpPort.1 = %q, want 1", first.Value)
	}
	out, err := mibtest.Tool(t, "snmpbulkwalk", "-v2c", "-c", "public", "-On", "-Cr5", mibtest.Target(a), ".1.3.6.1.2.1.17")
	if err != nil || strings.Count(out, "\n") != len(vbs) {
		t.Errorf("snmpbulkwalk = %d lines, %v; want %d like the walk", strings.Count(out, "\n"), err, len(vbs))
	}
}
