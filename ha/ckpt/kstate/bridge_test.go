package kstate

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cgoa/cgoa/netstack/netns/netnstest"
)

func ipRun(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v %s", strings.Join(args, " "), err, out)
	}
}

// mkBridgeNS makes a namespace with bridge br0 (kernel STP off) and
// ports p1..p3 (veth, peers q1..q3 up so the ports have carrier).
func mkBridgeNS(t *testing.T, tag string) (string, int) {
	t.Helper()
	name := netnstest.New(t, tag)
	ipRun(t, "ip", "-n", name, "link", "add", "br0", "type", "bridge", "stp_state", "0")
	ipRun(t, "ip", "-n", name, "link", "set", "br0", "up")
	for _, i := range []string{"1", "2", "3"} {
		ipRun(t, "ip", "-n", name, "link", "add", "p"+i, "type", "veth", "peer", "name", "q"+i)
		ipRun(t, "ip", "-n", name, "link", "set", "p"+i, "master", "br0")
		ipRun(t, "ip", "-n", name, "link", "set", "q"+i, "up")
		ipRun(t, "ip", "-n", name, "link", "set", "p"+i, "up")
	}
	f, err := os.Open("/var/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	// The kernel takes a port to forwarding when it sees its carrier
	// (linkwatch, asynchronously): wait for that, or it would overwrite
	// the states the test sets.
	fwd := `{"bridge":"br0","ports":[{"port":"p1","state":"forwarding"},{"port":"p2","state":"forwarding"},{"port":"p3","state":"forwarding"}]}`
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := CaptureBridgePorts(int(f.Fd()), "br0")
		if err == nil && string(b) == fwd {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ports of br0 in %s not forwarding after 10s: %s %v", name, b, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return name, int(f.Fd())
}

// TestBridgePortsAcrossNamespaces sets port states on a bridge in
// namespace A (STP off, so the states are ours to set), captures them
// through rtnetlink, restores them into the same-named bridge in
// namespace B (all ports forwarding) and compares.
func TestBridgePortsAcrossNamespaces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("kstate: needs root for network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("kstate: needs the ip command")
	}
	nsA, a := mkBridgeNS(t, "ckpt-bra")
	nsB, b := mkBridgeNS(t, "ckpt-brb")
	// A: p1 disabled, p2 learning, p3 forwarding (the default). B: p3
	// listening, so the restore has to change every port. (Blocking is no
	// state to set with STP off: the kernel makes a designated blocking
	// port forwarding at once; a user-space STP agent discards with
	// listening, see netstack/bridge.)
	ipRun(t, "ip", "netns", "exec", nsA, "bridge", "link", "set", "dev", "p1", "state", "0")
	ipRun(t, "ip", "netns", "exec", nsA, "bridge", "link", "set", "dev", "p2", "state", "2")
	ipRun(t, "ip", "netns", "exec", nsB, "bridge", "link", "set", "dev", "p3", "state", "1")
	sec, err := CaptureBridgePorts(a, "br0")
	if err != nil {
		t.Fatal(err)
	}
	bp, err := DecodePorts(sec)
	want := []BridgePort{{"p1", Disabled}, {"p2", Learning}, {"p3", Forwarding}}
	if err != nil || bp.Bridge != "br0" || len(bp.Ports) != 3 || bp.Ports[0] != want[0] || bp.Ports[1] != want[1] || bp.Ports[2] != want[2] {
		t.Fatalf("CaptureBridgePorts(A, br0) = %s (%v), want %v", sec, err, want)
	}
	if err := RestoreBridgePorts(b, sec); err != nil {
		t.Fatal(err)
	}
	got, err := CaptureBridgePorts(b, "br0")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(sec) {
		t.Errorf("bridge ports in B = %s, want A's %s", got, sec)
	}
	// The kernel's own view (not our decoder's): bridge link show.
	out, err := exec.Command("ip", "netns", "exec", nsB, "bridge", "link", "show", "dev", "p1").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "state disabled") {
		t.Errorf("bridge link show dev p1 in B = %s (%v), want state disabled", out, err)
	}
	// A state the kernel does not keep is reported, not taken as done.
	blocking := []byte(`{"bridge":"br0","ports":[{"port":"p2","state":"blocking"}]}`)
	if err := RestoreBridgePorts(b, blocking); err == nil || !strings.Contains(err.Error(), "after writing blocking") {
		t.Errorf("RestoreBridgePorts(p2 blocking, STP off) = %v, want the read-back error", err)
	}
	// A section naming a port B lacks is an error, not a partial success
	// that looks whole.
	ipRun(t, "ip", "-n", nsB, "link", "del", "p3")
	if err := RestoreBridgePorts(b, sec); err == nil || !strings.Contains(err.Error(), "p3") {
		t.Errorf("RestoreBridgePorts(B without p3) = %v, want an error naming p3", err)
	}
	if _, err := CaptureBridgePorts(b, "q1"); err == nil {
		t.Errorf("CaptureBridgePorts(q1, not a bridge) = nil error")
	}
}

func TestDecodePortsRejects(t *testing.T) {
	for _, b := range []string{``, `{`, `{"ports":[]}`, `{"bridge":"br0","ports":[{"port":"","state":"forwarding"}]}`,
		`{"bridge":"br0","ports":[{"port":"p1","state":"sleeping"}]}`, `{"bridge":"br0","ports":[{"port":"p1","state":3}]}`,
		`{"bridge":"a-name-far-too-long-for-linux","ports":[]}`} {
		if _, err := DecodePorts([]byte(b)); !errors.Is(err, ErrBadPorts) {
			t.Errorf("DecodePorts(%q) = %v, want %v", b, err, ErrBadPorts)
		}
	}
}

func FuzzDecodePorts(f *testing.F) {
	f.Add([]byte(`{"bridge":"br0","ports":[{"port":"p1","state":"blocking"},{"port":"p2","state":"forwarding"}]}`))
	f.Add([]byte(`{"bridge":"br0","ports":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		bp, err := DecodePorts(b)
		if err != nil {
			return
		}
		if len(bp.Ports) > MaxPorts || !validIfName(bp.Bridge) {
			t.Fatalf("DecodePorts accepted %+v", bp)
		}
		for _, p := range bp.Ports {
			if _, err := p.State.MarshalText(); err != nil {
				t.Fatalf("DecodePorts accepted state %d", p.State)
			}
		}
	})
}
