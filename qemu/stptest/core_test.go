package stptest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgoa/cgoa/netstack/netns/netnstest"
	"github.com/cgoa/cgoa/stp"
)

// coreNet is the test's core network: one namespace holding the LAN the hubs' uplinks face
// (a bridge with STP off) and the kernel STP bridges.
type coreNet struct {
	ns string
}

func newCoreNet(t *testing.T) *coreNet {
	t.Helper()
	c := &coreNet{ns: netnstest.New(t, "stp")}
	run(t, "ip", "netns", "exec", c.ns, "sh", "-c",
		"echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6")
	c.ip(t, "link", "set", "lo", "up")
	// The LAN: STP off, so it passes BPDUs between its ports like a wire.
	c.ip(t, "link", "add", "lan", "type", "bridge", "stp_state", "0")
	c.ip(t, "link", "set", "lan", "up")
	return c
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (c *coreNet) ip(t *testing.T, args ...string) string {
	t.Helper()
	return run(t, append([]string{"ip", "-n", c.ns}, args...)...)
}

// Fast 802.1D timers (the smallest the standard allows), in the kernel's centiseconds.
const (
	fastMaxAge   = 6 * time.Second
	fastHello    = time.Second
	fastFwdDelay = 4 * time.Second
)

// addKernelBridge makes a kernel STP bridge with the given priority and address.
func (c *coreNet) addKernelBridge(t *testing.T, name string, prio uint16, mac string) {
	t.Helper()
	c.ip(t, "link", "add", name, "address", mac, "type", "bridge", "stp_state", "1",
		"priority", strconv.Itoa(int(prio)),
		"forward_delay", strconv.Itoa(int(fastFwdDelay/(10*time.Millisecond))),
		"hello_time", strconv.Itoa(int(fastHello/(10*time.Millisecond))),
		"max_age", strconv.Itoa(int(fastMaxAge/(10*time.Millisecond))))
	c.ip(t, "link", "set", name, "up")
}

// wire makes a veth pair a (in bridge ba) - b (in bridge bb), both ports with the given cost.
func (c *coreNet) wire(t *testing.T, a, ba, b, bb string, cost int) {
	t.Helper()
	c.ip(t, "link", "add", a, "type", "veth", "peer", "name", b)
	for _, x := range [][2]string{{a, ba}, {b, bb}} {
		c.ip(t, "link", "set", x[0], "master", x[1])
		c.ip(t, "link", "set", x[0], "up")
		if x[1] != "lan" {
			run(t, "bridge", "-n", c.ns, "link", "set", "dev", x[0], "cost", strconv.Itoa(cost))
		}
	}
}

func (c *coreNet) setPriority(t *testing.T, br string, prio uint16) {
	t.Helper()
	c.ip(t, "link", "set", br, "type", "bridge", "priority", strconv.Itoa(int(prio)))
}

type kernelPort struct {
	Name   string
	State  string
	PortNo uint16
	PortID stp.PortID
	Cost   uint32
}

type kernelBridgeInfo struct {
	RootPort uint16
	TC, TCD  bool
	Ports    []kernelPort
}

func parseHex16(s string) (uint16, error) {
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 16)
	return uint16(v), err
}

// kernelBridge reads a kernel bridge's root port, topology change flags and ports.
func (c *coreNet) kernelBridge(t *testing.T, br string) kernelBridgeInfo {
	t.Helper()
	var info kernelBridgeInfo
	var self []struct {
		Linkinfo struct {
			Data struct {
				RootPort int `json:"root_port"`
				TC       int `json:"topology_change"`
				TCD      int `json:"topology_change_detected"`
			} `json:"info_data"`
		} `json:"linkinfo"`
	}
	if err := json.Unmarshal([]byte(c.ip(t, "-j", "-d", "link", "show", "dev", br)), &self); err != nil || len(self) != 1 {
		t.Fatalf("ip -d link show %s: %v", br, err)
	}
	d := self[0].Linkinfo.Data
	info.RootPort, info.TC, info.TCD = uint16(d.RootPort), d.TC != 0, d.TCD != 0
	var ports []struct {
		Ifname   string `json:"ifname"`
		Linkinfo struct {
			Data struct {
				State  string `json:"state"`
				PortNo string `json:"no"`
				PortID string `json:"id"`
				Cost   uint32 `json:"cost"`
			} `json:"info_slave_data"`
		} `json:"linkinfo"`
	}
	if err := json.Unmarshal([]byte(c.ip(t, "-j", "-d", "link", "show", "master", br)), &ports); err != nil {
		t.Fatalf("ip -d link show master %s: %v", br, err)
	}
	for _, p := range ports {
		d := p.Linkinfo.Data
		no, err1 := parseHex16(d.PortNo)
		id, err2 := parseHex16(d.PortID)
		if err1 != nil || err2 != nil {
			t.Fatalf("%s port %s: port_no %q, port_id %q", br, p.Ifname, d.PortNo, d.PortID)
		}
		info.Ports = append(info.Ports, kernelPort{Name: p.Ifname, State: d.State, PortNo: no, PortID: stp.PortID(id), Cost: d.Cost})
	}
	return info
}

