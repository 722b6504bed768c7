package hubpath

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"

	"github.com/cgoa/cgoa/netstack/netns"
	"github.com/cgoa/cgoa/netstack/netns/netnstest"
)

func TestPreferred(t *testing.T) {
	for _, tc := range []struct {
		hub     int
		carrier [2]bool
		want    int
	}{
		{1, [2]bool{true, true}, 0},
		{2, [2]bool{true, true}, 1},
		{0, [2]bool{true, true}, 0},
		{1, [2]bool{false, true}, 1}, // hub 1 pulled, HA has not noticed yet
		{2, [2]bool{true, false}, 0},
		{2, [2]bool{false, false}, 1},
	} {
		if got := Preferred(tc.hub, tc.carrier); got != tc.want {
			t.Errorf("Preferred(%d, %v) = %d, want %d", tc.hub, tc.carrier, got, tc.want)
		}
	}
}

func TestKnownHub(t *testing.T) {
	for _, tc := range []struct{ now, last, want int }{
		{1, 0, 1}, {2, 1, 2}, {0, 2, 2}, {0, 0, 0}, {1, 2, 1},
	} {
		if got := KnownHub(tc.now, tc.last); got != tc.want {
			t.Errorf("KnownHub(%d, %d) = %d, want %d", tc.now, tc.last, got, tc.want)
		}
	}
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func newNS(t *testing.T, tag string) string {
	t.Helper()
	name := netnstest.New(t, "hp-"+tag)
	run(t, "ip", "netns", "exec", name, "sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6")
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

// arpWatch collects the gratuitous ARPs for addr seen on ifname in ns.
type arpWatch struct {
	senders chan net.HardwareAddr
	conn    *packet.Conn
}

func watchARP(t *testing.T, ns, ifname string, addr netip.Addr) *arpWatch {
	t.Helper()
	w := &arpWatch{senders: make(chan net.HardwareAddr, 16)}
	err := netns.Do(netns.Named(ns), func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		w.conn, err = packet.Listen(ifi, packet.Raw, unix.ETH_P_ARP, nil)
		return err
	})
	if err != nil {
		t.Fatalf("packet socket on %s: %v", ifname, err)
	}
	t.Cleanup(func() { w.conn.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, _, err := w.conn.ReadFrom(buf)
			if err != nil {
				return
			}
			var p arp.Packet
			if n < 14 || p.UnmarshalBinary(buf[14:n]) != nil {
				continue
			}
			if p.SenderIP == addr && p.TargetIP == addr {
				w.senders <- p.SenderHardwareAddr
			}
		}
	}()
	return w
}

func (w *arpWatch) expect(t *testing.T, from net.HardwareAddr) {
	t.Helper()
	select {
	case got := <-w.senders:
		if got.String() != from.String() {
			t.Fatalf("gratuitous ARP from %v, want %v", got, from)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no gratuitous ARP from %v within 5 s", from)
	}
}

func macOf(t *testing.T, ns, ifname string) net.HardwareAddr {
	t.Helper()
	var l []struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal([]byte(run(t, "ip", "-n", ns, "-j", "link", "show", ifname)), &l); err != nil || len(l) != 1 {
		t.Fatalf("ip link show %s: %v", ifname, err)
	}
	m, _ := net.ParseMAC(l[0].Address)
	return m
}

// routeDev is the device `ip route get` picks for dst in ns.
func routeDev(t *testing.T, ns, dst string) string {
	t.Helper()
	var r []struct {
		Dev string `json:"dev"`
	}
	if err := json.Unmarshal([]byte(run(t, "ip", "-n", ns, "-j", "route", "get", dst)), &r); err != nil || len(r) != 1 {
		t.Fatalf("ip route get %s: %v", dst, err)
	}
	return r[0].Dev
}

func eventually(t *testing.T, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, s := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last: %s", what, within, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFollowsActiveHub: a node blade's shared address leaves through the channel toward the
// active hub, moves when the assignment moves or that channel loses carrier, and is announced
// from the new channel each time; the plane addresses stay on their channels.
func TestFollowsActiveHub(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("hubpath: needs root for network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("hubpath: needs ip (iproute2)")
	}
	node, hubs := newNS(t, "node"), newNS(t, "hubs")
	for i := range 2 {
		run(t, "ip", "-n", node, "link", "add", fmt.Sprintf("base%d", i), "type", "veth", "peer", "name", fmt.Sprintf("h%d", i), "netns", hubs)
		run(t, "ip", "-n", node, "link", "set", fmt.Sprintf("base%d", i), "up")
		run(t, "ip", "-n", hubs, "link", "set", fmt.Sprintf("h%d", i), "up")
		run(t, "ip", "-n", node, "addr", "add", fmt.Sprintf("169.254.%d.3/24", i+1), "dev", fmt.Sprintf("base%d", i))
	}
	mgmt := netip.MustParseAddr("169.254.3.1")
	w0, w1 := watchARP(t, hubs, "h0", mgmt), watchARP(t, hubs, "h1", mgmt)
	mac0, mac1 := macOf(t, node, "base0"), macOf(t, node, "base1")

	var hub atomic.Int64
	hub.Store(1)
	// No poll: the change of active hub reaches the Path by Nudge (as Follow does), in well
	// under the backstop's period.
	p := New(Config{ActiveHub: func() int { return int(hub.Load()) }, NetNS: "/var/run/netns/" + node, Poll: time.Hour, Logf: t.Logf})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
	devIs := func(dev string) func() (bool, string) {
		return func() (bool, string) {
			got := routeDev(t, node, "169.254.3.250")
			return got == dev, got
		}
	}
	// The shared address appears on both channels (as the mgmt service adds it).
	for i := range 2 {
		run(t, "ip", "-n", node, "addr", "add", "169.254.3.1/24", "dev", fmt.Sprintf("base%d", i))
	}
	eventually(t, 5*time.Second, "traffic via base0 with hub 1 active", devIs("base0"))
	w0.expect(t, mac0)

	eventually(t, 5*time.Second, "View with hub 1 active", func() (bool, string) {
		v := p.View()
		return v.Current == "base0" && v.ActiveHub == 1 && v.Carrier == [2]bool{true, true}, fmt.Sprintf("%+v", v)
	})
	hub.Store(2)
	p.Nudge()
	eventually(t, safetyPeriod/2, "traffic via base1 with hub 2 active, on a nudge", devIs("base1"))
	w1.expect(t, mac1)
	// The preferred route moves first; the other channel's comes back as the fallback.
	eventually(t, 5*time.Second, fmt.Sprintf("routes of the shared prefix: base1 metric %d, base0 metric %d", PreferredMetric, FallbackMetric), func() (bool, string) {
		var routes []struct {
			Dev    string `json:"dev"`
			Metric int    `json:"metric"`
		}
		out := run(t, "ip", "-n", node, "-j", "route", "show", "169.254.3.0/24")
		if err := json.Unmarshal([]byte(out), &routes); err != nil {
			t.Fatal(err)
		}
		metrics := map[string]int{}
		for _, r := range routes {
			metrics[r.Dev] = r.Metric
		}
		return len(routes) == 2 && metrics["base1"] == PreferredMetric && metrics["base0"] == FallbackMetric, out
	})

	// Hub 2 pulled: base1 loses carrier before HA notices; traffic moves to base0 at once.
	run(t, "ip", "-n", hubs, "link", "set", "h1", "down")
	eventually(t, 5*time.Second, "traffic via base0 when base1 loses carrier", devIs("base0"))
	w0.expect(t, mac0)
	// show hubpath says so: the channel toward the pulled (still active) hub has no carrier.
	eventually(t, 5*time.Second, "View after hub 2's channel lost carrier", func() (bool, string) {
		v := p.View()
		return v.Current == "base0" && v.ActiveHub == 2 && v.Carrier == [2]bool{true, false} && v.Shared != "", fmt.Sprintf("%+v", v)
	})
	var text strings.Builder
	WriteView(&text, p.View())
	if !strings.HasPrefix(text.String(), "traffic via base0 (active hub 2;") {
		t.Fatalf("WriteView = %q, want it to start with the channel in use", text.String())
	}

	// The plane addresses keep their own channels.
	if d := routeDev(t, node, "169.254.2.9"); d != "base1" {
		t.Fatalf("plane 2 route via %s, want base1", d)
	}
	if d := routeDev(t, node, "169.254.1.9"); d != "base0" {
		t.Fatalf("plane 1 route via %s, want base0", d)
	}
	if p.Changes.Load() < 3 || p.GARPs.Load() < 3 || p.Errors.Load() != 0 {
		t.Fatalf("counters: changes %d, GARPs %d, errors %d; want >= 3, >= 3, 0", p.Changes.Load(), p.GARPs.Load(), p.Errors.Load())
	}
}

// TestOneChannelIdle: on a blade with one channel (a one-hub shelf) there is nothing to
// choose, and the path must not list the links again at every poll of the active hub (it
// did: half of an idle emulated mgmt blade's CPU in the single-mgmt shelf).
func TestOneChannelIdle(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("hubpath: needs root for network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("hubpath: needs ip (iproute2)")
	}
	node, hubs := newNS(t, "node1"), newNS(t, "hub1")
	run(t, "ip", "-n", node, "link", "add", "base0", "type", "veth", "peer", "name", "h0", "netns", hubs)
	run(t, "ip", "-n", node, "link", "set", "base0", "up")
	run(t, "ip", "-n", hubs, "link", "set", "h0", "up")
	p := New(Config{ActiveHub: func() int { return 1 }, NetNS: "/var/run/netns/" + node, Poll: time.Millisecond, Logf: t.Logf})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	}()
	eventually(t, 10*time.Second, "200 reads of the active hub", func() (bool, string) {
		n := p.polls.Load()
		return n >= 200, fmt.Sprint(n, " reads")
	})
	// The first decision, and those the link's netlink events may cause.
	if n := p.Reconciles.Load(); n > 5 {
		t.Errorf("%d decisions over 200 reads of an unchanged active hub with one channel, want a handful", n)
	}
	if v := p.View(); v.Current != "" {
		t.Errorf("View().Current = %q with one channel, want none", v.Current)
	}
}
