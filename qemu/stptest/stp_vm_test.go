package stptest

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	switchblade "github.com/cgoa/cgoa/blades/switch"
	"github.com/cgoa/cgoa/blades/switch/hubpath"
	"github.com/cgoa/cgoa/qemu/farend"
	"github.com/cgoa/cgoa/qemu/shelftest"
	"github.com/cgoa/cgoa/qemu/topology"
	"github.com/cgoa/cgoa/stp"
)

// The test shelf: two hubs and one mgmt blade (three HA members, so one hub's death
// leaves a quorum).
const shelfYAML = `name: stp
shelf: 6
slots:
  - {slot: 1, role: switch}
  - {slot: 2, role: switch}
  - {slot: 3, role: mgmt}
`

const shelfNo = 6

// Which LAN each kernel bridge port is on.
var lans = map[string]string{"k1a": "lan", "k2a": "lan", "ksa": "lan", "k1b": "k12", "k2b": "k12"}

const (
	k1MAC = "02:00:00:00:00:01"
	k2MAC = "02:00:00:00:00:02"
	cost  = 10
)

func bridgeID(t *testing.T, prio uint16, mac string) stp.BridgeID {
	t.Helper()
	hw, err := net.ParseMAC(mac)
	if err != nil {
		t.Fatal(err)
	}
	id, err := stp.NewBridgeID(prio, hw)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// stpShelf is the shelf under test with its core network.
type stpShelf struct {
	sh   *shelftest.Shelf
	core *coreNet
}

// view reads `show stp json` of a hub.
func (s *stpShelf) view(t *testing.T, slot int) (switchblade.View, error) {
	var v switchblade.View
	out, err := s.sh.TryExec(slot, "show stp json")
	if err != nil {
		return v, err
	}
	// Unknown fields are an error: under load the serial console now and then repeats a
	// character, and a mangled key would otherwise just leave a field zero.
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return v, fmt.Errorf("show stp json on slot %d: %q: %w", slot, out, err)
	}
	return v, nil
}

// current is the hub that runs the tree now (the HA assignment may move between views).
func (s *stpShelf) current(t *testing.T) (int, switchblade.View, bool) {
	found, n := 0, 0
	var fv switchblade.View
	for _, slot := range []int{1, 2} {
		v, err := s.view(t, slot)
		if err != nil {
			return 0, fv, false
		}
		if v.Role == "active" && v.Bridge != nil {
			found, fv, n = slot, v, n+1
		}
	}
	return found, fv, n == 1
}

// active finds the hub running the logical bridge.
func (s *stpShelf) active(t *testing.T) (int, switchblade.View) {
	t.Helper()
	var found int
	var fv switchblade.View
	shelftest.Eventually(t, 60*time.Second, "one hub runs the tree", func() error {
		found = 0
		for _, slot := range []int{1, 2} {
			v, err := s.view(t, slot)
			if err != nil {
				return err
			}
			if v.Role == "active" && v.Bridge != nil {
				if found != 0 {
					return fmt.Errorf("hubs %d and %d both active", found, slot)
				}
				found, fv = slot, v
			}
		}
		if found == 0 {
			return fmt.Errorf("no active hub yet")
		}
		return nil
	})
	return found, fv
}

// kernelNetwork describes the kernel bridges (not the shelf) for the expected tree.
func (s *stpShelf) kernelNetwork(t *testing.T, ids map[string]stp.BridgeID, rename map[string]string) network {
	var n network
	for _, br := range []string{"K1", "K2", "KS"} {
		id, ok := ids[br]
		if !ok {
			continue
		}
		name := br
		if br == "KS" {
			name = "S"
		}
		s.core.kernelBridge(t, br).addTo(&n, name, id, lans, rename)
	}
	return n
}

// observeShelf adds the logical bridge's roles; false while not converged.
func observeShelf(v switchblade.View, tr *tree) bool {
	b := v.Bridge
	if b == nil {
		return false
	}
	if b.IsRoot {
		if tr.Root != "" {
			return false
		}
		tr.Root = "S"
	}
	for _, p := range b.Ports {
		role := ""
		switch {
		case p.Role == stp.RoleRoot && p.State == stp.Forwarding:
			role = roleRoot
		case p.Role == stp.RoleDesignated && p.State == stp.Forwarding:
			role = roleDesignated
		case (p.Role == stp.RoleAlternate || p.Role == stp.RoleBackup) && p.State == stp.Blocking:
			role = roleBlocked
		default:
			return false
		}
		tr.Roles["S."+p.Name] = role
	}
	return true
}

