// Package procmode runs HA nodes as real processes in network namespaces
// for process-mode tests and the failover bench: a dual-star backplane
// (two hub namespaces with a bridge each, one namespace per blade with
// veth links base0 to hub 1 and base1 to hub 2), cmd/hanode in each blade
// namespace, and a prober namespace on hub 1 that sends 1 ms UDP probes
// and records which blade answered when.
//
// Everything is created by the test (ip netns add, ip link) under unique
// names and removed in t.Cleanup, also on failure. It needs root and the
// ip command; Require skips the test cleanly otherwise.
package procmode

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cgoa/cgoa/netstack/netns"
	"github.com/cgoa/cgoa/netstack/netns/netnstest"
)

// Require skips t unless namespaces can be made here.
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("procmode: needs root for network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("procmode: needs the ip command (iproute2)")
	}
}

// Net is the base networks: blade s has 169.254.70.s on base0, 169.254.71.s on
// base1; the prober is 169.254.70.200 on hub 1.
const (
	Base0Net = "169.254.70.0/24"
	Base1Net = "169.254.71.0/24"
	proberIP = "169.254.70.200"
	HAPort   = 7400
	Probe    = 7500
)

// Shelf is a process-mode shelf.
type Shelf struct {
	t       testing.TB
	nsNamer func(tag string) string // netnstest.Namer: the shelf's namespaces
	hub     [2]string
	prober  string
	bin     string
	config  string
	key     string
	mu      sync.Mutex
	procs   map[uint8]*Proc
	nss     []string
}

// Proc is one running hanode.
type Proc struct {
	Slot  uint8
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	done  chan struct{}
}

func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Build compiles cmd/hanode into dir.
func Build(t testing.TB, dir string) string {
	t.Helper()
	return BuildCmd(t, dir, "github.com/cgoa/cgoa/ha/cmd/hanode")
}

