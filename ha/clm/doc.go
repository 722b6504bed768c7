// Package clm is the cluster membership service: heartbeats, the
// membership view with incarnation numbers, join, graceful leave, failure
// detection after Interval × Misses of silence, and two-way connectivity
// (a member is Connected when it is heard and its heartbeats say it hears
// us, so one-way loss is visible).
//
// Membership is a pure state machine: it is fed received heartbeats and
// the current time, and returns Changes; the caller sends Heartbeat()
// every Timers.Interval and calls Tick at NextDeadline. The incarnation of
// a member is its transport epoch, so a restarted member is seen as
// Restarted (its old assignments are gone) and its old frames are stale.
//
//	m, _ := clm.New(self, epoch, slots, clm.Timers{Interval: 10 * time.Millisecond, Misses: 3})
//	changes := m.Receive(now, hb)
//	changes = append(changes, m.Tick(now)...)
package clm
