package bridge

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cgoa/cgoa/stp"
)

// treeLink is a point-to-point link between port pa of bridge a and port
// pb of bridge b; both ends have path cost cost.
type treeLink struct {
	a      int
	pa     uint16
	b      int
	pb     uint16
	cost   uint32
	na, nb string // interface names
}

type portRef struct {
	bridge int
	port   uint16
}

// tree is a spanning tree: the root bridge, each bridge's root port (0 at
// the root) and the blocked ports.
type tree struct {
	root     int
	rootPort []uint16
	blocked  map[portRef]bool
}

func (t tree) String() string {
	bl := slices.SortedFunc(maps.Keys(t.blocked), func(x, y portRef) int {
		return cmp.Or(cmp.Compare(x.bridge, y.bridge), cmp.Compare(x.port, y.port))
	})
	return fmt.Sprintf("root %d, root ports %v, blocked %v", t.root, t.rootPort, bl)
}

// expectedTree computes the 802.1D tree from the topology alone: root is
// the lowest bridge identifier; root path costs are shortest paths (cost
// counted at the receiving port); on each link the end with the better
// (root path cost, bridge id, port id) is designated; a bridge's root port
// is the port whose received vector (designated cost + port cost,
// designated bridge, designated port, own port id) is lowest; every other
// non-designated port blocks. Port identifiers are the default 0x8000|n.
func expectedTree(ids []stp.BridgeID, links []treeLink) tree {
	root := 0
	for i, id := range ids {
		if id < ids[root] {
			root = i
		}
	}
	rc := make([]uint64, len(ids))
	for i := range rc {
		rc[i] = math.MaxUint32 * 4
	}
	rc[root] = 0
	for range ids {
		for _, l := range links {
			rc[l.b] = min(rc[l.b], rc[l.a]+uint64(l.cost))
			rc[l.a] = min(rc[l.a], rc[l.b]+uint64(l.cost))
		}
	}
	type vec struct {
		cost uint64
		id   stp.BridgeID
		port uint16
	}
	less := func(x, y vec) bool {
		return x.cost < y.cost || x.cost == y.cost && (x.id < y.id || x.id == y.id && x.port < y.port)
	}
	t := tree{root: root, rootPort: make([]uint16, len(ids)), blocked: map[portRef]bool{}}
	type cand struct {
		v   vec
		own uint16
	}
	best := make([]*cand, len(ids))
	designated := map[portRef]bool{}
	for _, l := range links {
		va := vec{rc[l.a], ids[l.a], 0x8000 | l.pa}
		vb := vec{rc[l.b], ids[l.b], 0x8000 | l.pb}
		des, other, op := va, l.b, l.pb
		designated[portRef{l.a, l.pa}] = true
		if less(vb, va) {
			des, other, op = vb, l.a, l.pa
			delete(designated, portRef{l.a, l.pa})
			designated[portRef{l.b, l.pb}] = true
		}
		c := &cand{vec{des.cost + uint64(l.cost), des.id, des.port}, 0x8000 | op}
		if b := best[other]; b == nil || less(c.v, b.v) || c.v == b.v && c.own < b.own {
			best[other] = c
		}
		t.blocked[portRef{other, op}] = true
	}
	for i, c := range best {
		if i != root && c != nil {
			t.rootPort[i] = c.own & stp.MaxPortNumber
			delete(t.blocked, portRef{i, t.rootPort[i]})
		}
	}
	for p := range designated {
		delete(t.blocked, p)
	}
	return t
}

// parseIPBridgeID parses iproute2's "8000.2:5f:a:b:c:d" form.
func parseIPBridgeID(s string) (stp.BridgeID, error) {
	prio, mac, ok := strings.Cut(s, ".")
	if !ok {
		return 0, fmt.Errorf("bridge id %q", s)
	}
	p, err := strconv.ParseUint(prio, 16, 16)
	if err != nil {
		return 0, fmt.Errorf("bridge id %q: %v", s, err)
	}
	parts := strings.Split(mac, ":")
	if len(parts) != 6 {
		return 0, fmt.Errorf("bridge id %q", s)
	}
	hw := make(net.HardwareAddr, 6)
	for i, x := range parts {
		v, err := strconv.ParseUint(x, 16, 8)
		if err != nil {
			return 0, fmt.Errorf("bridge id %q: %v", s, err)
		}
		hw[i] = byte(v)
	}
	return stp.NewBridgeID(uint16(p), hw)
}

// kernelBridge reads a kernel STP bridge's view through iproute2.
type kernelBridge struct {
	ns   netNS
	name string
}

func (k kernelBridge) info(t *testing.T, dev string) map[string]any {
	t.Helper()
	var out []struct {
		LinkInfo struct {
			Data  map[string]any `json:"info_data"`
			Slave map[string]any `json:"info_slave_data"`
		} `json:"linkinfo"`
	}
	if err := json.Unmarshal([]byte(k.ns.ip(t, "-d", "-j", "link", "show", "dev", dev)), &out); err != nil || len(out) != 1 {
		t.Fatalf("ip -d -j link show %s: %v", dev, err)
	}
	if out[0].LinkInfo.Data != nil {
		return out[0].LinkInfo.Data
	}
	return out[0].LinkInfo.Slave
}

func TestLoopWithKernelBridge(t *testing.T) {
	requireNetNS(t)
	for _, tc := range []struct {
		name  string
		prio  [3]uint16 // agent A, agent B, kernel bridge C
		costs [3]uint32 // links A-B, A-C, B-C
	}{
		// The kernel bridge is root; agent B blocks its port toward A.
		{"kernel root", [3]uint16{0x8000, 0x9000, 0x1000}, [3]uint32{19, 19, 19}},
		// Agent A is root; the costs make C reach it through B, so the
		// kernel bridge blocks its direct port toward A.
		{"agent root", [3]uint16{0x1000, 0x2000, 0x8000}, [3]uint32{19, 100, 19}},
	} {
		t.Run(tc.name, func(t *testing.T) { loopTest(t, tc.prio, tc.costs) })
	}
}

