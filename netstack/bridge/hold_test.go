package bridge

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cgoa/cgoa/stp"
)

// TestHoldAndEdgePorts: Hold keeps the STP ports blocking and the edge
// ports forwarding, putting back states changed behind its back; a Run
// that follows it takes the STP ports through the tree while the edge
// port stays forwarding.
func TestHoldAndEdgePorts(t *testing.T) {
	requireNetNS(t)
	a := newNetNS(t, "a")
	b := newNetNS(t, "b")
	veth(t, a, "p1", b, "q1")
	veth(t, a, "p2", b, "q2")
	veth(t, a, "e1", b, "f1")
	br, err := Open(Config{
		Name: "br0", Create: true, NoSTP: true, NetNS: a.path,
		Ports:     []Port{{Name: "p1", PathCost: 19}, {Name: "p2", PathCost: 19}},
		EdgePorts: []string{"e1"},
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { br.Close() })
	if got := br.EdgePorts(); len(got) != 1 || got[0] != "e1" {
		t.Fatalf("EdgePorts() = %v, want [e1]", got)
	}
	if _, err := br.EdgeState("p1"); !errors.Is(err, ErrNoPort) {
		t.Fatalf("EdgeState(p1) = %v, want %v", err, ErrNoPort)
	}
	edgeIs := func(want stp.PortState) func() (bool, string) {
		return func() (bool, string) {
			s, err := br.EdgeState("e1")
			return err == nil && s == want, fmt.Sprint(s, err)
		}
	}
	stpIs := func(n uint16, want stp.PortState) func() (bool, string) {
		return func() (bool, string) {
			s, err := br.PortState(n)
			return err == nil && s == want, fmt.Sprint(s, err)
		}
	}
	eventually(t, 5*time.Second, "edge port forwarding after Open", edgeIs(stp.Forwarding))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- br.Hold(ctx) }()
	// No-STP mode holds blocking as listening (see Config.NoSTP).
	for _, n := range []uint16{1, 2} {
		eventually(t, 5*time.Second, fmt.Sprintf("port %d held blocking", n), stpIs(n, stp.Listening))
	}
	// Changed behind Hold's back: put back.
	a.exec(t, "bridge", "link", "set", "dev", "p1", "state", "3")
	a.exec(t, "bridge", "link", "set", "dev", "e1", "state", "1")
	eventually(t, 5*time.Second, "port 1 blocked again", stpIs(1, stp.Listening))
	eventually(t, 5*time.Second, "edge port forwarding again", edgeIs(stp.Forwarding))
	// Carrier loss and return on the edge port: forwarding again.
	b.ip(t, "link", "set", "f1", "down")
	eventually(t, 5*time.Second, "edge port disabled on carrier loss", edgeIs(stp.Disabled))
	b.ip(t, "link", "set", "f1", "up")
	eventually(t, 5*time.Second, "edge port forwarding on carrier", edgeIs(stp.Forwarding))
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Hold = %v", err)
	}
	if c := br.BridgeCounters(); c.Resyncs < 3 {
		t.Fatalf("BridgeCounters() = %+v, want at least 3 resyncs", c)
	}

	// The agent takes over: its ports walk to forwarding, the edge port stays.
	sb, err := br.NewSTP(fastTimers, WallClock{})
	if err != nil {
		t.Fatal(err)
	}
	runAgent(t, br, sb)
	for _, n := range []uint16{1, 2} {
		// Root of its own tree: both ports designated, forwarding after 2 x 4 s.
		eventually(t, 15*time.Second, fmt.Sprintf("port %d forwarding under the agent", n), stpIs(n, stp.Forwarding))
	}
	if s, err := br.EdgeState("e1"); err != nil || s != stp.Forwarding {
		t.Fatalf("EdgeState(e1) under the agent = %v, %v, want forwarding", s, err)
	}
	if err := br.FlushAllFDB(); err != nil {
		t.Fatalf("FlushAllFDB() = %v", err)
	}
}
