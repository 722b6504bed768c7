package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"

	switchblade "github.com/cgoa/cgoa/blades/switch"
	"github.com/cgoa/cgoa/netstack/netns"
	"github.com/cgoa/cgoa/qemu/farend"
	"github.com/cgoa/cgoa/qemu/shelf"
	"github.com/cgoa/cgoa/qemu/topology"
	"github.com/cgoa/cgoa/qemu/vm"
)

// The switchover bench's shelf: two hubs and two mgmt blades (four HA members: one hub's
// death leaves a quorum, and the mgmt blades are the traffic source).
const switchoverYAML = `name: switchover
shelf: 7
slots:
  - {slot: 1, role: switch}
  - {slot: 2, role: switch}
  - {slot: 3, role: mgmt}
  - {slot: 4, role: mgmt}
`

// benchSwitchover kills the active hub kills times and measures the upstream gap: frames a
// node blade sends toward the surviving hub (slot 3's HA heartbeats on its channel to that
// hub, a broadcast every HA interval that the hubs flood to the uplink) as they come out of a kernel STP bridge
// on the core network, behind the LAN both hubs' uplinks face. The shelf's logical bridge is
// the root of the core network (priority 4096), as an aggregation shelf is. The peer is the
// same shelf booted with both hubs as plain 802.1D bridges (cgoa.stp=independent, same
// priority, isl0 cheaper than the uplinks), with fewer kills since each costs 30 s or more.
//
// duplicates counts frames the sink saw twice within 50 ms (the network delivered one frame
// twice); identical frames further apart are the HA transport resending, logged apart.
// core.topology_changes counts the kills after which K raised its topology change flags.
//
// The EPON blade does not yet forward upstream data to the backplane (its OLT counts it), so
// the ONU emulator cannot be the source; node blades' broadcast heartbeats cross the same
// hub path. The gap's resolution is the HA interval (200 ms in the QEMU shelf).
func benchSwitchover(a vm.Artifacts, kills int, haTimers string) (Report, error) {
	rep := Report{Bench: "switchover"}
	if os.Geteuid() != 0 {
		return rep, errors.New("switchover: needs root (network namespace, tap devices)")
	}
	peerKills := max(1, kills/7)
	prot, err := switchoverRun(a, "protected", kills, haTimers)
	if err != nil {
		return rep, fmt.Errorf("protected: %w", err)
	}
	peer, err := switchoverRun(a, "independent", peerKills, haTimers)
	if err != nil {
		return rep, fmt.Errorf("peer (independent): %w", err)
	}
	peerName := fmt.Sprintf("both hubs plain 802.1D without protection (%d kills: each costs 30 s or more)", len(peer.gaps))
	p := func(v float64) *Peer { return &Peer{Name: peerName, Value: v} }
	rep.Results = []Result{
		{Metric: "gap.p50", Unit: "ms", Value: quantileMs(prot.gaps, 0.5), Samples: len(prot.gaps), Peer: p(quantileMs(peer.gaps, 0.5))},
		{Metric: "gap.p99", Unit: "ms", Value: quantileMs(prot.gaps, 0.99), Samples: len(prot.gaps), Peer: p(quantileMs(peer.gaps, 0.99))},
		{Metric: "duplicates", Unit: "frames", Value: float64(prot.duplicates), Samples: len(prot.gaps), Peer: p(float64(peer.duplicates))},
		{Metric: "core.topology_changes", Unit: "kills", Value: float64(prot.tcKills), Samples: len(prot.gaps), Peer: p(float64(peer.tcKills))},
	}
	return rep, nil
}

func quantileMs(gaps []time.Duration, q float64) float64 {
	if len(gaps) == 0 {
		return 0
	}
	d := slices.Clone(gaps)
	slices.Sort(d)
	i := min(len(d)-1, max(0, int(q*float64(len(d))+0.999999)-1))
	return round(float64(d[i].Microseconds())/1000, 1)
}

type switchoverResult struct {
	gaps       []time.Duration
	duplicates int
	tcKills    int // kills after which the core's kernel bridge raised topology change
}

