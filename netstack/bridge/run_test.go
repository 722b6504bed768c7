package bridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/cgoa/cgoa/stp"
	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"
)

// Fast 802.1D timers (the smallest the standard allows) keep the tests short.
var fastTimers = stp.Config{MaxAge: 6 * time.Second, HelloTime: time.Second, ForwardDelay: 4 * time.Second}

// runAgent runs sb over br until the test ends.
func runAgent(t *testing.T, br *Bridge, sb *stp.Bridge) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- br.Run(ctx, sb) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
}

// readBPDU reads frames from c until a BPDU arrives or d passes.
func readBPDU(c *packet.Conn, d time.Duration) (*stp.BPDU, net.HardwareAddr, error) {
	buf := make([]byte, 1600)
	c.SetReadDeadline(time.Now().Add(d))
	for {
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return nil, nil, fmt.Errorf("no BPDU within %v", d)
			}
			if errors.Is(err, unix.ENETDOWN) {
				continue // reported once after the link went down
			}
			return nil, nil, err
		}
		if b, src, err := stp.ParseFrame(buf[:n]); err == nil {
			return b, src, nil
		}
	}
}

// portState is the kernel's and the agent's view of port n.
func portState(br *Bridge, sb *stp.Bridge, n uint16) (kernel, agent stp.PortState) {
	kernel, _ = br.PortState(n)
	for _, p := range sb.Snapshot().Ports {
		if p.Number == n {
			agent = p.State
		}
	}
	return kernel, agent
}

func TestRunNoSTP(t *testing.T) {
	br, _, b := openTestBridge(t)
	sb, err := br.NewSTP(fastTimers, WallClock{})
	if err != nil {
		t.Fatal(err)
	}
	q1, _ := rawSocket(t, b, "q1")
	q2, q2mac := rawSocket(t, b, "q2")
	start := time.Now()
	runAgent(t, br, sb)
	id := sb.Snapshot().ID

	// BPDUs go out of each port, from the port's MAC, as root.
	for n, c := range map[uint16]*packet.Conn{1: q1, 2: q2} {
		bpdu, src, err := readBPDU(c, 3*time.Second)
		if err != nil {
			t.Fatalf("port %d: %v", n, err)
		}
		mac, _ := br.PortMAC(n)
		if bpdu.Type != stp.TypeConfig || bpdu.BridgeID != id || bpdu.RootID != id || bpdu.PortID.Number() != n || src.String() != mac.String() {
			t.Fatalf("port %d sent %+v from %s, want a configuration BPDU of root %v port %d from %s", n, bpdu, src, id, n, mac)
		}
	}

	// Carrier loss disables the port in the agent and the kernel; carrier
	// back enables it (listening again). Done first, so that both ports
	// forward before the root change below.
	b.ip(t, "link", "set", "q2", "down")
	eventually(t, 3*time.Second, "port 2 disabled on carrier loss", func() (bool, string) {
		k, a := portState(br, sb, 2)
		return k == stp.Disabled && a == stp.Disabled, fmt.Sprintf("kernel %v, agent %v", k, a)
	})
	b.ip(t, "link", "set", "q2", "up")
	eventually(t, 3*time.Second, "port 2 listening on carrier", func() (bool, string) {
		k, a := portState(br, sb, 2)
		return k == stp.Listening && a == stp.Listening, fmt.Sprintf("kernel %v, agent %v", k, a)
	})

	// Listening, learning, forwarding, each written to the kernel.
	for _, want := range []stp.PortState{stp.Listening, stp.Learning, stp.Forwarding} {
		eventually(t, 2*fastTimers.ForwardDelay, fmt.Sprintf("port 1 %v", want), func() (bool, string) {
			k, a := portState(br, sb, 1)
			return k == want && a == want, fmt.Sprintf("kernel %v, agent %v", k, a)
		})
	}
	if took := time.Since(start); took < 2*fastTimers.ForwardDelay-time.Second {
		t.Fatalf("port 1 forwarding after %v, want about 2 x forward delay (%v)", took, 2*fastTimers.ForwardDelay)
	}

	eventually(t, 3*fastTimers.ForwardDelay, "port 2 forwarding", func() (bool, string) {
		k, a := portState(br, sb, 2)
		return k == stp.Forwarding && a == stp.Forwarding, fmt.Sprintf("kernel %v, agent %v", k, a)
	})

	// A better root on port 1: port 1 becomes the root port.
	root, _ := stp.NewBridgeID(0x1000, net.HardwareAddr{0x02, 0, 0, 0, 0, 0xaa})
	peer := &stp.BPDU{
		Type: stp.TypeConfig, RootID: root, BridgeID: root, PortID: 0x8001,
		MaxAge: 6 * 256, HelloTime: 256, ForwardDelay: 4 * 256,
	}
	frame, err := stp.MarshalFrame(net.HardwareAddr{0x02, 0, 0, 0, 0, 0xaa}, peer)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		// The emulated root's hellos.
		defer close(sent)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			q1.WriteTo(frame, &packet.Addr{HardwareAddr: stp.GroupAddress})
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	defer func() { close(stop); <-sent }()
	eventually(t, 5*time.Second, "port 1 root port toward "+root.String(), func() (bool, string) {
		s := sb.Snapshot()
		return s.Root == root && s.RootPort == 1 && s.RootPathCost == 19, fmt.Sprintf("root %v port %d cost %d", s.Root, s.RootPort, s.RootPathCost)
	})

	// Port 2 relays the new root; the BPDU guard keeps the bridge (STP
	// off, both ports forwarding) from flooding the injected BPDUs out of
	// port 2 itself.
	relayed := 0
	for relayed < 3 {
		bpdu, src, err := readBPDU(q2, 3*time.Second)
		if err != nil {
			t.Fatalf("port 2 after the root change: %v", err)
		}
		if src.String() == q2mac.String() {
			continue
		}
		if bpdu.BridgeID == root {
			t.Fatalf("port 2 peer saw the injected BPDU %+v: the bridge flooded it", bpdu)
		}
		if bpdu.RootID == root && bpdu.BridgeID == id && bpdu.RootPathCost == 19 {
			relayed++
		}
	}
	if s := sb.Snapshot(); s.Ports[0].ConfigIn == 0 {
		t.Fatalf("port 1 ConfigIn = 0 after the root change")
	}
	if c, _ := br.Counters(1); c.RxFrames == 0 || c.TxFrames == 0 {
		t.Fatalf("Counters(1) = %+v, want frames both ways", c)
	}
}
