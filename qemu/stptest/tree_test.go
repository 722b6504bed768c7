package stptest

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"

	"github.com/cgoa/cgoa/stp"
)

// A network of 802.1D bridges on LANs, as the test wires it, and the tree 802.1D makes of it.

type netPort struct {
	Bridge string
	Name   string
	ID     stp.PortID
	Cost   uint32
	LAN    string
}

type netBridge struct {
	Name string
	ID   stp.BridgeID
}

type network struct {
	Bridges []netBridge
	Ports   []netPort
}

// Port roles as the tree shows them.
const (
	roleRoot       = "root"
	roleDesignated = "designated"
	roleBlocked    = "blocked"
)

// tree is a converged spanning tree: the root bridge and every port's role, by "bridge.port".
type tree struct {
	Root  string
	Roles map[string]string
}

func (t tree) String() string {
	var keys []string
	for k := range t.Roles {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "root %s:", t.Root)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%s", k, t.Roles[k])
	}
	return b.String()
}

func (t tree) equal(u tree) bool {
	if t.Root != u.Root || len(t.Roles) != len(u.Roles) {
		return false
	}
	for k, v := range t.Roles {
		if u.Roles[k] != v {
			return false
		}
	}
	return true
}

// vector is a priority vector compared as 802.1D does: root path cost, designated bridge,
// designated port, receiving port.
type vector struct {
	cost        uint64
	bridge      stp.BridgeID
	port, local stp.PortID
}

func (v vector) less(w vector) bool {
	switch {
	case v.cost != w.cost:
		return v.cost < w.cost
	case v.bridge != w.bridge:
		return v.bridge < w.bridge
	case v.port != w.port:
		return v.port < w.port
	}
	return v.local < w.local
}

// expected computes the tree 802.1D converges to, independently of any bridge code: the
// bridge with the lowest identifier is root; each LAN's designated port is the one offering
// the best (root path cost, bridge, port); each other bridge's root port is the one
// receiving the best vector from another bridge's designated port; every other port blocks.
func (n network) expected() tree {
	ids := map[string]stp.BridgeID{}
	root := n.Bridges[0]
	for _, b := range n.Bridges {
		ids[b.Name] = b.ID
		if b.ID < root.ID {
			root = b
		}
	}
	cost := map[string]uint64{}
	for _, b := range n.Bridges {
		cost[b.Name] = math.MaxUint64
	}
	cost[root.Name] = 0
	rootPort := map[string]int{} // bridge -> index in n.Ports
	designated := map[string]int{}
	for range len(n.Bridges) + len(n.Ports) {
		// Designated port of each LAN.
		designated = map[string]int{}
		for i, p := range n.Ports {
			if cost[p.Bridge] == math.MaxUint64 {
				continue
			}
			j, ok := designated[p.LAN]
			if !ok || (vector{cost[p.Bridge], ids[p.Bridge], p.ID, 0}).less(vector{cost[n.Ports[j].Bridge], ids[n.Ports[j].Bridge], n.Ports[j].ID, 0}) {
				designated[p.LAN] = i
			}
		}
		// Root port and cost of each other bridge.
		for _, b := range n.Bridges {
			if b.Name == root.Name {
				continue
			}
			best, bi := vector{cost: math.MaxUint64}, -1
			for i, q := range n.Ports {
				if q.Bridge != b.Name {
					continue
				}
				j, ok := designated[q.LAN]
				if !ok || n.Ports[j].Bridge == b.Name {
					continue
				}
				d := n.Ports[j]
				v := vector{cost[d.Bridge] + uint64(q.Cost), ids[d.Bridge], d.ID, q.ID}
				if bi < 0 || v.less(best) {
					best, bi = v, i
				}
			}
			if bi >= 0 {
				cost[b.Name], rootPort[b.Name] = best.cost, bi
			}
		}
	}
	t := tree{Root: root.Name, Roles: map[string]string{}}
	for i, p := range n.Ports {
		role := roleBlocked
		switch {
		case rootPort[p.Bridge] == i && p.Bridge != root.Name:
			role = roleRoot
		case designated[p.LAN] == i:
			role = roleDesignated
		}
		t.Roles[p.Bridge+"."+p.Name] = role
	}
	return t
}

// TestExpectedTree checks the calculator on hand-solved networks.
func TestExpectedTree(t *testing.T) {
	id := func(prio uint16, last byte) stp.BridgeID {
		v, _ := stp.NewBridgeID(prio, []byte{2, 0, 0, 0, 0, last})
		return v
	}
	pid := func(n uint16) stp.PortID { v, _ := stp.NewPortID(128, n); return v }
	// Triangle A-B-C, A root: the link B-C blocks at the bridge with the higher identifier.
	tri := network{
		Bridges: []netBridge{{"A", id(0x1000, 1)}, {"B", id(0x8000, 2)}, {"C", id(0x8000, 3)}},
		Ports: []netPort{
			{"A", "1", pid(1), 10, "ab"}, {"A", "2", pid(2), 10, "ac"},
			{"B", "1", pid(1), 10, "ab"}, {"B", "2", pid(2), 10, "bc"},
			{"C", "1", pid(1), 10, "ac"}, {"C", "2", pid(2), 10, "bc"},
		},
	}
	want := "root A: A.1=designated A.2=designated B.1=root B.2=designated C.1=root C.2=blocked"
	if got := tri.expected().String(); got != want {
		t.Errorf("triangle: expected() = %s, want %s", got, want)
	}
	// A shared LAN with A, B and C, and a link B-C: B and C have root ports on the LAN;
	// on the link, B (lower identifier) is designated and C blocks.
	lan := network{
		Bridges: tri.Bridges,
		Ports: []netPort{
			{"A", "1", pid(1), 10, "lan"},
			{"B", "1", pid(1), 10, "lan"}, {"B", "2", pid(2), 10, "bc"},
			{"C", "1", pid(1), 10, "lan"}, {"C", "2", pid(2), 10, "bc"},
		},
	}
	want = "root A: A.1=designated B.1=root B.2=designated C.1=root C.2=blocked"
	if got := lan.expected().String(); got != want {
		t.Errorf("shared LAN: expected() = %s, want %s", got, want)
	}
	// A cheaper detour wins: with the C side of A's link costing 100, C's root port is
	// through B.
	tri.Ports[4].Cost = 100
	want = "root A: A.1=designated A.2=designated B.1=root B.2=designated C.1=blocked C.2=root"
	if got := tri.expected().String(); got != want {
		t.Errorf("detour: expected() = %s, want %s", got, want)
	}
}