// switchoverRun boots the shelf in mode and kills its active (protected) or root (independent)
// hub kills times.
func switchoverRun(a vm.Artifacts, mode string, kills int, haTimers string) (res switchoverResult, err error) {
	topo, err := topology.Parse("switchover", []byte(switchoverYAML))
	if err != nil {
		return res, err
	}
	run, err := os.MkdirTemp("", "bench-switchover-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(run)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(kills+3)*4*time.Minute)
	defer cancel()
	s, err := shelf.New(shelf.Options{Topology: topo, Artifacts: a, RunDir: run, HATimers: haTimers, STP: mode, Log: os.Stderr})
	if err != nil {
		return res, err
	}
	defer s.Close()
	if err := s.Start(ctx); err != nil {
		return res, err
	}
	if err := s.WaitUp(ctx); err != nil {
		return res, err
	}
	core, err := newSwitchoverCore(s)
	if err != nil {
		return res, err
	}
	defer core.close()

	view := func(slot int) (switchblade.View, error) {
		var v switchblade.View
		out, err := s.Exec(ctx, slot, "show stp json")
		if err == nil {
			err = json.Unmarshal([]byte(out), &v)
		}
		return v, err
	}
	// Both hubs configured alike: the shelf is the root of the core network; in
	// independent mode isl0 is cheaper than the uplinks, so hub 2 reaches hub 1 over it
	// and its uplink blocks, as in a shelf whose hubs are separate bridges.
	configure := func(slot int) error {
		cmds := []string{"stp priority 4096"}
		if mode == "independent" {
			cmds = append(cmds, "stp port isl0 cost 100", "stp port uplink0 cost 20000")
		}
		for _, c := range cmds {
			if out, err := s.Exec(ctx, slot, c); err != nil || strings.HasPrefix(out, "error") {
				return fmt.Errorf("slot %d: %s: %q %v", slot, c, out, err)
			}
		}
		return nil
	}
	poll := func(what string, within time.Duration, cond func() error) error {
		deadline := time.Now().Add(within)
		for {
			err := cond()
			if err == nil {
				return nil
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	// victim is the hub to kill: the active one (protected) or the root (independent).
	victim := func() (int, error) {
		for _, slot := range []int{1, 2} {
			v, err := view(slot)
			if err != nil {
				return 0, err
			}
			if v.Bridge == nil || v.Role != "active" {
				continue
			}
			if mode == "protected" || v.Bridge.IsRoot {
				return slot, nil
			}
		}
		return 0, fmt.Errorf("no hub to kill yet")
	}
	settle := func() error {
		for _, slot := range []int{1, 2} {
			if mode == "independent" {
				if err := poll("configure", time.Minute, func() error { return configure(slot) }); err != nil {
					return err
				}
			}
		}
		if mode == "protected" {
			if err := poll("active hub", time.Minute, func() error {
				v, err := victim()
				if err == nil {
					err = configure(v)
				}
				return err
			}); err != nil {
				return err
			}
			// The standby holds the checkpointed root bridge.
			if err := poll("standby holds the tree", 2*time.Minute, func() error {
				n := 0
				for _, slot := range []int{1, 2} {
					if v, err := view(slot); err == nil && v.Role == "standby" && v.Held && v.Bridge != nil && v.Bridge.IsRoot {
						n++
					}
				}
				if n != 1 {
					return fmt.Errorf("%d standby hubs hold the root bridge", n)
				}
				return nil
			}); err != nil {
				return err
			}
		}
		// Every blade is in the quorum partition: a kill must test the switchover, not a
		// shelf still rejoining after a reboot.
		if err := poll("every blade in quorum", 3*time.Minute, func() error {
			for _, slot := range []int{1, 2, 3, 4} {
				out, err := s.Exec(ctx, slot, "show ha json")
				var v struct {
					InQuorum bool `json:"in_quorum"`
				}
				if err == nil {
					err = json.Unmarshal([]byte(out), &v)
				}
				if err != nil || !v.InQuorum {
					return fmt.Errorf("slot %d not in quorum (%v)", slot, err)
				}
			}
			return nil
		}); err != nil {
			return err
		}
		// Traffic flows and the core is out of any topology change.
		return poll("steady traffic, core without topology change", 3*time.Minute, func() error {
			for _, hub := range []int{1, 2} {
				if last := core.lastFrame(hub); time.Since(last) > time.Second {
					return fmt.Errorf("last frame toward hub %d %v ago", hub, time.Since(last).Round(time.Millisecond))
				}
			}
			if tc, err := core.topologyChange(); err != nil || tc {
				return fmt.Errorf("core in topology change (%v)", err)
			}
			return nil
		})
	}
	for i := 0; i < kills; i++ {
		if err := settle(); err != nil {
			return res, fmt.Errorf("kill %d: %w", i+1, err)
		}
		// The assignment may still move (a rejoining hub): wait for one hub to hold it.
		var dead int
		if err := poll("hub to kill", time.Minute, func() error {
			var err error
			dead, err = victim()
			return err
		}); err != nil {
			return res, fmt.Errorf("kill %d: %w", i+1, err)
		}
		time.Sleep(time.Second) // steady frames before the kill
		survivor := 3 - dead    // the node's traffic toward the surviving hub is what must go on
		killed := time.Now()
		if err := s.Kill(ctx, dead); err != nil {
			return res, err
		}
		// Frames may still pass for a moment while the pull's carrier cuts are applied, so
		// the outage is not over at the first frame after the kill: watch until frames have
		// flowed without a break of a second for 5 s (at least 10 s after the kill, enough to
		// see a topology change the kill caused: the root's TC starts within a hello), then
		// take the largest gap.
		tc := false
		resumed := time.Time{}
		for ctx.Err() == nil && time.Since(killed) < 3*time.Minute {
			if c, err := core.topologyChange(); err == nil && c {
				tc = true
			}
			now := time.Now()
			if now.Sub(killed) > 10*time.Second && core.gap(survivor, now.Add(-5*time.Second), now) < time.Second {
				resumed = now
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if resumed.IsZero() {
			return res, fmt.Errorf("kill %d: upstream frames did not flow steadily within 3 minutes of killing hub %d", i+1, dead)
		}
		gap := core.gap(survivor, killed.Add(-time.Second), resumed)
		res.gaps = append(res.gaps, gap)
		if tc {
			res.tcKills++
		}
		how := ""
		if v, err := view(survivor); err == nil {
			how = fmt.Sprintf(" (hub %d: %s, fast takeovers %d, reverted %d)", survivor, v.Role, v.Counters.FastTakeovers, v.Counters.FastReverts)
		}
		fmt.Fprintf(os.Stderr, "switchover %s: kill %d of hub %d: upstream gap %v, core topology change %v%s\n", mode, i+1, dead, gap.Round(time.Millisecond), tc, how)
		if err := s.Restart(ctx, dead); err != nil {
			return res, err
		}
		if err := s.WaitUp(ctx); err != nil {
			return res, err
		}
	}
	var resent int
	res.duplicates, resent = core.duplicates()
	fmt.Fprintf(os.Stderr, "switchover %s: %d network duplicates (same frame within %v), %d frames the source sent again later\n", mode, res.duplicates, dupWindow, resent)
	return res, nil
}

// switchoverCore is the core network of the bench: a namespace with the LAN both uplinks face
// (a bridge with STP off), the kernel STP bridge K on it, and a sink port behind K where the
// upstream frames are counted.
type switchoverCore struct {
	ns   string
	taps []*farend.Tap
	conn *packet.Conn
	src  [2]net.HardwareAddr // slot 3's base0 (to hub 1) and base1 (to hub 2)

	mu     sync.Mutex
	times  [2][]time.Time         // arrivals by source
	seen   map[[32]byte]time.Time // first arrival of each frame
	dups   int
	resent int
	closed chan struct{}
}

func nsRun(args ...string) error {
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func newSwitchoverCore(s *shelf.Shelf) (*switchoverCore, error) {
	var r [3]byte
	rand.Read(r[:])
	c := &switchoverCore{ns: "cgoa-swo-" + hex.EncodeToString(r[:]), seen: map[[32]byte]time.Time{}, closed: make(chan struct{})}
	for i := range c.src {
		src, err := topology.MAC(7, 3, fmt.Sprintf("base%d", i))
		if err != nil {
			return nil, err
		}
		if c.src[i], err = net.ParseMAC(src); err != nil {
			return nil, err
		}
	}
	if err := nsRun("ip", "netns", "add", c.ns); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			c.close()
		}
	}()
	ip := func(args ...string) error { return nsRun(append([]string{"ip", "-n", c.ns}, args...)...) }
	steps := [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "lan", "type", "bridge", "stp_state", "0"},
		{"link", "set", "lan", "up"},
		{"link", "add", "K", "address", "02:00:00:00:00:01", "type", "bridge", "stp_state", "1"},
		{"link", "set", "K", "up"},
		{"link", "add", "k1", "type", "veth", "peer", "name", "l1"},
		{"link", "set", "k1", "master", "K"},
		{"link", "set", "l1", "master", "lan"},
		{"link", "add", "k2", "type", "veth", "peer", "name", "sink"},
		{"link", "set", "k2", "master", "K"},
		{"link", "set", "k1", "up"}, {"link", "set", "l1", "up"}, {"link", "set", "k2", "up"}, {"link", "set", "sink", "up"},
	}
	for _, st := range steps {
		if err := ip(st...); err != nil {
			return nil, err
		}
	}
	for _, slot := range []int{1, 2} {
		ep, found := s.Uplink(fmt.Sprintf("uplink-s%d", slot))
		if !found {
			return nil, fmt.Errorf("no far end uplink-s%d", slot)
		}
		name := fmt.Sprintf("up%d", slot)
		tap, err := farend.NewTap(ep, name, c.ns)
		if err != nil {
			return nil, err
		}
		c.taps = append(c.taps, tap)
		if err := ip("link", "set", name, "master", "lan"); err != nil {
			return nil, err
		}
		if err := ip("link", "set", name, "up"); err != nil {
			return nil, err
		}
	}
	if err := c.listen(); err != nil {
		return nil, err
	}
	go c.read()
	ok = true
	return c, nil
}

// listen opens a packet socket on the sink, in the namespace.
func (c *switchoverCore) listen() error {
	return netns.Do(netns.Named(c.ns), func() error {
		ifi, err := net.InterfaceByName("sink")
		if err == nil {
			c.conn, err = packet.Listen(ifi, packet.Raw, unix.ETH_P_ALL, nil)
		}
		return err
	})
}

// read records the arrival of every frame from the traffic source that K forwarded.
func (c *switchoverCore) read() {
	buf := make([]byte, 2048)
	for {
		n, _, err := c.conn.ReadFrom(buf)
		if err != nil {
			select {
			case <-c.closed:
				return
			default:
				time.Sleep(10 * time.Millisecond)
				continue
			}
		}
		src := -1
		for i, m := range c.src {
			if n >= 14 && slices.Equal(buf[6:12], m) {
				src = i
			}
		}
		if src < 0 {
			continue
		}
		h := sha256.Sum256(buf[:n])
		now := time.Now()
		c.mu.Lock()
		if first, ok := c.seen[h]; ok {
			// The network delivered one frame twice (two hubs forwarding, a loop): the
			// copies arrive within milliseconds. The HA transport also resends some frames
			// whole, much later; those are the source's, not the network's.
			if now.Sub(first) < dupWindow {
				c.dups++
			} else {
				c.resent++
			}
		} else {
			c.seen[h] = now
			c.times[src] = append(c.times[src], now)
		}
		c.mu.Unlock()
	}
}

// lastFrame is the arrival of the last frame slot 3 sent toward hub (1 or 2).
func (c *switchoverCore) lastFrame(hub int) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ts := c.times[hub-1]
	if len(ts) == 0 {
		return time.Time{}
	}
	return ts[len(ts)-1]
}

// gap is the largest interval between frames slot 3 sent toward hub in [since, until],
// counting the stretches from since to the first and from the last to until.
func (c *switchoverCore) gap(hub int, since, until time.Time) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	var g time.Duration
	prev := since
	for _, t := range c.times[hub-1] {
		if t.Before(since) {
			continue
		}
		if t.After(until) {
			break
		}
		g = max(g, t.Sub(prev))
		prev = t
	}
	return max(g, until.Sub(prev))
}

// dupWindow: an identical frame seen again within it is a network duplicate.
const dupWindow = 50 * time.Millisecond

func (c *switchoverCore) duplicates() (network, resent int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dups, c.resent
}

// topologyChange reports K's topology change flags.
func (c *switchoverCore) topologyChange() (bool, error) {
	out, err := exec.Command("ip", "-n", c.ns, "-j", "-d", "link", "show", "dev", "K").Output()
	if err != nil {
		return false, err
	}
	var l []struct {
		Linkinfo struct {
			Data struct {
				TC  int `json:"topology_change"`
				TCD int `json:"topology_change_detected"`
			} `json:"info_data"`
		} `json:"linkinfo"`
	}
	if err := json.Unmarshal(out, &l); err != nil || len(l) != 1 {
		return false, fmt.Errorf("ip -d link show K: %q: %v", out, err)
	}
	return l[0].Linkinfo.Data.TC != 0 || l[0].Linkinfo.Data.TCD != 0, nil
}

func (c *switchoverCore) close() {
	select {
	case <-c.closed:
		return
	default:
		close(c.closed)
	}
	if c.conn != nil {
		c.conn.Close()
	}
	for _, t := range c.taps {
		t.Close()
	}
	exec.Command("ip", "netns", "del", c.ns).Run()
}
