package eponmib_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/cgoa/cgoa/snmpagent"
	"github.com/cgoa/cgoa/snmpagent/mib/eponmib"
	"github.com/cgoa/cgoa/snmpagent/mib/internal/mibtest"
)

func links() []eponmib.Link {
	return []eponmib.Link{
		{IfIndex: 0x05010001, LinkID: 1, RemoteMAC: [6]byte{2, 0, 0, 0, 0x10, 1}, State: eponmib.Registered, RTT: 625, PendingGrants: 4,
			Stats: eponmib.Stats{MACCtrlFramesTransmitted: 1 << 40, MACCtrlFramesReceived: 77, RxReport: 70, TxGate: 71, TxRegister: 1, RxRegAck: 1, RxRegRequest: 2}, OAMStatus: 9},
		{IfIndex: 0x0501ffff, LinkID: eponmib.BroadcastLLID, State: eponmib.Unregistered,
			Stats: eponmib.Stats{DiscoveryWindowsSent: 40, DiscoveryTimeout: 2}},
		{IfIndex: 0x05010002, LinkID: 2, RemoteMAC: [6]byte{2, 0, 0, 0, 0x10, 2}, State: eponmib.Registering, RTT: 1 << 20, OAMStatus: 4},
		{IfIndex: 0, LinkID: 9},          // no valid index: not served
		{IfIndex: 0x05010001, LinkID: 5}, // a duplicate index: only the first row
	}
}

func mibArgs(t *testing.T) []string {
	dir := mibtest.MIBDir(t)
	return []string{"-M", "+:" + dir + ":" + filepath.Join(dir, "base"), "-m", "DOT3-EPON-MIB:DOT3-OAM-MIB:CGOA-EPON-MIB"}
}

func TestWalkEponMIB(t *testing.T) {
	var mu sync.Mutex
	rows := links()
	a := mibtest.Agent(t, nil)
	if err := eponmib.New(eponmib.SourceFunc(func() []eponmib.Link { mu.Lock(); defer mu.Unlock(); return rows })).Register(a); err != nil {
		t.Fatal(err)
	}
	vbs := mibtest.Walk(t, a, ".1.3.6.1.2.1.155")
	// 2 tables x (8 control + 14 stat columns) x 3 rows.
	if len(vbs) != (8+14)*3 {
		t.Fatalf("walk of dot3EponMIB: %d varbinds, want %d", len(vbs), (8+14)*3)
	}
	ctl := ".1.3.6.1.2.1.155.1.1.1.1."
	stat := ".1.3.6.1.2.1.155.1.1.2.1."
	one, bc, two := "83951617", "84017151", "83951618"
	mibtest.Want(t, vbs, ctl+"3."+one, "INTEGER", "1")
	mibtest.Want(t, vbs, ctl+"5."+one, "Gauge32", "1")
	mibtest.Want(t, vbs, ctl+"6."+one, "Hex-STRING", "02 00 00 00 10 01")
	mibtest.Want(t, vbs, ctl+"7."+one, "INTEGER", "3")
	mibtest.Want(t, vbs, ctl+"10."+one, "Gauge32", "625")
	mibtest.Want(t, vbs, ctl+"11."+one, "Gauge32", "4")
	mibtest.Want(t, vbs, ctl+"5."+bc, "Gauge32", "65535")
	mibtest.Want(t, vbs, ctl+"7."+bc, "INTEGER", "1")
	mibtest.Want(t, vbs, ctl+"7."+two, "INTEGER", "2")
	mibtest.Want(t, vbs, ctl+"10."+two, "Gauge32", "65535") // capped as the MIB says
	mibtest.Want(t, vbs, stat+"1."+one, "Counter64", "1099511627776")
	mibtest.Want(t, vbs, stat+"10."+one, "Counter64", "70")
	mibtest.Want(t, vbs, stat+"5."+one, "Counter64", "0")
	mibtest.Want(t, vbs, stat+"3."+bc, "Counter32", "40")
	mibtest.Want(t, vbs, stat+"4."+bc, "Counter32", "2")
	// dot3OamTable: the two LLIDs, not the PON port.
	oam := mibtest.Walk(t, a, ".1.3.6.1.2.1.158")
	if len(oam) != 3*2 {
		t.Errorf("walk of dot3OamTable: %d varbinds, want 6", len(oam))
	}
	mibtest.Want(t, oam, ".1.3.6.1.2.1.158.1.1.1.1."+one, "INTEGER", "1")
	mibtest.Want(t, oam, ".1.3.6.1.2.1.158.1.1.1.2."+one, "INTEGER", "9")
	mibtest.Want(t, oam, ".1.3.6.1.2.1.158.1.1.1.3."+one, "INTEGER", "2")
	mibtest.Want(t, oam, ".1.3.6.1.2.1.158.1.1.1.2."+two, "INTEGER", "4")

	// net-snmp names the columns with the shipped module.
	out, err := mibtest.Tool(t, "snmpget", append(mibArgs(t), "-v2c", "-c", mibtest.Public, mibtest.Target(a),
		"DOT3-EPON-MIB::dot3MpcpRegistrationState."+one, "DOT3-EPON-MIB::dot3MpcpRemoteMACAddress."+one,
		"DOT3-OAM-MIB::dot3OamOperStatus."+one)...)
	if err != nil || !strings.Contains(out, "dot3MpcpRegistrationState."+one+" = INTEGER: registered(3)") ||
		!strings.Contains(out, "dot3MpcpRemoteMACAddress."+one+" = STRING: 2:0:0:0:10:1") ||
		!strings.Contains(out, "dot3OamOperStatus."+one+" = INTEGER: operational(9)") {
		t.Errorf("snmpget by name = %q, %v", out, err)
	}
	// Rows go with the source.
	mu.Lock()
	rows = rows[1:2]
	mu.Unlock()
	if vbs := mibtest.Walk(t, a, ".1.3.6.1.2.1.155"); len(vbs) != 8+14 {
		t.Errorf("walk after the ONUs left: %d varbinds, want %d", len(vbs), 8+14)
	}
	// Read-only: a SET is refused.
	out, _ = mibtest.Tool(t, "snmpset", "-v2c", "-c", mibtest.Private, mibtest.Target(a), ctl+"2."+bc, "i", "2")
	if !strings.Contains(out, "notWritable") {
		t.Errorf("snmpset dot3MpcpAdminState = %q, want notWritable", out)
	}
}

