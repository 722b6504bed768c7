package hamib_test

import (
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cgoa/cgoa/ha"
	"github.com/cgoa/cgoa/ha/amf"
	"github.com/cgoa/cgoa/ha/cfg"
	"github.com/cgoa/cgoa/ha/clm"
	"github.com/cgoa/cgoa/ha/evt"
	"github.com/cgoa/cgoa/ha/transport"
	"github.com/cgoa/cgoa/snmpagent"
	"github.com/cgoa/cgoa/snmpagent/mib/hamib"
	"github.com/cgoa/cgoa/snmpagent/mib/internal/mibtest"
)

type fakeHA struct {
	mu sync.Mutex
	st ha.Status
}

func (f *fakeHA) Status() ha.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st
}

func status() ha.Status {
	return ha.Status{
		Status: amf.Status{
			Self: 3, InQuorum: true, Voters: []uint8{3, 4, 5},
			View: clm.View{Self: 3, Members: []clm.Member{
				{Slot: 3, Up: true, Connected: true},
				{Slot: 4, Up: true, Connected: true, SinceHeard: 12 * time.Millisecond},
				{Slot: 5, Up: false},
			}},
			Groups: []amf.GroupStatus{
				{Name: "mgmt", Model: amf.TwoN, Units: []amf.UnitStatus{
					{Name: "mgmt-a", Node: 3, State: amf.Active, Instances: []string{"mgmt"}, Oper: amf.InService, Known: true},
					{Name: "mgmt-b", Node: 4, State: amf.Standby, Instances: []string{"mgmt"}, Oper: amf.InService, Known: true},
				}},
				{Name: "olt", Model: amf.NPlusM, Units: []amf.UnitStatus{
					{Name: "epon-a", Node: 4, State: amf.Active, Instances: []string{"pon1", "pon2"}, Oper: amf.InService, Known: true},
					{Name: "epon-b", Node: 5},
				}},
			},
			LastFailover: &amf.FailoverRecord{Group: "mgmt", From: "mgmt-b", To: "mgmt-a", At: time.Second, Duration: 42 * time.Millisecond, Reason: "failover"},
			BadPayloads:  9,
		},
		Transport: transport.Counters{Sent: 1 << 33, Received: 1000, PathRx: [2]uint64{700, 600}, PathTxErr: [2]uint64{0, 5},
			Duplicates: 300, Short: 1, Garbled: 2, Forged: 3, Replayed: 4, Stale: 5, Misrouted: 6},
		Replicated: cfg.State{Locked: map[string]bool{"epon-b": true}},
	}
}

// mibArgs load CGOA-HA-MIB from the repository (with the base stand-ins
// for hosts without the IETF MIB files). add is "+" to load it beside
// the tools' default modules, "" to load it alone.
func mibArgs(t *testing.T, add string) []string {
	dir := mibtest.MIBDir(t)
	return []string{"-M", "+:" + dir + ":" + filepath.Join(dir, "base"), "-m", add + "CGOA-HA-MIB"}
}

func TestNetSNMPParsesMIB(t *testing.T) {
	for name, want := range map[string]snmpagent.OID{
		"cgoaHaGroupState":       hamib.OIDGroupEntry.Append(4),
		"cgoaHaUnitHaState":      hamib.OIDUnitEntry.Append(4),
		"cgoaHaMemberSinceHeard": hamib.OIDMemberEntry.Append(4),
		"cgoaHaLastFailoverTime": hamib.OIDLastFailover.Append(5),
		"cgoaHaPreviousHaState":  hamib.OIDPreviousState[:len(hamib.OIDPreviousState)-1],
		"cgoaHaStateChange":      hamib.OIDStateChange,
		"cgoaHaFailover":         hamib.OIDFailover,
		"cgoaHaQuorumChange":     hamib.OIDQuorumChange,
		"cgoaHaBadPayloads":      hamib.OIDTransport.Append(10),
		"cgoaHaPathTxErrors":     hamib.OIDPathEntry.Append(4),
		"cgoaShelf":              snmpagent.MustOID("1.3.6.1.4.1.99999.1"),
	} {
		// As an operator would, beside the default modules (whose own
		// warnings on a host without the IETF files go to stderr).
		out, stderr, err := mibtest.ToolSplit(t, "snmptranslate", append(mibArgs(t, "+"), "-On", "-IR", name)...)
		if err != nil || strings.TrimSpace(out) != want.String() {
			t.Errorf("snmptranslate -On -IR %s = %q, %v (%s); want %s", name, out, err, stderr, want)
		}
		if strings.Contains(stderr, "CGOA") {
			t.Errorf("snmptranslate warns about our modules: %s", stderr)
		}
	}
	// The whole module loads without a parse warning.
	out, stderr, err := mibtest.ToolSplit(t, "snmptranslate", append(mibArgs(t, ""), "-Pw", "-Tp", "-IR", "cgoaHaMIB")...)
	if err != nil || !strings.Contains(out, "cgoaHaUnitInstances(7)") {
		t.Fatalf("snmptranslate -Tp = %q, %v", out, err)
	}
	if stderr != "" {
		t.Errorf("snmptranslate -Pw of CGOA-HA-MIB alone warns:\n%s", stderr)
	}
}

