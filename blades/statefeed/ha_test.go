package statefeed

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/cgoa/cgoa/blades/shelf"
	"github.com/cgoa/cgoa/ha"
	"github.com/cgoa/cgoa/ha/transport"
	"github.com/cgoa/cgoa/stp"
)

// haPair starts the HA core of a switch blade (slot 1) and a mgmt blade (slot 3) on
// loopback UDP, one path each.
func haPair(t *testing.T) (sw, mgmt *ha.Blade) {
	t.Helper()
	ms, err := shelf.ParseMap("1:switch,3:mgmt")
	if err != nil {
		t.Fatal(err)
	}
	timers, err := shelf.ParseTimers("50msx10")
	if err != nil {
		t.Fatal(err)
	}
	conf, err := shelf.HAConfig(1, ms, timers)
	if err != nil {
		t.Fatal(err)
	}
	key := transport.Key("statefeed test shelf key 0123456789")
	trs := map[uint8]*transport.UDPTransport{}
	blades := map[uint8]*ha.Blade{}
	for _, slot := range []uint8{1, 3} {
		b, err := ha.StartWith(ha.Options{Config: conf, Slot: slot, Key: key}, func(ep *transport.Endpoint, h transport.Handler) (transport.Transport, error) {
			tr, err := transport.ListenUDP(ep, []transport.UDPPath{{Local: netip.MustParseAddrPort("127.0.0.1:0")}}, h)
			trs[slot] = tr
			return tr, err
		})
		if err != nil {
			t.Fatal(err)
		}
		blades[slot] = b
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = b.Close(ctx)
		})
	}
	trs[1].SetPeers(0, map[uint8]netip.AddrPort{3: trs[3].LocalAddr(0)})
	trs[3].SetPeers(0, map[uint8]netip.AddrPort{1: trs[1].LocalAddr(0)})
	return blades[1], blades[3]
}

// TestOverHATransport: PublishSTP on a switch blade's HA core reaches a Feed attached to the
// mgmt blade's, through the authenticated transport; a topology change arrives as an event.
func TestOverHATransport(t *testing.T) {
	sw, mgmt := haPair(t)
	f := NewFeed(Options{})
	events := make(chan Event, 16)
	f.OnEvent(func(e Event) {
		select {
		case events <- e:
		default:
		}
	})
	if err := f.Attach(mgmt); err != nil {
		t.Fatal(err)
	}
	snaps := make(chan stp.Snapshot, 1)
	cur := bigSnapshot(4)
	src := func() stp.Snapshot {
		select {
		case s := <-snaps:
			cur = s
		default:
		}
		return cur
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- PublishSTP(ctx, sw, src, nil) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if s, ok := f.Bridge(); ok && len(s.Ports) == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot at the mgmt blade: counters %+v", f.Counters())
		}
		time.Sleep(10 * time.Millisecond)
	}
	next := cur
	next.TopologyChanges++
	snaps <- next
	select {
	case e := <-events:
		if e.Kind != TopologyChange || e.From != 1 || e.TopologyChanges != next.TopologyChanges {
			t.Errorf("event %+v, want topology-change from slot 1 count %d", e, next.TopologyChanges)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no topology-change event: counters %+v", f.Counters())
	}
	if c := f.Counters(); c.BadFrames != 0 || c.BadBodies != 0 {
		t.Errorf("counters %+v, want no bad input", c)
	}
}
