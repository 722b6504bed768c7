package ckpt

import (
	"slices"
	"time"

	"github.com/cgoa/cgoa/ha"
	"github.com/cgoa/cgoa/ha/amf"
)

// Roles works out, from a blade's `show ha` data, who writes and who
// replicates group's checkpoints: the slot of the group's active unit
// (0: none known) and the slots of its other units, other than self,
// whose blades are up (the AMF's standby, for a 2N group the standby
// unit's blade, and any unit it does not count as standby at this
// instant: a unit whose standby state flickers under load, or one that
// is locked, stays a replica and in sync, so it can take over when the
// AMF next chooses it).
func Roles(st amf.Status, group string) (writer uint8, replicas []uint8) {
	for _, g := range st.Groups {
		if g.Name == group {
			return GroupRoles(g, st.Self)
		}
	}
	return 0, nil
}

// GroupRoles is Roles for one group's status as slot self sees it
// (ha.Blade.Group: far cheaper to poll than the whole status).
func GroupRoles(g amf.GroupStatus, self uint8) (writer uint8, replicas []uint8) {
	for _, u := range g.Units {
		if u.Known && u.State == amf.Active {
			writer = u.Node
		}
	}
	for _, u := range g.Units {
		if u.Known && u.State != amf.Active && u.Node != self && u.Node != writer && !slices.Contains(replicas, u.Node) {
			replicas = append(replicas, u.Node)
		}
	}
	slices.Sort(replicas)
	return writer, replicas
}

// Track keeps the Node's writer and replica set in line with the AMF:
// every interval it reads b's status and tells a replica which slot
// writes (Follow) and a writer which blades replicate (SetReplicas).
// What it reads also drives the Node's readiness gate (Ready: register
// it as the unit's component's amf.Component.Ready) and the in-sync
// lease (Options.SyncLease: three detection times plus two idle polls).
// Promotion and demotion come from the unit's component Assign callback
// (Promote on Active, Demote otherwise; see cmd/ckptnode): it runs on
// the HA loop, which must not read the blade's status. It returns a function that stops
// tracking.
func (n *Node) Track(b *ha.Blade, group string, interval time.Duration) (stop func()) {
	done := make(chan struct{})
	exited := make(chan struct{})
	update := func() {
		g, self, lease, _ := b.Group(group)
		w, r := GroupRoles(g, self)
		n.Do(func(s *Service, now time.Duration) {
			n.setView(s.opt.Self, w)
			// The in-sync lease must outlast a writer's death going
			// unnoticed (detection, up to the lease, is st.Lease) plus an
			// idle poll, with room for a loaded machine.
			s.SetSyncLease(3*lease + 2*s.opt.KeepAlive + 2*interval)
			if s.Active() {
				if !slices.Equal(r, s.Replicas()) {
					s.SetReplicas(now, r)
				}
			} else if w != s.opt.Self {
				s.Follow(w) // 0: no live writer
			}
		})
	}
	go func() {
		defer close(exited)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			update()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-exited }
}
