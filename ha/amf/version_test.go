package amf

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// placement is what Version must follow in a node's view: each unit's
// HA state, instances and readiness as far as it is known (the fields
// ckpt.GroupRoles and the roles that follow a group read).
func placement(n *Node) string {
	var b strings.Builder
	for _, g := range n.cfg.Groups {
		gs, _ := n.GroupStatus(g.Name)
		for _, u := range gs.Units {
			b.WriteString(u.Name)
			b.WriteByte(':')
			b.WriteString(strconv.FormatBool(u.Known))
			b.WriteByte('/')
			b.WriteString(u.State.String())
			b.WriteByte('/')
			b.WriteString(strings.Join(u.Instances, ","))
			if n.units[u.Name] == nil { // a remote unit's readiness, as its blade reports it
				b.WriteByte('/')
				b.WriteString(string(u.Oper))
			}
			b.WriteByte(' ')
		}
	}
	return b.String()
}

// TestVersionFollowsPlacement: across kills, restarts, pauses and a
// switchover, after every event of the simulation, a node whose view of
// the units' placement changed has a new Version (a follower waiting on
// ha.Blade.Changed never misses a change); and in a quiet shelf Version
// stays put (an idle blade wakes no follower).
func TestVersionFollowsPlacement(t *testing.T) {
	for seed := uint64(1); seed <= 2; seed++ {
		s := newSimShelf(t, shelfConfig(), seed)
		type seen struct {
			node    *Node
			version uint64
			view    string
		}
		last := map[uint8]seen{}
		moves := 0
		check := func() {
			for slot, sn := range s.nodes {
				if !sn.alive || sn.node == nil {
					continue
				}
				v, view := sn.node.Version(), placement(sn.node)
				if l, ok := last[slot]; ok && l.node == sn.node && view != l.view {
					if v == l.version {
						t.Fatalf("seed %d: slot %d at %v: placement changed without a new Version (%d)\nwas %s\nnow %s", seed, slot, s.loop.Now(), v, l.view, view)
					}
					moves++
				}
				last[slot] = seen{sn.node, v, view}
			}
		}
		s.loop.AfterEvent = func() {
			if err := s.checkSafety(); err != nil {
				t.Fatal(err)
			}
			check()
		}
		s.startAll()
		s.loop.RunFor(300 * time.Millisecond)

		quiet := map[uint8]uint64{}
		for slot, sn := range s.nodes {
			quiet[slot] = sn.node.Version()
		}
		s.loop.RunFor(100 * s.cfg.Timers.Interval)
		for slot, sn := range s.nodes {
			if got := sn.node.Version(); got != quiet[slot] {
				t.Errorf("seed %d: slot %d: Version moved %d -> %d in a quiet shelf", seed, slot, quiet[slot], got)
			}
		}

		s.kill(3)
		s.loop.RunFor(200 * time.Millisecond)
		s.start(3)
		s.loop.RunFor(200 * time.Millisecond)
		s.pause(1)
		s.loop.RunFor(100 * time.Millisecond)
		s.resume(1)
		s.loop.RunFor(200 * time.Millisecond)
		if err := s.nodes[5].node.Switchover(s.now(5), "mgmt"); err != nil {
			t.Fatalf("seed %d: Switchover(mgmt) error %v", seed, err)
		}
		s.loop.RunFor(200 * time.Millisecond)
		s.kill(6)
		s.loop.RunFor(300 * time.Millisecond)
		if moves == 0 {
			t.Fatalf("seed %d: no placement change seen: the check checked nothing", seed)
		}
	}
}