// addTo adds a kernel bridge's ports to the network description (LANs from lans, by port).
func (k kernelBridgeInfo) addTo(n *network, name string, id stp.BridgeID, lans map[string]string, rename map[string]string) {
	n.Bridges = append(n.Bridges, netBridge{Name: name, ID: id})
	for _, p := range k.Ports {
		pn := p.Name
		if r, ok := rename[pn]; ok {
			pn = r
		}
		n.Ports = append(n.Ports, netPort{Bridge: name, Name: pn, ID: p.PortID, Cost: p.Cost, LAN: lans[p.Name]})
	}
}

// observe adds a kernel bridge's roles to tr; false while it has not converged (a port
// listening or learning).
func (k kernelBridgeInfo) observe(tr *tree, name string, rename map[string]string) bool {
	if k.RootPort == 0 {
		if tr.Root != "" {
			return false // two roots: not converged
		}
		tr.Root = name
	}
	for _, p := range k.Ports {
		pn := p.Name
		if r, ok := rename[pn]; ok {
			pn = r
		}
		role := ""
		switch {
		case p.State == "disabled":
			continue // no carrier: not part of the tree
		case p.State == "forwarding" && p.PortNo == k.RootPort:
			role = roleRoot
		case p.State == "forwarding":
			role = roleDesignated
		case p.State == "blocking":
			role = roleBlocked
		default:
			return false
		}
		tr.Roles[name+"."+pn] = role
	}
	return true
}

// capture runs tshark on the given interfaces of the namespace into a file until stop.
type capture struct {
	cmd  *exec.Cmd
	file string
	done chan error
}

func (c *coreNet) startCapture(t *testing.T, ifaces ...string) *capture {
	t.Helper()
	file := t.TempDir() + "/bpdus.pcapng"
	// tshark runs as root here; -w to a file it creates itself.
	args := []string{"netns", "exec", c.ns, "tshark", "-q", "-w", file, "-f", "ether dst 01:80:c2:00:00:00"}
	for _, i := range ifaces {
		args = append(args, "-i", i)
	}
	cmd := exec.Command("ip", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("tshark: %v", err)
	}
	cp := &capture{cmd: cmd, file: file, done: make(chan error, 1)}
	go func() { cp.done <- cmd.Wait() }()
	t.Cleanup(func() { cp.stop() })
	return cp
}

// stop ends the capture (SIGINT, so tshark closes the file properly).
func (cp *capture) stop() {
	if cp.cmd.Process == nil {
		return
	}
	syscall.Kill(-cp.cmd.Process.Pid, syscall.SIGINT)
	select {
	case <-cp.done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-cp.cmd.Process.Pid, syscall.SIGKILL)
		<-cp.done
	}
	cp.cmd.Process = nil
}

// tsharkCount counts the frames of a capture file matching a display filter.
func tsharkCount(t *testing.T, file, filter string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "tshark", "-r", file, "-Y", filter, "-T", "fields", "-e", "frame.number").Output()
	if err != nil {
		t.Fatalf("tshark -r %s -Y %q: %v", file, filter, err)
	}
	return len(strings.Fields(string(out)))
}

func needTools(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root (network namespaces, tap devices)")
	}
	for _, tool := range []string{"ip", "bridge", "tshark"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipOrFail(t, fmt.Sprintf("needs %s (Debian packages iproute2, tshark)", tool))
		}
	}
}

func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CGOA_REQUIRE_VM") == "1" {
		t.Fatalf("CGOA_REQUIRE_VM=1 but %s", why)
	}
	t.Skip(why)
}
