package bridge

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/cgoa/cgoa/stp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/packet"
)

// TestOpenRefusesNonUserMode: outside the initial network namespace the
// kernel never hands STP to user space; Open must say so rather than run
// against a bridge whose kernel STP would fight the agent.
func TestOpenRefusesNonUserMode(t *testing.T) {
	requireNetNS(t)
	a := newNetNS(t, "a")
	b := newNetNS(t, "b")
	veth(t, a, "p1", b, "q1")

	_, err := Open(Config{Name: "br0", Create: true, Ports: []Port{{Name: "p1"}}, NetNS: a.path})
	if !errors.Is(err, ErrNotUserSTP) {
		t.Fatalf("Open(user mode, netns) = %v, want %v", err, ErrNotUserSTP)
	}
	// The bridge is now in kernel STP: no-STP mode must refuse it too.
	_, err = Open(Config{Name: "br0", Ports: []Port{{Name: "p1"}}, NetNS: a.path, NoSTP: true})
	if !errors.Is(err, ErrNotOff) {
		t.Fatalf("Open(no-STP, kernel STP bridge) = %v, want %v", err, ErrNotOff)
	}
	_, err = Open(Config{Name: "nobr", Ports: []Port{{Name: "p1"}}, NetNS: a.path, NoSTP: true})
	if err == nil {
		t.Fatalf("Open(missing bridge, no Create) = nil, want an error")
	}
}

// openTestBridge makes ns a with br0 over p1, p2 (peers q1, q2 in ns b) in
// no-STP mode.
func openTestBridge(t *testing.T) (*Bridge, netNS, netNS) {
	t.Helper()
	requireNetNS(t)
	a := newNetNS(t, "a")
	b := newNetNS(t, "b")
	veth(t, a, "p1", b, "q1")
	veth(t, a, "p2", b, "q2")
	br, err := Open(Config{
		Name: "br0", Create: true, NoSTP: true, NetNS: a.path,
		Ports: []Port{{Name: "p1", PathCost: 19}, {Name: "p2", PathCost: 19}},
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { br.Close() })
	// The kernel applies carrier changes asynchronously; with STP off it
	// forwards on a port when its carrier comes up. Wait for that, then
	// start from disabled.
	for _, n := range []uint16{1, 2} {
		eventually(t, 5*time.Second, "carrier up", func() (bool, string) {
			c, err := br.Carrier(n)
			return err == nil && c, fmt.Sprint(c, err)
		})
		if err := br.SetPortState(n, stp.Disabled); err != nil {
			t.Fatal(err)
		}
	}
	return br, a, b
}

func TestPortStatesReadBack(t *testing.T) {
	br, _, _ := openTestBridge(t)
	if m, err := br.STPMode(); err != nil || m != STPOff {
		t.Fatalf("STPMode() = %v, %v, want %v", m, err, STPOff)
	}
	for _, n := range []uint16{1, 2} {
		if s, err := br.PortState(n); err != nil || s != stp.Disabled {
			t.Fatalf("PortState(%d) = %v, %v, want %v", n, s, err, stp.Disabled)
		}
	}
	for _, tc := range []struct{ write, read stp.PortState }{
		{stp.Listening, stp.Listening},
		{stp.Learning, stp.Learning},
		{stp.Forwarding, stp.Forwarding},
		// No-STP mode: the kernel would turn blocking into forwarding,
		// so blocking is held as listening.
		{stp.Blocking, stp.Listening},
		{stp.Disabled, stp.Disabled},
	} {
		if err := br.SetPortState(1, tc.write); err != nil {
			t.Fatalf("SetPortState(1, %v) = %v", tc.write, err)
		}
		if s, err := br.PortState(1); err != nil || s != tc.read {
			t.Fatalf("PortState(1) after writing %v = %v, %v, want %v", tc.write, s, err, tc.read)
		}
	}
	if err := br.SetPortState(9, stp.Forwarding); !errors.Is(err, ErrNoPort) {
		t.Fatalf("SetPortState(9) = %v, want %v", err, ErrNoPort)
	}
	c, _ := br.Counters(1)
	if c.StateWrites < 6 || c.StateErrors != 0 {
		t.Fatalf("Counters(1) = %+v, want >= 6 state writes and no errors", c)
	}
}

func TestAgeingTime(t *testing.T) {
	br, _, _ := openTestBridge(t)
	for _, d := range []time.Duration{4 * time.Second, 300 * time.Second, 15 * time.Second} {
		if err := br.SetAgeingTime(d); err != nil {
			t.Fatalf("SetAgeingTime(%v) = %v", d, err)
		}
		if got, err := br.AgeingTime(); err != nil || got != d {
			t.Fatalf("AgeingTime() after SetAgeingTime(%v) = %v, %v", d, got, err)
		}
	}
}

// TestFlushFDB: a MAC learnt on a forwarding port leaves the FDB when the
// port is flushed.
func TestFlushFDB(t *testing.T) {
	br, _, b := openTestBridge(t)
	if err := br.SetPortState(1, stp.Forwarding); err != nil {
		t.Fatal(err)
	}
	conn, _ := rawSocket(t, b, "q1")
	src := net.HardwareAddr{0x02, 0xcc, 0, 0, 0, 0x01}
	f := ethernet.Frame{
		Destination: ethernet.Broadcast, Source: src,
		EtherType: 0x88b5, // local experimental
		Payload:   make([]byte, 46),
	}
	frame, err := f.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	learnt := func() (bool, string) {
		entries, err := br.FDB()
		if err != nil {
			return false, err.Error()
		}
		return slices.ContainsFunc(entries, func(e FDBEntry) bool {
			return e.Port == 1 && e.MAC.String() == src.String() && !e.Permanent
		}), ""
	}
	eventually(t, 5*time.Second, "FDB learns "+src.String()+" on port 1", func() (bool, string) {
		if _, err := conn.WriteTo(frame, &packet.Addr{HardwareAddr: ethernet.Broadcast}); err != nil {
			return false, err.Error()
		}
		return learnt()
	})
	if err := br.FlushFDB(1); err != nil {
		t.Fatalf("FlushFDB(1) = %v", err)
	}
	if ok, _ := learnt(); ok {
		entries, _ := br.FDB()
		t.Fatalf("FDB after FlushFDB(1) = %v, still holds %s", entries, src)
	}
	// Permanent entries (the port's own address) survive a flush.
	entries, err := br.FDB()
	if err != nil {
		t.Fatal(err)
	}
	mac, _ := br.PortMAC(1)
	if !slices.ContainsFunc(entries, func(e FDBEntry) bool { return e.Port == 1 && e.Permanent && e.MAC.String() == mac.String() }) {
		t.Fatalf("FDB after flush = %v, want the local entry %s on port 1", entries, mac)
	}
}
