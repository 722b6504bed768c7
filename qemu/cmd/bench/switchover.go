package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"

	switchblade "github.com/cgoa/cgoa/blades/switch"
	"github.com/cgoa/cgoa/blades/switch/hubpath"
	"github.com/cgoa/cgoa/netstack/netns"
	"github.com/cgoa/cgoa/netstack/netns/netnstest"
	"github.com/cgoa/cgoa/qemu/farend"
	"github.com/cgoa/cgoa/qemu/shelf"
	"github.com/cgoa/cgoa/qemu/topology"
	"github.com/cgoa/cgoa/qemu/vm"
)

// The switchover bench's shelf: two hubs, a mgmt blade and an EPON blade with one PON port
// (four HA members: one hub's death leaves a quorum; the ONUs behind the PON are the
// traffic source).
const switchoverYAML = `name: switchover
shelf: 7
slots:
  - {slot: 1, role: switch}
  - {slot: 2, role: switch}
  - {slot: 3, role: mgmt}
  - {slot: 4, role: epon, pon: 1}
`

// The upstream traffic: every emulated ONU of the EPON blade's PON sends numbered frames
// (blades/epon/onu.NumberedFrame) of switchoverFrame bytes, switchoverFPS a second each.
const (
	eponSlot       = 4
	switchoverFPS  = 25
	switchoverSize = 64
)