// BuildCmd compiles command package pkg into dir, statically linked like
// the firmware (CGO_ENABLED=0), and returns the binary's path.
func BuildCmd(t testing.TB, dir, pkg string) string {
	t.Helper()
	bin := filepath.Join(dir, path.Base(pkg))
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// New makes the backplane for the slots and writes the shelf config (a
// YAML amf.Config body without slots, which New fills in).
func New(t testing.TB, bin string, slots []uint8, groupsYAML string) *Shelf {
	t.Helper()
	netnstest.SweepOnce(t)
	// The names carry our pid, so that namespaces left by a test binary
	// that was killed before its cleanup are recognised and removed.
	s := &Shelf{t: t, nsNamer: netnstest.Namer(), bin: bin, procs: map[uint8]*Proc{}}
	keyb := make([]byte, 32)
	rand.Read(keyb)
	s.key = hex.EncodeToString(keyb)
	t.Cleanup(func() {
		s.StopAll()
		for _, ns := range s.nss {
			exec.Command("ip", "netns", "del", ns).Run()
		}
	})
	mk, link := s.mkNS, s.link
	for i := range s.hub {
		s.hub[i] = mk(fmt.Sprintf("hub%d", i+1))
		if err := run("ip", "-n", s.hub[i], "link", "add", "br0", "type", "bridge"); err != nil {
			t.Fatal(err)
		}
		if err := run("ip", "-n", s.hub[i], "link", "set", "br0", "up"); err != nil {
			t.Fatal(err)
		}
	}
	for _, slot := range slots {
		ns := mk(fmt.Sprintf("s%d", slot))
		link(ns, "base0", s.hub[0], fmt.Sprintf("s%d", slot), fmt.Sprintf("169.254.70.%d/24", slot))
		link(ns, "base1", s.hub[1], fmt.Sprintf("s%d", slot), fmt.Sprintf("169.254.71.%d/24", slot))
	}
	s.prober = mk("prober")
	link(s.prober, "eth0", s.hub[0], "prober", proberIP+"/24")
	var sl []string
	for _, slot := range slots {
		sl = append(sl, fmt.Sprint(slot))
	}
	s.config = filepath.Join(t.TempDir(), "shelf.yaml")
	body := fmt.Sprintf("shelf: 7\nslots: [%s]\n%s", strings.Join(sl, ", "), groupsYAML)
	if err := os.WriteFile(s.config, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// nsName is the name of the shelf's namespace for tag (netnstest's form,
// which netnstest.Sweep knows).
func (s *Shelf) nsName(tag string) string { return s.nsNamer("ha" + tag) }

// mkNS makes a namespace named for the shelf, removed in Cleanup.
func (s *Shelf) mkNS(name string) string {
	s.t.Helper()
	ns := s.nsName(name)
	if err := run("ip", "netns", "add", ns); err != nil {
		s.t.Fatal(err)
	}
	s.nss = append(s.nss, ns)
	if err := run("ip", "-n", ns, "link", "set", "lo", "up"); err != nil {
		s.t.Fatal(err)
	}
	return ns
}

// link joins ns to hub's bridge with a veth pair (ifname in ns, hubIf at
// the hub) and gives ifname addr.
func (s *Shelf) link(ns, ifname, hub, hubIf, addr string) {
	s.t.Helper()
	steps := [][]string{
		{"ip", "-n", ns, "link", "add", ifname, "type", "veth", "peer", "name", hubIf, "netns", hub},
		{"ip", "-n", hub, "link", "set", hubIf, "master", "br0"},
		{"ip", "-n", hub, "link", "set", hubIf, "up"},
		{"ip", "-n", ns, "addr", "add", addr, "dev", ifname},
		{"ip", "-n", ns, "link", "set", ifname, "up"},
	}
	for _, st := range steps {
		if err := run(st...); err != nil {
			s.t.Fatal(err)
		}
	}
}

// responder answers probes on any address of namespace ns with
// "active <id>" until the returned function is called.
func (s *Shelf) responder(ns string, id uint8) (func(), error) {
	var c *net.UDPConn
	err := netns.Do(netns.Named(ns), func() error {
		var err error
		c, err = net.ListenUDP("udp4", &net.UDPAddr{Port: Probe})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("responder in %s: %w", ns, err)
	}
	go func() {
		buf := make([]byte, 64)
		reply := []byte(fmt.Sprintf("active %d", id))
		for {
			_, from, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			c.WriteToUDP(reply, from)
		}
	}()
	return func() { c.Close() }, nil
}

func (s *Shelf) ns(slot uint8) string { return s.nsName(fmt.Sprintf("s%d", slot)) }

// NS is the name of slot's network namespace (base0 and base1 in it), for
// tests that run their own process there (ip netns exec).
func (s *Shelf) NS(slot uint8) string { return s.ns(slot) }

// Start runs hanode for slot and waits until it says ready.
func (s *Shelf) Start(slot uint8) *Proc {
	s.t.Helper()
	cmd := exec.Command("ip", "netns", "exec", s.ns(slot), s.bin,
		"-config", s.config, "-slot", fmt.Sprint(slot), "-key", s.key,
		"-base0", "base0="+Base0Net, "-base1", "base1="+Base1Net,
		"-port", fmt.Sprint(HAPort), "-probe-port", fmt.Sprint(Probe), "-events")
	out, err := cmd.StdoutPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	// If the test binary dies before its cleanup, take the node with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start hanode slot %d: %v", slot, err)
	}
	p := &Proc{Slot: slot, cmd: cmd, done: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		once := sync.Once{}
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			if len(p.lines) > 4096 {
				p.lines = slices.Clone(p.lines[len(p.lines)-2048:])
			}
			p.mu.Unlock()
			if sc.Text() == "ready" {
				once.Do(func() { close(ready) })
			}
		}
		io.Copy(io.Discard, out)
		cmd.Wait()
		close(p.done)
	}()
	select {
	case <-ready:
	case <-p.done:
		s.t.Fatalf("hanode slot %d exited before ready", slot)
	case <-time.After(10 * time.Second):
		s.t.Fatalf("hanode slot %d not ready after 10s", slot)
	}
	s.mu.Lock()
	s.procs[slot] = p
	s.mu.Unlock()
	return p
}

// Cut takes both of slot's links down at the hubs (down=true) or up: the
// blade is isolated but keeps running.
func (s *Shelf) Cut(slot uint8, down bool) {
	s.t.Helper()
	state := "up"
	if down {
		state = "down"
	}
	for _, hub := range s.hub {
		if err := run("ip", "-n", hub, "link", "set", fmt.Sprintf("s%d", slot), state); err != nil {
			s.t.Fatal(err)
		}
	}
}

// Proc returns slot's running process, or nil.
func (s *Shelf) Proc(slot uint8) *Proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.procs[slot]
}

// Kill sends SIGKILL (kill -9) to slot's process and waits for it.
func (s *Shelf) Kill(slot uint8) {
	s.mu.Lock()
	p := s.procs[slot]
	delete(s.procs, slot)
	s.mu.Unlock()
	if p == nil {
		return
	}
	p.cmd.Process.Kill()
	<-p.done
}

// StopAll kills every process (cleanup).
func (s *Shelf) StopAll() {
	s.mu.Lock()
	var slots []uint8
	for slot := range s.procs {
		slots = append(slots, slot)
	}
	s.mu.Unlock()
	for _, slot := range slots {
		s.Kill(slot)
	}
}

// Lines returns what the process printed so far.
func (p *Proc) Lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// Prober sends UDP probes from the prober namespace to the blades' probe
// ports and records answers.
type Prober struct {
	conn    *net.UDPConn
	targets []netip.AddrPort
	mu      sync.Mutex
	answers []Answer
}

// Answer is one probe answer.
type Answer struct {
	At   time.Time
	Slot uint8
}

// NewProber opens the prober socket for the slots' probe ports.
func (s *Shelf) NewProber(slots ...uint8) *Prober {
	s.t.Helper()
	var targets []netip.AddrPort
	for _, slot := range slots {
		targets = append(targets, netip.MustParseAddrPort(fmt.Sprintf("169.254.70.%d:%d", slot, Probe)))
	}
	return s.NewProberTo(targets...)
}

// NewProberTo opens a prober socket for the given targets.
func (s *Shelf) NewProberTo(targets ...netip.AddrPort) *Prober {
	s.t.Helper()
	p := &Prober{targets: targets}
	err := netns.Do(netns.Named(s.prober), func() error {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(proberIP)})
		p.conn = c
		return err
	})
	if err != nil {
		s.t.Fatalf("prober socket: %v", err)
	}
	s.t.Cleanup(func() { p.conn.Close() })
	go func() {
		buf := make([]byte, 64)
		for {
			n, err := p.conn.Read(buf)
			if err != nil {
				return
			}
			var slot uint8
			if _, err := fmt.Sscanf(string(buf[:n]), "active %d", &slot); err == nil {
				p.mu.Lock()
				p.answers = append(p.answers, Answer{time.Now(), slot})
				p.mu.Unlock()
			}
		}
	}()
	return p
}

// Run probes every target each interval until ctx ends.
func (p *Prober) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		for _, a := range p.targets {
			p.conn.WriteToUDPAddrPort([]byte("probe"), a)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Answers returns the answers so far.
func (p *Prober) Answers() []Answer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Answer(nil), p.answers...)
}

// Gap is the longest time without an answer in [from, to] (counting from
// the last answer before from, and up to to): the outage a client of the
// service sees.
func Gap(answers []Answer, from, to time.Time) (time.Duration, error) {
	var prev time.Time
	var gap time.Duration
	for _, a := range answers {
		if a.At.Before(from) {
			prev = a.At
			continue
		}
		if a.At.After(to) {
			break
		}
		if !prev.IsZero() {
			gap = max(gap, a.At.Sub(prev))
		}
		prev = a.At
	}
	if prev.IsZero() {
		return 0, errors.New("procmode: no answers")
	}
	return max(gap, to.Sub(prev)), nil
}
