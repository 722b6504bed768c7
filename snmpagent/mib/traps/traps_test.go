package traps_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cgoa/cgoa/ha"
	"github.com/cgoa/cgoa/ha/amf"
	"github.com/cgoa/cgoa/ha/evt"
	"github.com/cgoa/cgoa/snmpagent"
	"github.com/cgoa/cgoa/snmpagent/mib/hamib"
	"github.com/cgoa/cgoa/snmpagent/mib/ifmib"
	"github.com/cgoa/cgoa/snmpagent/mib/internal/mibtest"
	"github.com/cgoa/cgoa/snmpagent/mib/traps"
	"github.com/cgoa/cgoa/stp"
	"github.com/gosnmp/gosnmp"
)

// haLoop stands for the HA core: Status takes the lock the HA loop holds
// while it publishes events, as ha.Blade does.
type haLoop struct {
	mu sync.Mutex
	st ha.Status
}

func (h *haLoop) Status() ha.Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.st
}

func haStatus() ha.Status {
	return ha.Status{Status: amf.Status{Self: 3, InQuorum: true, Groups: []amf.GroupStatus{
		{Name: "mgmt", Model: amf.TwoN, Units: []amf.UnitStatus{
			{Name: "mgmt-a", Node: 3, State: amf.Active, Oper: amf.InService, Known: true},
			{Name: "mgmt-b", Node: 4, State: amf.Standby, Oper: amf.InService, Known: true},
		}},
	}}}
}