func TestWalkNamed(t *testing.T) {
	src := &fakeHA{st: status()}
	h := hamib.New(src)
	a := mibtest.Agent(t, nil)
	if err := h.Register(a); err != nil {
		t.Fatal(err)
	}
	out, err := mibtest.Tool(t, "snmpwalk", append(mibArgs(t, ""), "-v2c", "-c", "public", mibtest.Target(a), "CGOA-HA-MIB::cgoaHaMIB")...)
	if err != nil {
		t.Fatalf("snmpwalk = %q, %v", out, err)
	}
	for _, want := range []string{
		"CGOA-HA-MIB::cgoaHaSelfSlot.0 = Gauge32: 3",
		"CGOA-HA-MIB::cgoaHaInQuorum.0 = INTEGER: true(1)",
		"CGOA-HA-MIB::cgoaHaQuorumSize.0 = Gauge32: 2 slots",
		"CGOA-HA-MIB::cgoaHaMembersUp.0 = Gauge32: 2 slots",
		"CGOA-HA-MIB::cgoaHaMemberUp.5 = INTEGER: false(2)",
		"CGOA-HA-MIB::cgoaHaMemberSinceHeard.4 = Gauge32: 12 milliseconds",
		`CGOA-HA-MIB::cgoaHaGroupName.2 = STRING: olt`,
		"CGOA-HA-MIB::cgoaHaGroupRedundancyModel.1 = INTEGER: twoN(1)",
		"CGOA-HA-MIB::cgoaHaGroupRedundancyModel.2 = INTEGER: nPlusM(2)",
		"CGOA-HA-MIB::cgoaHaGroupState.1 = INTEGER: protected(1)",
		"CGOA-HA-MIB::cgoaHaGroupState.2 = INTEGER: unprotected(2)",
		"CGOA-HA-MIB::cgoaHaGroupActiveUnits.1 = Gauge32: 1",
		`CGOA-HA-MIB::cgoaHaUnitName.1.2 = STRING: mgmt-b`,
		"CGOA-HA-MIB::cgoaHaUnitSlot.2.2 = Gauge32: 5",
		"CGOA-HA-MIB::cgoaHaUnitHaState.1.1 = INTEGER: active(1)",
		"CGOA-HA-MIB::cgoaHaUnitHaState.1.2 = INTEGER: standby(2)",
		"CGOA-HA-MIB::cgoaHaUnitHaState.2.2 = INTEGER: unknown(6)",
		"CGOA-HA-MIB::cgoaHaUnitAdminState.2.1 = INTEGER: unlocked(1)",
		"CGOA-HA-MIB::cgoaHaUnitAdminState.2.2 = INTEGER: locked(2)",
		"CGOA-HA-MIB::cgoaHaUnitOperState.1.1 = INTEGER: inService(1)",
		"CGOA-HA-MIB::cgoaHaUnitOperState.2.2 = INTEGER: unknown(5)",
		`CGOA-HA-MIB::cgoaHaUnitInstances.2.1 = STRING: pon1,pon2`,
		`CGOA-HA-MIB::cgoaHaLastFailoverFrom.0 = STRING: mgmt-b`,
		`CGOA-HA-MIB::cgoaHaLastFailoverTo.0 = STRING: mgmt-a`,
		"CGOA-HA-MIB::cgoaHaLastFailoverDuration.0 = Gauge32: 42 milliseconds",
		`CGOA-HA-MIB::cgoaHaLastFailoverReason.0 = STRING: failover`,
		"CGOA-HA-MIB::cgoaHaFramesSent.0 = Counter64: 8589934592",
		"CGOA-HA-MIB::cgoaHaFramesReceived.0 = Counter64: 1000",
		"CGOA-HA-MIB::cgoaHaFramesDuplicate.0 = Counter64: 300",
		"CGOA-HA-MIB::cgoaHaFramesForged.0 = Counter64: 3",
		"CGOA-HA-MIB::cgoaHaFramesReplayed.0 = Counter64: 4",
		"CGOA-HA-MIB::cgoaHaFramesStale.0 = Counter64: 5",
		"CGOA-HA-MIB::cgoaHaFramesShort.0 = Counter64: 1",
		"CGOA-HA-MIB::cgoaHaFramesGarbled.0 = Counter64: 2",
		"CGOA-HA-MIB::cgoaHaFramesOtherShelf.0 = Counter64: 6",
		"CGOA-HA-MIB::cgoaHaBadPayloads.0 = Counter64: 9",
		`CGOA-HA-MIB::cgoaHaPathName.2 = STRING: base1`,
		"CGOA-HA-MIB::cgoaHaPathRxFrames.1 = Counter64: 700",
		"CGOA-HA-MIB::cgoaHaPathRxFrames.2 = Counter64: 600",
		"CGOA-HA-MIB::cgoaHaPathTxErrors.2 = Counter64: 5",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("snmpwalk lacks %q", want)
		}
	}
	// Numerically: strictly increasing, nothing else in the subtree.
	vbs := mibtest.Walk(t, a, hamib.OIDHaMIB.String())
	// 5 scalars + 3x3 member cells + 2x4 group cells + 4x6 unit cells + 6
	// failover scalars + 10 transport counters + 2x3 path cells.
	if len(vbs) != 5+9+8+24+6+10+6 {
		t.Errorf("walk returned %d varbinds, want 68:\n%v", len(vbs), vbs)
	}
}