// converge waits until the observed tree equals the expected one, and returns how long it took.
func converge(t *testing.T, within time.Duration, what string, observe func() (got, want tree, ok bool)) time.Duration {
	t.Helper()
	start := time.Now()
	last := ""
	for {
		got, want, ok := observe()
		if ok && got.equal(want) {
			t.Logf("%s: converged after %v: %s", what, time.Since(start).Round(100*time.Millisecond), got)
			return time.Since(start)
		}
		last = fmt.Sprintf("observed %s (converged %v), want %s", got, ok, want)
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v: %s", what, within, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestSpanningTreeWithKernelBridges: the shelf's logical bridge on a LAN with two linked
// kernel STP bridges, a loop. The tree equals 802.1D's and the one made with a kernel bridge
// standing in for the shelf; a link cut re-converges within the 802.1D bounds; killing the
// active hub costs the kernel bridges no topology change; tshark decodes every BPDU.
func TestSpanningTreeWithKernelBridges(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	needTools(t)
	topo, err := topology.Parse("stp", []byte(shelfYAML))
	if err != nil {
		t.Fatal(err)
	}
	sh := shelftest.Boot(t, topo)
	s := &stpShelf{sh: sh, core: newCoreNet(t)}
	c := s.core
	t.Cleanup(func() {
		if t.Failed() {
			for _, slot := range []int{1, 2} {
				out, err := sh.TryExec(slot, "show log")
				t.Logf("===== show log, slot %d (%v) =====\n%s", slot, err, out)
			}
		}
	})

	// Kernel bridges: K1 and K2 on the LAN and linked to each other.
	c.addKernelBridge(t, "K1", 0x1000, k1MAC)
	c.addKernelBridge(t, "K2", 0x8000, k2MAC)
	c.wire(t, "k1a", "K1", "l1", "lan", cost)
	c.wire(t, "k2a", "K2", "l2", "lan", cost)
	c.wire(t, "k1b", "K1", "k2b", "K2", cost)
	ids := map[string]stp.BridgeID{"K1": bridgeID(t, 0x1000, k1MAC), "K2": bridgeID(t, 0x8000, k2MAC)}
	shelfID := switchblade.ShelfBridgeID(stp.DefaultPriority, shelfNo)

	// 1. A kernel bridge with the shelf's identifier stands in for it.
	c.addKernelBridge(t, "KS", shelfID.PriorityField(), shelfID.MAC().String())
	c.wire(t, "ksa", "KS", "l3", "lan", cost)
	ids["KS"] = shelfID
	standIn := func() (tree, tree, bool) {
		tr := tree{Roles: map[string]string{}}
		ok := true
		for _, br := range []string{"K1", "K2", "KS"} {
			name := map[string]string{"KS": "S"}[br]
			if name == "" {
				name = br
			}
			ok = c.kernelBridge(t, br).observe(&tr, name, map[string]string{"ksa": "uplink0"}) && ok
		}
		return tr, s.kernelNetwork(t, ids, map[string]string{"ksa": "uplink0"}).expected(), ok
	}
	// 802.1D bound from a cold start: forward delay twice, plus slack for a loaded host.
	converge(t, 2*fastFwdDelay+10*time.Second, "kernel stand-in, K1 root", standIn)
	kernelTreeK1Root, _, _ := standIn()
	c.setPriority(t, "KS", 0) // the stand-in becomes root
	c.setPriority(t, "K1", 0xa000)
	ids["KS"], ids["K1"] = shelfID.WithPriority(0), bridgeID(t, 0xa000, k1MAC)
	converge(t, fastMaxAge+2*fastFwdDelay+10*time.Second, "kernel stand-in, shelf root", standIn)
	kernelTreeShelfRoot, _, _ := standIn()
	c.ip(t, "link", "del", "ksa")
	c.ip(t, "link", "del", "KS")
	delete(ids, "KS")
	c.setPriority(t, "K1", 0x1000)
	ids["K1"] = bridgeID(t, 0x1000, k1MAC)

	// 2. The shelf: both hubs protected, then their uplinks joined to the LAN (before, a hub
	// in mode off forwards on its uplink: joining then would close a loop through isl0).
	for _, slot := range []int{1, 2} {
		sh.Exec(t, slot, "stp mode protected")
	}
	act, _ := s.active(t)
	sh.Exec(t, act, "stp port uplink0 cost "+strconv.Itoa(cost))
	var taps []string
	for _, slot := range []int{1, 2} {
		name := fmt.Sprintf("uplink-s%d", slot)
		ep, ok := sh.Uplink(name)
		if !ok {
			t.Fatalf("no far end %s", name)
		}
		tapName := fmt.Sprintf("up%d", slot)
		tap, err := farend.NewTap(ep, tapName, c.ns)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tap.Close() })
		c.ip(t, "link", "set", tapName, "master", "lan")
		c.ip(t, "link", "set", tapName, "up")
		taps = append(taps, tapName)
	}
	capt := c.startCapture(t, taps...)

	withShelf := func() (tree, tree, bool) {
		tr := tree{Roles: map[string]string{}}
		ok := true
		for _, br := range []string{"K1", "K2"} {
			ok = c.kernelBridge(t, br).observe(&tr, br, nil) && ok
		}
		_, v, found := s.current(t)
		if !found {
			return tr, tree{}, false
		}
		ok = observeShelf(v, &tr) && ok
		n := s.kernelNetwork(t, ids, nil)
		n.Bridges = append(n.Bridges, netBridge{Name: "S", ID: v.Bridge.ID})
		for _, p := range v.Bridge.Ports {
			n.Ports = append(n.Ports, netPort{Bridge: "S", Name: p.Name, ID: p.ID, Cost: p.PathCost, LAN: "lan"})
		}
		return tr, n.expected(), ok
	}
	converge(t, 2*fastFwdDelay+20*time.Second, "shelf, K1 root", withShelf)
	if got, _, _ := withShelf(); !got.equal(kernelTreeK1Root) {
		t.Fatalf("shelf tree %s, with a kernel bridge standing in %s", got, kernelTreeK1Root)
	}
	if _, v, ok := s.current(t); !ok || v.Bridge.ID != shelfID {
		t.Fatalf("logical bridge id %v (%v), want %v", v.Bridge, ok, shelfID)
	}

	// 3. Cut K1's LAN port: K2 becomes designated on the LAN and the shelf's root path
	// goes through K2, within max age + twice the forward delay.
	c.ip(t, "link", "set", "l1", "down")
	took := converge(t, fastMaxAge+2*fastFwdDelay+6*time.Second, "after cutting K1 from the LAN", func() (tree, tree, bool) {
		got, want, ok := withShelf()
		delete(got.Roles, "K1.k1a") // disabled
		delete(want.Roles, "K1.k1a")
		// The cut port is not in 802.1D's tree: recompute without it.
		n := s.kernelNetwork(t, ids, nil)
		var ports []netPort
		for _, p := range n.Ports {
			if p.Name != "k1a" {
				ports = append(ports, p)
			}
		}
		n.Ports = ports
		_, v, found := s.current(t)
		if !found {
			return got, want, false
		}
		n.Bridges = append(n.Bridges, netBridge{Name: "S", ID: v.Bridge.ID})
		for _, p := range v.Bridge.Ports {
			n.Ports = append(n.Ports, netPort{Bridge: "S", Name: p.Name, ID: p.ID, Cost: p.PathCost, LAN: "lan"})
		}
		return got, n.expected(), ok
	})
	t.Logf("re-convergence after the cut: %v (802.1D bound max age + 2 x forward delay = %v)", took.Round(100*time.Millisecond), fastMaxAge+2*fastFwdDelay)
	c.ip(t, "link", "set", "l1", "up")
	converge(t, fastMaxAge+2*fastFwdDelay+10*time.Second, "after mending K1's LAN port", withShelf)

	// 4. The shelf becomes root (priority 0, fast timers as root), K1 the worst.
	act, _ = s.active(t)
	sh.Exec(t, act, "stp timers 6 1 4")
	sh.Exec(t, act, "stp priority 0")
	c.setPriority(t, "K1", 0xa000)
	ids["K1"] = bridgeID(t, 0xa000, k1MAC)
	converge(t, fastMaxAge+2*fastFwdDelay+10*time.Second, "shelf root", withShelf)
	if got, _, _ := withShelf(); !got.equal(kernelTreeShelfRoot) {
		t.Fatalf("shelf-root tree %s, with a kernel bridge standing in %s", got, kernelTreeShelfRoot)
	}

	// 5. Kill the active hub once the topology change of step 4 is over: the standby
	// continues the root bridge; neither kernel bridge sees a topology change or a port
	// leave its state, for longer than max age + forward delay.
	noTC := func() error {
		for _, br := range []string{"K1", "K2"} {
			if k := c.kernelBridge(t, br); k.TC || k.TCD {
				return fmt.Errorf("%s in topology change", br)
			}
		}
		return nil
	}
	shelftest.Eventually(t, fastMaxAge+fastFwdDelay+10*time.Second, "kernel bridges out of topology change", noTC)
	act, _ = s.active(t)
	standby := 3 - act
	shelftest.Eventually(t, 10*time.Second, "standby holds the root bridge from the checkpoint", func() error {
		v, err := s.view(t, standby)
		if err != nil {
			return err
		}
		if v.Role != "standby" || !v.Held || v.Bridge == nil || v.Bridge.ID != shelfID.WithPriority(0) || !v.Bridge.IsRoot {
			return fmt.Errorf("standby view %+v", v)
		}
		return nil
	})
	// The mgmt blade's traffic takes its channel toward the active hub (show hubpath).
	hubPathIs := func(want string) func() error {
		return func() error {
			out, err := sh.TryExec(3, "show hubpath json")
			if err != nil {
				return err
			}
			var v hubpath.View
			if err := json.Unmarshal([]byte(out), &v); err != nil {
				return fmt.Errorf("show hubpath json: %q: %w", out, err)
			}
			if v.Current != want {
				return fmt.Errorf("mgmt blade's traffic via %q, want %s: %+v", v.Current, want, v)
			}
			return nil
		}
	}
	shelftest.Eventually(t, 10*time.Second, "mgmt blade's traffic toward the active hub", hubPathIs(fmt.Sprintf("base%d", act-1)))
	before, _, _ := withShelf()
	sh.Kill(t, act)
	killed := time.Now()
	act = standby
	for time.Since(killed) < fastMaxAge+fastFwdDelay+4*time.Second {
		if err := noTC(); err != nil {
			t.Fatalf("%v after %v: the kill cost the core network a topology change", err, time.Since(killed).Round(10*time.Millisecond))
		}
		tr := tree{Roles: map[string]string{}}
		for _, br := range []string{"K1", "K2"} {
			if !c.kernelBridge(t, br).observe(&tr, br, nil) {
				t.Fatalf("a kernel bridge port left its state %v after the kill: %s", time.Since(killed).Round(10*time.Millisecond), tr)
			}
		}
		for k, v := range tr.Roles {
			if before.Roles[k] != v {
				t.Fatalf("%s is %s %v after the kill, was %s", k, v, time.Since(killed).Round(10*time.Millisecond), before.Roles[k])
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	v, err := s.view(t, act)
	if err != nil || v.Role != "active" || v.Takeover == nil || !v.Takeover.Restored || !v.Bridge.IsRoot {
		t.Fatalf("hub %d after the kill: %+v, %v; want active, restored from the checkpoint, root", act, v, err)
	}
	t.Logf("takeover by hub %d: restored from a checkpoint %v old", act, v.Takeover.Age)
	// The node moved to its channel toward the new active hub (at the carrier loss already).
	shelftest.Eventually(t, 10*time.Second, "mgmt blade's traffic toward the new active hub", hubPathIs(fmt.Sprintf("base%d", act-1)))

	// 6. Every captured BPDU decodes in tshark; the hubs' own are there.
	capt.stop()
	all := tsharkCount(t, capt.file, "stp")
	if bad := tsharkCount(t, capt.file, "_ws.malformed || _ws.expert.severity >= error"); bad != 0 {
		t.Fatalf("tshark: %d malformed frames among %d BPDUs", bad, all)
	}
	own := tsharkCount(t, capt.file, "stp && stp.bridge.hw == "+shelfID.MAC().String())
	tcn := tsharkCount(t, capt.file, "stp.type == 0x80")
	t.Logf("tshark: %d BPDUs, %d from the shelf's logical bridge, %d TCNs, none malformed", all, own, tcn)
	if own == 0 || all <= own {
		t.Fatalf("tshark: %d BPDUs, %d from the shelf: want BPDUs from the shelf and from the kernel bridges", all, own)
	}
}
