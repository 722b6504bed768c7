package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	nsutil "github.com/cgoa/cgoa/netstack/netns"
)

// backplane is a dual-star backplane made of network namespaces: one "hubs" namespace with
// bridges hub1 and hub2 joined by an inter-switch link, one namespace per blade with base0 to
// hub1 and base1 to hub2, and a prober namespace on hub1 standing for the core network.
type backplane struct {
	t      *testing.T
	prefix string
}

func newBackplane(t *testing.T) *backplane {
	t.Helper()
	newNetnsCheck(t)
	bp := &backplane{t: t, prefix: fmt.Sprintf("cgoa-bp%d", os.Getpid()%100000)}
	t.Cleanup(func() {
		for _, n := range []string{"hubs", "prober", "s3", "s4", "s5"} {
			_ = exec.Command("ip", "netns", "del", bp.ns(n)).Run()
		}
	})
	run(t, "ip", "netns", "add", bp.ns("hubs"))
	h := netns(bp.ns("hubs"))
	for _, br := range []string{"hub1", "hub2"} {
		h.ip(t, "link", "add", br, "type", "bridge", "stp_state", "0", "forward_delay", "0")
		h.ip(t, "link", "set", br, "up")
	}
	h.ip(t, "link", "add", "isl-a", "type", "veth", "peer", "name", "isl-b")
	h.ip(t, "link", "set", "isl-a", "master", "hub1", "up")
	h.ip(t, "link", "set", "isl-b", "master", "hub2", "up")
	return bp
}

func newNetnsCheck(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("process-mode HA tests need root (network namespaces)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("process-mode HA tests need iproute2's ip")
	}
}

func (bp *backplane) ns(n string) string { return bp.prefix + "-" + n }

// attach makes namespace n with port ifname linked into hub bridge br.
func (bp *backplane) attach(n, ifname, br string) {
	t := bp.t
	if exec.Command("ip", "netns", "pids", bp.ns(n)).Run() != nil {
		run(t, "ip", "netns", "add", bp.ns(n))
	}
	far := fmt.Sprintf("%s-%s", n, ifname)
	h := netns(bp.ns("hubs"))
	h.ip(t, "link", "add", far, "type", "veth", "peer", "name", ifname, "netns", bp.ns(n))
	h.ip(t, "link", "set", far, "master", br, "up")
	netns(bp.ns(n)).ip(t, "link", "set", ifname, "up")
}

// TestProcessModeMgmtFailover: three firmware processes (mgmt in slots 3 and 4, epon in 5) on
// the backplane; the prober reaches the management address; kill -9 of the active mgmt
// process moves the address to the other mgmt blade, which answers the probe.
func TestProcessModeMgmtFailover(t *testing.T) {
	if role.Name != "mgmt" {
		t.Skip("runs in the mgmt build (it builds the epon firmware itself)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	sh := newProcShelf(ctx, t, "show ha", "show log 80")
	bp, procs := sh.bp, sh.procs

	pr := startProber(t, bp.ns("prober"), "169.254.3.1:7500")
	first := pr.waitAnswer(ctx, t, func(s string) bool { return s != "" })
	if first != "active 3" && first != "active 4" {
		t.Fatalf("first answer %q, want active 3 or active 4", first)
	}
	var active, standby int
	fmt.Sscanf(first, "active %d", &active)
	standby = 7 - active
	var st struct {
		InQuorum bool `json:"in_quorum"`
		Groups   []struct {
			Name  string
			Units []struct {
				Name, State string
			}
		}
	}
	out, err := procs[standby].con.Exec(ctx, "show ha json")
	if err != nil || json.Unmarshal([]byte(out), &st) != nil || !st.InQuorum {
		t.Fatalf("show ha json on slot %d = %q, %v; want in quorum", standby, out, err)
	}
	sh.pull(t, active)
	want := fmt.Sprintf("active %d", standby)
	pr.waitAnswer(ctx, t, func(s string) bool { return s == want })
	out, err = procs[standby].con.Exec(ctx, "show ha json")
	if err != nil || json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("show ha json = %q, %v", out, err)
	}
	unit := fmt.Sprintf("mgmt-%d", standby)
	found := false
	for _, g := range st.Groups {
		for _, u := range g.Units {
			found = found || (u.Name == unit && u.State == "active")
		}
	}
	if !found {
		t.Errorf("after the kill, show ha json on slot %d = %s; want %s active", standby, out, unit)
	}
	if out, err := procs[standby].con.Exec(ctx, "show mgmt json"); err != nil || !strings.Contains(out, `"active":true`) {
		t.Errorf("show mgmt json = %q, %v", out, err)
	}
}

// prober sends a UDP probe every 5 ms from inside a namespace and keeps the latest answer.
type prober struct {
	mu   sync.Mutex
	last string
	conn *net.UDPConn
}

func startProber(t *testing.T, ns, target string) *prober {
	t.Helper()
	var conn *net.UDPConn
	err := nsutil.Do(nsutil.Named(ns), func() error {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(169, 254, 3, 250)})
		conn = c
		return err
	})
	if err != nil {
		t.Fatalf("prober: %v", err)
	}
	dst, _ := net.ResolveUDPAddr("udp4", target)
	p := &prober{conn: conn}
	stop := make(chan struct{})
	go func() {
		tk := time.NewTicker(5 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				conn.WriteToUDP([]byte("probe"), dst)
			}
		}
	}()
	go func() {
		buf := make([]byte, 64)
		for {
			n, _, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			p.mu.Lock()
			p.last = string(buf[:n])
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() { close(stop); conn.Close() })
	return p
}

func (p *prober) waitAnswer(ctx context.Context, t *testing.T, ok func(string) bool) string {
	t.Helper()
	for {
		p.mu.Lock()
		s := p.last
		p.mu.Unlock()
		if ok(s) {
			return s
		}
		select {
		case <-ctx.Done():
			t.Fatalf("prober: no matching answer (last %q)", s)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
