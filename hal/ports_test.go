package hal

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/cgoa/cgoa/netstack/netns"
	"github.com/cgoa/cgoa/netstack/netns/netnstest"
)

// TestPortsInNetns exercises the netlink side of the process backend in a namespace the test
// makes: list, admin state, carrier, and address add/remove.
func TestPortsInNetns(t *testing.T) {
	ns := netnstest.New(t, "hal")
	netnstest.IP(t, ns, "link", "add", "base0", "type", "veth", "peer", "name", "far0")
	if err := netns.Do(netns.Named(ns), func() error { return portsChecks(ns) }); err != nil {
		t.Fatal(err)
	}
}

func portsChecks(ns string) error {
	p, err := openPorts(func(string) bool { return false })
	if err != nil {
		return err
	}
	defer p.Close()
	if err := p.SetAdmin("base0", true); err != nil {
		return err
	}
	if err := p.SetAdmin("nosuch", true); err == nil {
		return fmt.Errorf("SetAdmin(nosuch) = nil error")
	}
	pt, err := p.Get("base0")
	if err != nil || !pt.AdminUp || pt.Carrier {
		return fmt.Errorf("Get(base0) = %+v, %v; want admin up, no carrier (far end down)", pt, err)
	}
	if err := p.AddAddress("base0", "169.254.9.1/24"); err != nil {
		return err
	}
	if err := p.AddAddress("base0", "169.254.9.1/24"); err != nil {
		return fmt.Errorf("AddAddress twice: %v", err)
	}
	out, _ := exec.Command("ip", "-n", ns, "addr", "show", "base0").CombinedOutput()
	if !strings.Contains(string(out), "169.254.9.1/24") {
		return fmt.Errorf("address not on base0: %s", out)
	}
	if err := p.DelAddress("base0", "169.254.9.1/24"); err != nil {
		return err
	}
	if err := p.DelAddress("base0", "169.254.9.1/24"); err != nil {
		return fmt.Errorf("DelAddress of an absent address: %v", err)
	}
	if err := p.AddAddress("base0", "not-a-prefix"); err == nil {
		return fmt.Errorf("AddAddress(garbage) = nil error")
	}
	return nil
}
