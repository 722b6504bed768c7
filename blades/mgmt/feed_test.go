package mgmt

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/cgoa/cgoa/blades/console"
	"github.com/cgoa/cgoa/blades/statefeed"
	"github.com/cgoa/cgoa/ha/transport"
	"github.com/cgoa/cgoa/snmpagent"
	"github.com/cgoa/cgoa/snmpagent/mib/bridgemib"
	"github.com/cgoa/cgoa/snmpagent/mib/entitymib"
	"github.com/cgoa/cgoa/snmpagent/mib/eponmib"
	"github.com/cgoa/cgoa/snmpagent/mib/ifmib"
	"github.com/cgoa/cgoa/stp"
)

// feedSender delivers a publisher's frames into a Feed as slot from (the HA transport's part).
type feedSender struct {
	f    *statefeed.Feed
	from uint8
}

func (s feedSender) Send(_ transport.Type, _ uint8, p []byte) error {
	s.f.Receive(s.from, p)
	return nil
}

// TestFeedServedAndTrapped: with the EPON blade in slot 5 and the switch blade in slot 1
// publishing into the mgmt blade's feed (in memory), the agent serves their ONUs in
// DOT3-EPON-MIB and their bridge in BRIDGE-MIB, and an ONU registration becomes
// cgoaEponOnuRegistered at the notification target.
func TestFeedServedAndTrapped(t *testing.T) {
	feed := statefeed.NewFeed(statefeed.Options{})
	addr := freeUDP(t)
	s := NewSNMP(SNMPConfig{Addr: addr, Ckpt: &memCkpt{}, Ports: &fakePorts{}, Feed: feed,
		Inventory: entitymib.InventoryFunc(func() (entitymib.Shelf, error) { return entitymib.Shelf{Number: 1}, nil }),
		Defaults:  DefaultConfig, Logf: t.Logf})
	s.ifs = ifmib.New(&fakePorts{}, ifmib.Options{Speed: func(string) uint64 { return 1e9 }})
	con := console.New()
	s.RegisterCommands(con)
	ctx, cancel := context.WithCancel(context.Background())
	b := &testBlade{s: s, con: con, cancel: cancel, done: make(chan struct{})}
	go func() { s.Run(ctx); close(b.done) }()
	t.Cleanup(b.kill)
	s.SetActive(true)
	waitUp(t, b)
	if out := b.run(t, "snmp community add lo ro 127.0.0.0/8"); !strings.HasPrefix(out, "community lo added") {
		t.Fatalf("snmp community add = %q", out)
	}
	trapConn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer trapConn.Close()
	if err := s.change(func(a *snmpagent.Agent) error {
		return a.AddTarget(snmpagent.Target{Name: "nms", Addr: trapConn.LocalAddr().(*net.UDPAddr).AddrPort(),
			Version: gosnmp.Version2c, Community: "traps"})
	}); err != nil {
		t.Fatal(err)
	}

	epon := statefeed.NewPublisher(feedSender{feed, 5})
	if err := epon.EPON(statefeed.EPONState{PONs: []statefeed.PON{{Name: "pon0", Index: 0, ONUs: []statefeed.ONU{
		{LLID: 1, MAC: [6]byte{2, 0, 0, 0, 0x20, 1}, State: statefeed.Registered, RTT: 700, OAMStatus: 9},
		{LLID: 2, MAC: [6]byte{2, 0, 0, 0, 0x20, 2}, State: statefeed.Registered, RTT: 710, OAMStatus: 9},
	}}}}); err != nil {
		t.Fatal(err)
	}
	sw := statefeed.NewPublisher(feedSender{feed, 1})
	if err := sw.STP(statefeed.STPState{Active: true, Snapshot: stp.Snapshot{ID: 0x8000_0200_0000_0001, Priority: 0x8000,
		Ports: []stp.PortSnapshot{{Number: 1, Name: "base3", State: stp.Forwarding, Enabled: true}}}}); err != nil {
		t.Fatal(err)
	}

	c := &gosnmp.GoSNMP{Target: "127.0.0.1", Port: addr.Port(), Version: gosnmp.Version2c, Community: "lo",
		Timeout: time.Second, Retries: 3, MaxRepetitions: 20}
	if err := c.Connect(); err != nil {
		t.Fatal(err)
	}
	defer c.Conn.Close()
	pdus, err := c.BulkWalkAll(eponmib.OIDControlEntry.Append(eponmib.ColRegistrationState).String())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{
		eponmib.OIDControlEntry.Append(eponmib.ColRegistrationState, EPONIfIndex(5, 0, 1)).String():                     3,
		eponmib.OIDControlEntry.Append(eponmib.ColRegistrationState, EPONIfIndex(5, 0, 2)).String():                     3,
		eponmib.OIDControlEntry.Append(eponmib.ColRegistrationState, EPONIfIndex(5, 0, eponmib.BroadcastLLID)).String(): 1,
	}
	if len(pdus) != len(want) {
		t.Fatalf("dot3MpcpRegistrationState walk = %d rows, want %d", len(pdus), len(want))
	}
	for _, p := range pdus {
		if v, ok := want["."+strings.TrimPrefix(p.Name, ".")]; !ok || gosnmp.ToBigInt(p.Value).Int64() != int64(v) {
			t.Errorf("%s = %v, want one of %v", p.Name, p.Value, want)
		}
	}
	oam, err := c.Get([]string{eponmib.OIDOamEntry.Append(2, EPONIfIndex(5, 0, 1)).String()})
	if err != nil || len(oam.Variables) != 1 || gosnmp.ToBigInt(oam.Variables[0].Value).Int64() != 9 {
		t.Errorf("dot3OamOperStatus of LLID 1 = %+v, %v; want operational(9)", oam, err)
	}
	pkt, err := c.Get([]string{bridgemib.OIDBase.Append(1, 0).String(), bridgemib.OIDStp.Append(2, 0).String()})
	if err != nil || len(pkt.Variables) != 2 || pkt.Variables[0].Type != gosnmp.OctetString ||
		gosnmp.ToBigInt(pkt.Variables[1].Value).Int64() != 0x8000 {
		t.Fatalf("BRIDGE-MIB dot1dBaseBridgeAddress, dot1dStpPriority = %+v, %v", pkt, err)
	}

	if err := epon.Event(statefeed.Event{Kind: statefeed.ONURegistered, PON: "pon0", PONIndex: 0, LLID: 2,
		MAC: [6]byte{2, 0, 0, 0, 0x20, 2}, RTT: 710}); err != nil {
		t.Fatal(err)
	}
	var v SNMPView
	if err := json.Unmarshal([]byte(b.run(t, "show snmp json")), &v); err != nil {
		t.Fatal(err)
	}
	if v.Feed == nil || v.Feed.EPONBlades != 1 || v.Feed.ONUs != 2 || !v.Feed.Bridge || v.Feed.Publications != 2 {
		t.Errorf("show snmp json feed = %+v, want 1 EPON blade, 2 ONUs, a bridge, 2 publications", v.Feed)
	}
	wantTrap := eponmib.OIDOnuRegistered.String()
	buf := make([]byte, 4096)
	deadline := time.Now().Add(10 * time.Second)
	for {
		trapConn.SetReadDeadline(deadline)
		n, err := trapConn.Read(buf)
		if err != nil {
			t.Fatalf("no cgoaEponOnuRegistered trap: %v", err)
		}
		tp, err := (&gosnmp.GoSNMP{Version: gosnmp.Version2c}).SnmpDecodePacket(buf[:n])
		if err != nil || len(tp.Variables) < 2 || tp.Variables[1].Value != wantTrap {
			continue // coldStart and others
		}
		link := eponmib.OIDControlEntry.Append(eponmib.ColLinkID, EPONIfIndex(5, 0, 2)).String()
		if len(tp.Variables) != 5 || tp.Variables[2].Name != link || gosnmp.ToBigInt(tp.Variables[2].Value).Int64() != 2 {
			t.Errorf("trap varbinds %+v, want %s = 2 first", tp.Variables, link)
		}
		break
	}
	// The switch blade's events: topologyChange, then newRoot (RFC 4188), in order.
	for _, k := range []statefeed.EventKind{statefeed.TopologyChange, statefeed.NewRoot} {
		if err := sw.Event(statefeed.Event{Kind: k}); err != nil {
			t.Fatal(err)
		}
	}
	order := []string{bridgemib.OIDTopologyChange.String(), bridgemib.OIDNewRoot.String()}
	for len(order) > 0 {
		trapConn.SetReadDeadline(deadline)
		n, err := trapConn.Read(buf)
		if err != nil {
			t.Fatalf("waiting for %v: %v", order, err)
		}
		tp, err := (&gosnmp.GoSNMP{Version: gosnmp.Version2c}).SnmpDecodePacket(buf[:n])
		if err != nil || len(tp.Variables) < 2 {
			continue
		}
		switch tp.Variables[1].Value {
		case order[0]:
			order = order[1:]
		case bridgemib.OIDTopologyChange.String(), bridgemib.OIDNewRoot.String():
			t.Fatalf("trap %v before %v", tp.Variables[1].Value, order[0])
		}
	}
}