// benchSwitchover kills the active hub kills times and measures the upstream gap: the ONU
// emulator's numbered upstream frames, which the EPON blade's OLT forwards to its base
// channel toward the active hub (blades/epon Upstream, following blades/switch/hubpath),
// as they come out of the shelf's uplinks and through a kernel STP bridge K on the core
// network, behind the LAN both hubs' uplinks face. The sink counts them by sequence number
// (qemu/farend Sequences): the gap is the longest silence of all ONUs together around a
// kill (resolution 1/(ONUs × switchoverFPS)); duplicates are frames whose number had been
// seen (two hubs forwarding, a loop). The shelf's logical bridge is the root of the core
// network (priority 4096), as an aggregation shelf is. The peer is the same shelf booted
// with both hubs as plain 802.1D bridges (cgoa.stp=independent, same priority, isl0
// cheaper than the uplinks), with fewer kills since each costs 30 s or more.
// core.topology_changes counts the kills after which K raised its topology change flags.
// lost.after_onu is the frames of the whole run (kills, reboots, rejoins) the sink never saw
// although they left an ONU (the ONUs' queues refuse frames while deregistered, which on a
// loaded host happens now and then: those are not counted).
// gap.steady is the same longest silence over as long a stretch just before each kill: on a
// loaded host the emulated blades stall now and then, and this is what that costs alone.
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
		{Metric: "gap.steady.p50", Unit: "ms", Value: quantileMs(prot.steady, 0.5), Samples: len(prot.steady), Peer: p(quantileMs(peer.steady, 0.5))},
		{Metric: "gap.steady.p99", Unit: "ms", Value: quantileMs(prot.steady, 0.99), Samples: len(prot.steady), Peer: p(quantileMs(peer.steady, 0.99))},
		{Metric: "lost.after_onu", Unit: "frames", Value: float64(prot.lost), Samples: len(prot.gaps), Peer: p(float64(peer.lost))},
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
	steady     []time.Duration // longest gap in as long a stretch before each kill
	duplicates int
	lost       int // frames skipped and never seen, over the run
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
	if err := startUpstream(ctx, s); err != nil {
		return res, err
	}

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
		// Upstream traffic flows and the core is out of any topology change.
		return poll("steady upstream traffic, core without topology change", 3*time.Minute, func() error {
			if last := core.seq.Last(); time.Since(last) > time.Second {
				return fmt.Errorf("last upstream frame %v ago (%+v)", time.Since(last).Round(time.Millisecond), core.seq.Counts())
			}
			if tc, err := core.topologyChange(); err != nil || tc {
				return fmt.Errorf("core in topology change (%v)", err)
			}
			return nil
		})
	}
	var lostBase, droppedBase uint64 // at the first settled moment: steady upstream traffic
	for i := 0; i < kills; i++ {
		if err := settle(); err != nil {
			return res, fmt.Errorf("kill %d: %w", i+1, err)
		}
		if i == 0 {
			lostBase = core.seq.Counts().Lost
			_, droppedBase = onuSent(s)
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
		// The EPON blade's upstream goes toward the hub HA holds active: in protected mode,
		// the one to kill.
		path, err := hubPath(ctx, s)
		if mode == "protected" {
			if err := poll("EPON upstream toward the active hub", time.Minute, func() error {
				path, err = hubPath(ctx, s)
				if err == nil && path.Current != fmt.Sprintf("base%d", dead-1) {
					err = fmt.Errorf("EPON blade's traffic via %q, active hub %d", path.Current, dead)
				}
				return err
			}); err != nil {
				return res, fmt.Errorf("kill %d: %w", i+1, err)
			}
		}
		time.Sleep(time.Second) // steady frames before the kill
		survivor := 3 - dead
		before := core.seq.Counts()
		_, onuBefore := onuSent(s)
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
			if now.Sub(killed) > 10*time.Second && core.seq.Gap(now.Add(-5*time.Second), now) < time.Second {
				resumed = now
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if resumed.IsZero() {
			return res, fmt.Errorf("kill %d: upstream frames did not flow steadily within 3 minutes of killing hub %d", i+1, dead)
		}
		gap := core.seq.Gap(killed.Add(-time.Second), resumed)
		after := core.seq.Counts()
		_, onuAfter := onuSent(s)
		res.gaps = append(res.gaps, gap)
		// The same measurement over as long a stretch just before the kill: what the
		// emulated blades' stalls on a busy host cost without any kill.
		steady := core.seq.Gap(killed.Add(-resumed.Sub(killed)-time.Second), killed)
		res.steady = append(res.steady, steady)
		if tc {
			res.tcKills++
		}
		how := ""
		if v, err := view(survivor); err == nil {
			how = fmt.Sprintf(" (hub %d: %s, fast takeovers %d, reverted %d)", survivor, v.Role, v.Counters.FastTakeovers, v.Counters.FastReverts)
		}
		if p, err := hubPath(ctx, s); err == nil {
			how += fmt.Sprintf("; EPON upstream via %s (was %s, %d path changes)", p.Current, path.Current, p.Changes)
		}
		how += fmt.Sprintf("; frames lost %d (of which never left an ONU %d), duplicates %d", after.Lost-before.Lost, onuAfter-onuBefore,
			after.Duplicates-before.Duplicates)
		fmt.Fprintf(os.Stderr, "switchover %s: kill %d of hub %d: upstream gap %v (before the kill %v), core topology change %v%s\n", mode, i+1, dead,
			gap.Round(time.Millisecond), steady.Round(time.Millisecond), tc, how)
		if err := s.Restart(ctx, dead); err != nil {
			return res, err
		}
		if err := s.WaitUp(ctx); err != nil {
			return res, err
		}
	}
	c := core.seq.Counts()
	sent, dropped := onuSent(s)
	res.duplicates, res.lost = int(c.Duplicates), int(c.Lost-lostBase)-int(dropped-droppedBase)
	up, _ := s.Exec(ctx, eponSlot, "show upstream")
	fmt.Fprintf(os.Stderr, "switchover %s: upstream frames at the sink %+v; ONUs sent %d, their queues refused %d; EPON blade: %s\n",
		mode, c, sent, dropped, strings.TrimSpace(up))
	return res, nil
}

// onuSent sums what the ONU emulators numbered and what their queues refused (not
// registered, full): the latter never left an ONU, so the sink counts them lost too.
func onuSent(s *shelf.Shelf) (sent, dropped uint64) {
	fe, ok := s.ONU(fmt.Sprintf("onu-s%d-pon0", eponSlot))
	if !ok {
		return 0, 0
	}
	for _, t := range fe.Traffic() {
		sent += t.Sent
		dropped += t.Dropped
	}
	return sent, dropped
}

// hubPath is the EPON blade's show hubpath.
func hubPath(ctx context.Context, s *shelf.Shelf) (hubpath.View, error) {
	var v hubpath.View
	out, err := s.Exec(ctx, eponSlot, "show hubpath json")
	if err == nil {
		err = json.Unmarshal([]byte(out), &v)
	}
	return v, err
}

// startUpstream waits for the ONUs behind the EPON blade's PON to register and starts their
// numbered upstream frames.
func startUpstream(ctx context.Context, s *shelf.Shelf) error {
	name := fmt.Sprintf("onu-s%d-pon0", eponSlot)
	fe, ok := s.ONU(name)
	if !ok {
		return fmt.Errorf("no ONU emulator %s", name)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, err := s.Exec(ctx, eponSlot, "show onu pon0 json")
		var v struct {
			ONUs []struct {
				State string `json:"state"`
			} `json:"onus"`
		}
		reg := 0
		if err == nil && json.Unmarshal([]byte(out), &v) == nil {
			for _, u := range v.ONUs {
				if u.State == "registered" {
					reg++
				}
			}
		}
		if reg == farend.DefaultONUs {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%d of %d ONUs registered on %s (%v)", reg, farend.DefaultONUs, name, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fe.SetTraffic(switchoverFPS*switchoverSize*8, switchoverSize)
}

// switchoverCore is the core network of the bench: a namespace with the LAN both uplinks face
// (a bridge with STP off), the kernel STP bridge K on it, and a sink port behind K where the
// upstream frames are counted by sequence number.
type switchoverCore struct {
	ns     string
	taps   []*farend.Tap
	conn   *packet.Conn
	seq    *farend.Sequences
	closed chan struct{}
}

func nsRun(args ...string) error {
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func newSwitchoverCore(s *shelf.Shelf) (*switchoverCore, error) {
	// Named as the tests' namespaces are (this process's PID in it): a
	// test run's Sweep deletes it if this bench was killed before cleaning up.
	c := &switchoverCore{ns: netnstest.Name("swo"), seq: farend.NewSequences(), closed: make(chan struct{})}
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

// read counts every frame K forwarded to the sink (numbered upstream frames by sequence,
// the rest as other).
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
		c.seq.Add(buf[:n], time.Now())
	}
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