func TestNotificationsReachSnmptrapd(t *testing.T) {
	a := mibtest.Agent(t, nil)
	addr, lines := mibtest.Trapd(t, "authCommunity log public\n")
	if err := a.AddTarget(snmpagent.Target{Name: "nms", Addr: addr, Version: gosnmp.Version2c, Community: "public"}); err != nil {
		t.Fatal(err)
	}
	loop := &haLoop{st: haStatus()}
	m := traps.New(a, traps.Options{HA: hamib.New(loop)})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.Run(ctx)

	const trapOID = ".1.3.6.1.6.3.1.1.4.1.0 = OID: "
	m.Started(false)
	mibtest.AwaitLine(t, lines, trapOID+".1.3.6.1.6.3.1.1.5.1")
	m.Started(true)
	mibtest.AwaitLine(t, lines, trapOID+".1.3.6.1.6.3.1.1.5.2")

	m.Link(ifmib.LinkChange{Index: 7, Name: "base1", Up: false, AdminUp: true, TrapEnabled: true})
	mibtest.AwaitLine(t, lines, trapOID+".1.3.6.1.6.3.1.1.5.3", ".1.3.6.1.2.1.2.2.1.1.7 = INTEGER: 7",
		".1.3.6.1.2.1.2.2.1.7.7 = INTEGER: 1", ".1.3.6.1.2.1.2.2.1.8.7 = INTEGER: 2")
	m.Link(ifmib.LinkChange{Index: 8, Up: true, TrapEnabled: false}) // disabled by the manager: nothing
	m.Link(ifmib.LinkChange{Index: 7, Name: "base1", Up: true, AdminUp: true, TrapEnabled: true})
	l := mibtest.AwaitLine(t, lines, trapOID+".1.3.6.1.6.3.1.1.5.4")
	if want := ".1.3.6.1.2.1.2.2.1.1.7 = INTEGER: 7"; !strings.Contains(l, want) {
		t.Errorf("linkUp line %q lacks %q (a disabled port's trap came first?)", l, want)
	}

	// HA events are published on the HA loop, holding the lock Status
	// needs: HAEvent must return without reading the status.
	bus := evt.NewBus(8)
	bus.Subscribe(m.HAEvent)
	done := make(chan struct{})
	go func() {
		loop.mu.Lock()
		bus.Publish(evt.Event{Kind: evt.Assignment, Node: 3, Subject: "mgmt-b", Group: "mgmt", From: "standby", To: "active"})
		bus.Publish(evt.Event{Kind: evt.Failover, Node: 3, Subject: "mgmt", Group: "mgmt", From: "mgmt-a", To: "mgmt-b", Detail: "failover in 37ms"})
		bus.Publish(evt.Event{Kind: evt.Quorum, Node: 3, Subject: "3", To: "minority"})
		bus.Publish(evt.Event{Kind: evt.Membership, Node: 3, Subject: "4", To: "joined"}) // no notification
		loop.mu.Unlock()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("publishing HA events blocked: HAEvent waits for the HA loop")
	}
	ha := ".1.3.6.1.4.1.99999.2.1"
	mibtest.AwaitLine(t, lines, trapOID+ha+".0.1", ha+".1.3.1.2.1.2 = STRING: \"mgmt-b\"", ha+".1.3.1.3.1.2 = Gauge32: 4",
		ha+".1.5.1.0 = INTEGER: 2", ha+".1.3.1.4.1.2 = INTEGER: 1")
	mibtest.AwaitLine(t, lines, trapOID+ha+".0.2", ha+".1.4.1.0 = STRING: \"mgmt\"", ha+".1.4.2.0 = STRING: \"mgmt-a\"",
		ha+".1.4.3.0 = STRING: \"mgmt-b\"", ha+".1.4.4.0 = Gauge32: 37", ha+".1.4.6.0 = STRING: \"failover\"")
	mibtest.AwaitLine(t, lines, trapOID+ha+".0.3", ha+".1.1.1.0 = Gauge32: 3", ha+".1.1.2.0 = INTEGER: 2")

	// STP: the first snapshot is the baseline; becoming root is newRoot;
	// a later topology change is topologyChange.
	self, _ := stp.NewBridgeID(32768, net.HardwareAddr{2, 0, 0, 0, 0, 1})
	other, _ := stp.NewBridgeID(4096, net.HardwareAddr{2, 0, 0, 0, 0, 2})
	m.Bridge(stp.Snapshot{ID: self, Root: other, TopologyChanges: 5})
	m.Bridge(stp.Snapshot{ID: self, Root: self, IsRoot: true, TopologyChanges: 6})
	mibtest.AwaitLine(t, lines, trapOID+".1.3.6.1.2.1.17.0.1")
	m.Bridge(stp.Snapshot{ID: self, Root: self, IsRoot: true, TopologyChanges: 7})
	mibtest.AwaitLine(t, lines, trapOID+".1.3.6.1.2.1.17.0.2")

	// Sent counts after Notify returns, which may be just after
	// snmptrapd printed the last one.
	deadline := time.Now().Add(5 * time.Second)
	for m.Sent() != 9 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if m.Sent() != 9 || m.Failed() != 0 || m.Dropped() != 0 {
		t.Errorf("sent/failed/dropped = %d/%d/%d, want 9/0/0", m.Sent(), m.Failed(), m.Dropped())
	}
}

// blockingNotifier never finishes a notification until released.
type blockingNotifier struct{ release chan struct{} }

func (b blockingNotifier) Notify(ctx context.Context, _ snmpagent.OID, _ ...snmpagent.Varbind) error {
	select {
	case <-b.release:
	case <-ctx.Done():
	}
	return nil
}

func TestQueueFullDrops(t *testing.T) {
	b := blockingNotifier{release: make(chan struct{})}
	m := traps.New(b, traps.Options{Queue: 2})
	for range 5 {
		m.Started(false) // Run is not running: 2 wait, 3 are dropped
	}
	if m.Dropped() != 3 {
		t.Errorf("Dropped = %d, want 3", m.Dropped())
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.Run(ctx)
	close(b.release)
	deadline := time.Now().Add(5 * time.Second)
	for m.Sent() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("Sent = %d, want 2", m.Sent())
		}
		time.Sleep(time.Millisecond)
	}
}