func TestNetSNMPParsesMIBs(t *testing.T) {
	for name, want := range map[string]snmpagent.OID{
		"dot3MpcpRoundTripTime":        eponmib.OIDControlEntry.Append(eponmib.ColRoundTripTime),
		"dot3MpcpRxRegister":           eponmib.OIDStatEntry.Append(14),
		"dot3OamOperStatus":            eponmib.OIDOamEntry.Append(2),
		"dot3OamMode":                  eponmib.OIDOamEntry.Append(3),
		"cgoaEponOnuRegistered":        eponmib.OIDOnuRegistered,
		"cgoaEponOnuDeregistered":      eponmib.OIDOnuDeregistered,
		"cgoaEponOnuLost":              eponmib.OIDOnuLost,
		"dot3MpcpMaximumPendingGrants": eponmib.OIDControlEntry.Append(eponmib.ColMaximumPendingGrants),
	} {
		out, stderr, err := mibtest.ToolSplit(t, "snmptranslate", append(mibArgs(t), "-Pw", "-On", "-IR", name)...)
		if err != nil || strings.TrimSpace(out) != want.String() {
			t.Errorf("snmptranslate -On -IR %s = %q, %v (%s); want %s", name, out, err, stderr, want)
		}
		for _, l := range strings.Split(stderr, "\n") {
			if strings.TrimSpace(l) != "" && !strings.HasPrefix(l, "MIB search path") {
				t.Errorf("snmptranslate warns about our modules: %s", l)
			}
		}
	}
}

// TestNotificationToSnmptrapd: an ONU notification arrives at snmptrapd, which names it and
// its objects with the shipped modules.
func TestNotificationToSnmptrapd(t *testing.T) {
	addr, lines := mibtest.Trapd(t, "disableAuthorization yes\n", append(mibArgs(t), "-OS")...)
	a := mibtest.Agent(t, nil)
	if err := a.AddTarget(snmpagent.Target{Name: "trapd", Addr: addr, Version: gosnmp.Version2c, Community: "public"}); err != nil {
		t.Fatal(err)
	}
	trap, vbs, ok := eponmib.Notification(eponmib.OnuLost, links()[0])
	if !ok {
		t.Fatal("Notification(OnuLost) not ok")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Notify(ctx, trap, vbs...); err != nil {
		t.Fatal(err)
	}
	l := mibtest.AwaitLine(t, lines, "cgoaEponOnuLost")
	for _, want := range []string{"dot3MpcpLinkID.83951617 = Gauge32: 1", "dot3MpcpRoundTripTime.83951617 = Gauge32: 625"} {
		if !strings.Contains(l, want) {
			t.Errorf("snmptrapd line %q lacks %q", l, want)
		}
	}
	if _, _, ok := eponmib.Notification(9, links()[0]); ok {
		t.Error("Notification(9) ok, want false")
	}
}
