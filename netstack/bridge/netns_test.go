package bridge

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"

	"github.com/cgoa/cgoa/netstack/netns"
	"github.com/cgoa/cgoa/netstack/netns/netnstest"
)

// requireNetNS skips the test unless it can make network namespaces.
func requireNetNS(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("bridge: needs root for network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("bridge: needs the ip command (iproute2)")
	}
}

// netNS is a network namespace the test made; it is deleted in t.Cleanup.
type netNS struct {
	name string
	path string
}

// newNetNS makes a namespace with IPv6 off (so the only traffic on its
// links is what the test sends) and lo up.
func newNetNS(t *testing.T, tag string) netNS {
	t.Helper()
	name := netnstest.New(t, "brt-"+tag)
	ns := netNS{name: name, path: "/var/run/netns/" + name}
	for _, k := range []string{"all", "default"} {
		ns.exec(t, "sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/"+k+"/disable_ipv6")
	}
	ns.ip(t, "link", "set", "lo", "up")
	return ns
}

func ip(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (ns netNS) ip(t *testing.T, args ...string) string {
	t.Helper()
	return ip(t, append([]string{"-n", ns.name}, args...)...)
}

func (ns netNS) exec(t *testing.T, args ...string) string {
	t.Helper()
	return ip(t, append([]string{"netns", "exec", ns.name}, args...)...)
}

// veth joins a in ns x with b in ns y, both up.
func veth(t *testing.T, x netNS, a string, y netNS, b string) {
	t.Helper()
	x.ip(t, "link", "add", a, "type", "veth", "peer", "name", b, "netns", y.name)
	x.ip(t, "link", "set", a, "up")
	y.ip(t, "link", "set", b, "up")
}

// rawSocket is a packet socket on ifname in ns (ETH_P_ALL, incoming
// frames only when filtered by the caller).
func rawSocket(t *testing.T, ns netNS, ifname string) (*packet.Conn, net.HardwareAddr) {
	t.Helper()
	var (
		c   *packet.Conn
		mac net.HardwareAddr
	)
	err := netns.Do(ns.path, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		mac = ifi.HardwareAddr
		c, err = packet.Listen(ifi, packet.Raw, unix.ETH_P_ALL, nil)
		return err
	})
	if err != nil {
		t.Fatalf("packet socket on %s in %s: %v", ifname, ns.name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c, mac
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	last := ""
	for {
		ok, state := cond()
		if ok {
			return
		}
		if state != "" {
			last = state
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last seen: %s", what, within, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
