package switchblade

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cgoa/cgoa/blades/shelf"
	"github.com/cgoa/cgoa/ha"
	"github.com/cgoa/cgoa/ha/amf"
	"github.com/cgoa/cgoa/ha/ckpt"
	"github.com/cgoa/cgoa/ha/clm"
	"github.com/cgoa/cgoa/ha/transport"
)

// gateShelf is hubs 1 and 2 and a third voter (slot 3) running the HA core over loopback UDP,
// two sockets (paths) each; every hub attaches its agent as the role does (attachHA).
type gateShelf struct {
	t      *testing.T
	cfg    amf.Config
	key    transport.Key
	trs    map[uint8]*transport.UDPTransport
	blades map[uint8]*ha.Blade
	nodes  map[uint8]*ckpt.Node
	// blockCkpt drops the switch checkpoint's frames arriving at a slot (its replica
	// cannot get in sync).
	blockCkpt map[uint8]*atomic.Bool
}

func newGateShelf(t *testing.T) *gateShelf {
	cfg, err := shelf.HAConfig(7, []shelf.Member{{Slot: 1, Role: "switch"}, {Slot: 2, Role: "switch"}, {Slot: 3, Role: "mgmt"}},
		clm.Timers{Interval: 20 * time.Millisecond, Misses: 5})
	if err != nil {
		t.Fatal(err)
	}
	return &gateShelf{t: t, cfg: cfg, key: transport.Key("switch-gate-test-shelf-key-0123"), trs: map[uint8]*transport.UDPTransport{},
		blades: map[uint8]*ha.Blade{}, nodes: map[uint8]*ckpt.Node{}, blockCkpt: map[uint8]*atomic.Bool{}}
}

// start starts slot's HA core (and, on a hub, its agent's checkpoint and component) and
// tells every running slot of every other's sockets.
func (s *gateShelf) start(slot uint8, blockCkpt bool) {
	t := s.t
	t.Helper()
	block := &atomic.Bool{}
	block.Store(blockCkpt)
	s.blockCkpt[slot] = block
	lo := netip.MustParseAddrPort("127.0.0.1:0")
	b, err := ha.StartWith(ha.Options{Config: s.cfg, Slot: slot, Key: s.key}, func(ep *transport.Endpoint, h transport.Handler) (transport.Transport, error) {
		filtered := func(f transport.Frame) {
			if f.Type == CkptFrameType && block.Load() {
				return
			}
			h(f)
		}
		tr, err := transport.ListenUDP(ep, []transport.UDPPath{{Local: lo}, {Local: lo}}, filtered)
		s.trs[slot] = tr
		return tr, err
	})
	if err != nil {
		t.Fatalf("ha.StartWith(slot %d) = %v", slot, err)
	}
	s.blades[slot] = b
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		b.Close(ctx)
	})
	for self, tr := range s.trs {
		for path := range 2 {
			peers := map[uint8]netip.AddrPort{}
			for other, o := range s.trs {
				if other != self {
					peers[other] = o.LocalAddr(path)
				}
			}
			tr.SetPeers(path, peers)
		}
	}
	if slot > 2 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	a := NewAgent(AgentConfig{Shelf: 7, NoSTP: true, Logf: t.Logf})
	node, err := attachHA(ctx, b, int(slot), a, t.Errorf)
	if err != nil {
		t.Fatalf("attachHA(slot %d) = %v", slot, err)
	}
	s.nodes[slot] = node
}

// unit is switch-<hub> as slot sees it.
func (s *gateShelf) unit(slot, hub uint8) amf.UnitStatus {
	g, _, _, _ := s.blades[slot].Group(shelf.GroupSwitch)
	for _, u := range g.Units {
		if u.Node == hub {
			return u
		}
	}
	return amf.UnitStatus{}
}