func loopTest(t *testing.T, prio [3]uint16, costs [3]uint32) {
	ns := [3]netNS{newNetNS(t, "a"), newNetNS(t, "b"), newNetNS(t, "c")}
	links := []treeLink{
		{a: 0, pa: 1, na: "a1", b: 1, pb: 1, nb: "b1", cost: costs[0]},
		{a: 0, pa: 2, na: "a2", b: 2, pb: 1, nb: "c1", cost: costs[1]},
		{a: 1, pa: 2, na: "b2", b: 2, pb: 2, nb: "c2", cost: costs[2]},
	}
	for _, l := range links {
		veth(t, ns[l.a], l.na, ns[l.b], l.nb)
	}
	// The kernel bridge, with the same fast timers, its ports in
	// number order with explicit costs.
	c := kernelBridge{ns[2], "brc"}
	ns[2].ip(t, "link", "add", "brc", "type", "bridge", "stp_state", "1",
		"priority", strconv.Itoa(int(prio[2])), "forward_delay", "400", "hello_time", "100", "max_age", "600")
	for _, l := range links[1:] {
		ns[2].ip(t, "link", "set", l.nb, "master", "brc")
		ns[2].ip(t, "link", "set", l.nb, "type", "bridge_slave", "cost", strconv.Itoa(int(l.cost)))
	}
	ns[2].ip(t, "link", "set", "brc", "up")

	var ids [3]stp.BridgeID
	var agents [2]*stp.Bridge
	var brs [2]*Bridge
	for i := range 2 {
		var ports []Port
		for _, l := range links {
			if l.a == i {
				ports = append(ports, Port{Name: l.na, Number: l.pa, PathCost: l.cost})
			}
			if l.b == i {
				ports = append(ports, Port{Name: l.nb, Number: l.pb, PathCost: l.cost})
			}
		}
		br, err := Open(Config{Name: "br0", Create: true, NoSTP: true, NetNS: ns[i].path, Ports: ports})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { br.Close() })
		cfg := fastTimers
		if cfg.ID, err = stp.NewBridgeID(prio[i], br.MAC()); err != nil {
			t.Fatal(err)
		}
		sb, err := br.NewSTP(cfg, WallClock{})
		if err != nil {
			t.Fatal(err)
		}
		runAgent(t, br, sb)
		ids[i], agents[i], brs[i] = cfg.ID, sb, br
	}
	kid, err := parseIPBridgeID(c.info(t, "brc")["bridge_id"].(string))
	if err != nil {
		t.Fatal(err)
	}
	ids[2] = kid
	want := expectedTree(ids[:], links)
	t.Logf("bridges %v; 802.1D tree: %v", ids, want)

	// The tree as the three bridges see it, once every port has left
	// listening and learning.
	observe := func() (tree, bool, string) {
		got := tree{root: -1, rootPort: make([]uint16, 3), blocked: map[portRef]bool{}}
		settled := true
		var desc []string
		roots := map[stp.BridgeID]bool{}
		for i, sb := range agents {
			s := sb.Snapshot()
			roots[s.Root] = true
			got.rootPort[i] = s.RootPort
			for _, p := range s.Ports {
				k, err := brs[i].PortState(p.Number)
				// No-STP mode holds blocking as listening.
				wantK := p.State
				if p.State == stp.Blocking {
					wantK = stp.Listening
				}
				if err != nil || k != wantK {
					settled = false
				}
				switch p.State {
				case stp.Blocking:
					got.blocked[portRef{i, p.Number}] = true
				case stp.Forwarding:
				default:
					settled = false
				}
				desc = append(desc, fmt.Sprintf("%d.%d %v/kernel %v", i, p.Number, p.State, k))
			}
		}
		// Root and root port from sysfs: `ip -d -j link show` reported
		// the bridge's own identifier as root_id here (kernel 6.18).
		var kr stp.BridgeID
		sys := strings.Fields(c.ns.exec(t, "cat", "/sys/class/net/brc/bridge/root_id", "/sys/class/net/brc/bridge/root_port"))
		if len(sys) != 2 {
			t.Fatalf("sysfs root_id, root_port = %q", sys)
		}
		if err := kr.UnmarshalText([]byte(sys[0])); err != nil {
			t.Fatal(err)
		}
		rp, err := strconv.ParseUint(sys[1], 0, 16)
		if err != nil {
			t.Fatal(err)
		}
		roots[kr] = true
		got.rootPort[2] = uint16(rp)
		for _, l := range links[1:] {
			st := c.info(t, l.nb)["state"].(string)
			switch st {
			case "blocking":
				got.blocked[portRef{2, l.pb}] = true
			case "forwarding":
			default:
				settled = false
			}
			desc = append(desc, fmt.Sprintf("2.%d %s", l.pb, st))
		}
		if len(roots) == 1 {
			for r := range roots {
				got.root = slices.Index(ids[:], r)
			}
		}
		return got, settled, fmt.Sprintf("%v; roots %v; %s", got, slices.Collect(maps.Keys(roots)), strings.Join(desc, ", "))
	}
	// Convergence bound: max age to age out stale information plus two
	// forward delays to forward, plus slack for CI load.
	bound := fastTimers.MaxAge + 2*fastTimers.ForwardDelay + 5*time.Second
	eventually(t, bound, "tree "+want.String(), func() (bool, string) {
		got, settled, desc := observe()
		return settled && got.String() == want.String(), desc
	})
}
