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

// Track keeps the Node's writer and replica set in line with the AMF: at
// every change of the units' placement in b's view (ha.Blade.Changed),
// and at least every interval as a backstop, it reads the group and tells
// a replica which slot writes (Follow) and a writer which blades
// replicate (SetReplicas). An idle blade is not woken by it.
// What it reads also drives the Node's readiness gate (Ready: register
// it as the unit's component's amf.Component.Ready) and the in-sync
// lease (Options.SyncLease: syncLeaseFor the HA lease).
// Promotion and demotion come from the unit's component Assign callback
// (Promote on Active, Demote otherwise; see cmd/ckptnode): it runs on
// the HA loop, which must not read the blade's status. It returns a function that stops
// tracking.
func (n *Node) Track(b *ha.Blade, group string, interval time.Duration) (stop func()) {
	done := make(chan struct{})
	exited := make(chan struct{})
	// A change reaches Track a scheduling delay after the HA loop saw it;
	// trackLag stands for that delay in the in-sync lease.
	lag := min(interval, trackLag)
	update := func() {
		g, self, lease, _ := b.Group(group)
		w, r := GroupRoles(g, self)
		n.Do(func(s *Service, now time.Duration) {
			n.setView(s.opt.Self, w)
			s.SetSyncLease(syncLeaseFor(lease, s.opt.KeepAlive, lag))
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
			changed := b.Changed() // before the read: no change is missed
			update()
			select {
			case <-done:
				return
			case <-changed:
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-exited }
}

// trackLag is the longest Track is taken to lag the AMF's view by: the
// goroutine's scheduling delay after a change (the poll interval it
// replaced).
const trackLag = 20 * time.Millisecond

// syncLeaseFor is the in-sync lease (Options.SyncLease) for an HA lease
// (the detection time: the AMF gives a dead unit's assignment away once
// its lease has run out), the Service's idle poll and Track's lag.
// It must outlast the time from the replica's ack that the writer's last
// message echoes (the lease's anchor) until that replica learns the
// writer is gone (Follow(0) freezes its claim): the anchor can be two idle
// polls older than the writer's death (the ack of one poll is echoed by
// the next), then come the detection time and Track's lag, plus
// what a loaded machine adds (the AMF's own view of the death runs 0-10%
// past the lease under TCG); else a standby in sync would not be Ready
// when promoted and the takeover would wait one more lease. It should not
// last much longer: a writer holds synchronous writes for a replica it
// dropped in sync (a dead standby) until the lease has run out. So:
// detection, two polls, twice the lag and a margin of a quarter of the
// detection time, at least 100 ms; with the shelf's 1 s lease, 100 ms
// polls and a lag of 20 ms, 1.49 s. (With one poll and a tenth, 1.24 s,
// 3 of 20 QEMU kills found the standby's claim lapsed: takeover 2.4 s.)
func syncLeaseFor(lease, keepAlive, lag time.Duration) time.Duration {
	return lease + max(lease/4, 100*time.Millisecond) + 2*keepAlive + 2*lag
}