func TestFailoverTime(t *testing.T) {
	src := &fakeHA{st: status()}
	src.st.LastFailover = nil
	h := hamib.New(src)
	clk := &mibtest.Clock{}
	a := mibtest.Agent(t, clk)
	if err := h.Register(a); err != nil {
		t.Fatal(err)
	}
	timeOID := hamib.OIDLastFailover.Append(5, 0)
	if v := a.Tree().Get(timeOID); v.String() != "TimeTicks:0" {
		t.Fatalf("cgoaHaLastFailoverTime with no failover = %v, want 0", v)
	}
	clk.Advance(90 * time.Second)
	// The event arrives (the HA loop publishes it) before the record is read.
	h.Observe(evt.Event{Kind: evt.Failover, Group: "mgmt", From: "mgmt-b", To: "mgmt-a", Detail: "failover in 42ms"})
	clk.Advance(30 * time.Second)
	src.mu.Lock()
	src.st = status()
	src.mu.Unlock()
	v, _ := a.Tree().Get(timeOID).AsUint()
	if v < 9000 || v >= 12000 {
		t.Errorf("cgoaHaLastFailoverTime = %d, want the sysUpTime of the event (about 9000)", v)
	}
}

func TestNotificationVarbinds(t *testing.T) {
	h := hamib.New(&fakeHA{st: status()})
	vbs, ok := h.StateChangeVarbinds(evt.Event{Kind: evt.Assignment, Subject: "mgmt-b", Group: "mgmt", From: "standby", To: "active"})
	if !ok || len(vbs) != 4 {
		t.Fatalf("StateChangeVarbinds = %v, %v", vbs, ok)
	}
	want := []string{
		".1.3.6.1.4.1.99999.2.1.1.3.1.2.1.2=OctetString:\"mgmt-b\"",
		".1.3.6.1.4.1.99999.2.1.1.3.1.3.1.2=Gauge32:4",
		".1.3.6.1.4.1.99999.2.1.1.5.1.0=Integer:2",
		".1.3.6.1.4.1.99999.2.1.1.3.1.4.1.2=Integer:1",
	}
	for i, vb := range vbs {
		if got := vb.OID.String() + "=" + vb.Value.String(); got != want[i] {
			t.Errorf("StateChangeVarbinds[%d] = %s, want %s", i, got, want[i])
		}
	}
	if _, ok := h.StateChangeVarbinds(evt.Event{Kind: evt.Assignment, Subject: "nobody"}); ok {
		t.Errorf("StateChangeVarbinds of an unknown unit: ok, want not")
	}
	fv := hamib.FailoverVarbinds(evt.Event{Kind: evt.Failover, Group: "olt", From: "epon-a", To: "epon-b", Detail: "handover in 1.5s"})
	if got := fv[3].Value.String() + " " + fv[4].Value.String(); got != `Gauge32:1500 OctetString:"handover"` {
		t.Errorf("FailoverVarbinds duration, reason = %s", got)
	}
	qv := hamib.QuorumVarbinds(evt.Event{Kind: evt.Quorum, Subject: "3", To: "minority"})
	if got := qv[0].Value.String() + " " + qv[1].Value.String(); got != "Gauge32:3 Integer:2" {
		t.Errorf("QuorumVarbinds = %s, want slot 3, false", got)
	}
}