func (s *gateShelf) await(within time.Duration, what string, cond func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			s.dump()
			s.t.Fatalf("%s: not within %v; switch group seen from slot 3: %+v", what, within, s.unit(3, 1))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// dump logs every blade's view of the switch group, its checkpoint node's readiness and its
// recent events: what a failed wait needs to be understood.
func (s *gateShelf) dump() {
	for slot, b := range s.blades {
		st := b.Status()
		for _, g := range st.Groups {
			if g.Name == shelf.GroupSwitch {
				s.t.Logf("slot %d sees %+v", slot, g.Units)
			}
		}
		if n := s.nodes[slot]; n != nil {
			s.t.Logf("slot %d checkpoint node: ready %v, live writer %v, %+v", slot, n.Ready(), n.LiveWriter(), n.Status())
		}
		for _, e := range st.Events {
			s.t.Logf("slot %d event %s", slot, e)
		}
	}
}

// TestSTPReadinessGate: the switch-stp component's readiness gate is its checkpoint
// replica. A hub whose replica of the active's tree is not in sync is not-ready: it does not
// count as the standby and, while the in-sync hub lives, never takes the active assignment,
// not even when an admin switchover frees it; once in sync it is the standby, and a
// switchover hands it the group with the active's tree in its replica.
func TestSTPReadinessGate(t *testing.T) {
	s := newGateShelf(t)
	s.start(1, false)
	s.start(3, false)
	s.await(10*time.Second, "hub 1 active", func() bool { return s.unit(3, 1).State == amf.Active && s.unit(1, 1).State == amf.Active })
	tree := bytes.Repeat([]byte("root 4096.000000000007 port uplink0 "), 20)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.nodes[1].Write(ctx, ckptName, ckptSection, tree, true); err != nil {
		t.Fatalf("hub 1 writes its tree: %v", err)
	}

	// Hub 2 joins, its checkpoint frames dropped: it stays out of sync.
	s.start(2, true)
	s.await(10*time.Second, "hub 2 seen not-ready", func() bool {
		u2 := s.unit(3, 2)
		return u2.Known && u2.Oper == amf.NotReady && s.unit(2, 2).Oper == amf.NotReady
	})
	if s.nodes[2].Ready() {
		t.Fatalf("hub 2's replica Ready() = true with its checkpoint frames dropped, want false")
	}
	// A switchover frees the group: the out-of-sync hub must not take it while hub 1 lives;
	// hub 1 takes it back after yielding.
	if err := s.blades[3].Switchover(shelf.GroupSwitch); err != nil {
		t.Fatal(err)
	}
	_, _, lease, _ := s.blades[3].Group(shelf.GroupSwitch)
	yielded := false
	watchUntil := time.Now().Add(4*lease + time.Second)
	for time.Now().Before(watchUntil) {
		if st := s.unit(2, 2).State; st == amf.Active {
			t.Fatalf("out-of-sync hub 2 took the active assignment (lease %v) while in-sync hub 1 lives", lease)
		}
		yielded = yielded || s.unit(1, 1).State != amf.Active
		time.Sleep(2 * time.Millisecond)
	}
	if !yielded {
		t.Fatalf("hub 1 never gave the group up on the switchover")
	}
	s.await(10*time.Second, "hub 1 active again", func() bool { return s.unit(1, 1).State == amf.Active })

	// Frames flow: hub 2 resyncs, is ready, holds hub 1's tree and is the standby.
	s.blockCkpt[2].Store(false)
	s.await(20*time.Second, "hub 2 in sync and ready", func() bool {
		return s.nodes[2].Ready() && s.unit(3, 2).Oper == amf.InService
	})
	if got, err := s.nodes[2].Read(ckptName, ckptSection); err != nil || !bytes.Equal(got, tree) {
		t.Fatalf("hub 2's replica = %d bytes, %v; want hub 1's %d-byte tree", len(got), err, len(tree))
	}
	if err := s.blades[3].Switchover(shelf.GroupSwitch); err != nil {
		t.Fatal(err)
	}
	s.await(10*time.Second, "in-sync hub 2 takes the group on a switchover", func() bool {
		return s.unit(2, 2).State == amf.Active && s.unit(3, 2).State == amf.Active
	})
	if got, err := s.nodes[2].Read(ckptName, ckptSection); err != nil || !bytes.Equal(got, tree) {
		t.Fatalf("new active hub 2's section = %d bytes, %v; want the tree", len(got), err)
	}
	t.Logf("lease %v; hub 1 seen by slot 3: %s", lease, fmt.Sprint(s.unit(3, 1)))
}
