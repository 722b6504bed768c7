package ckpt

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/cgoa/cgoa/ha"
	"github.com/cgoa/cgoa/ha/amf"
	"github.com/cgoa/cgoa/ha/clm"
	"github.com/cgoa/cgoa/ha/transport"
)

// TestNodeOverBlades: two HA blades over UDP on loopback, a checkpoint
// Node on each over the blades' authenticated transport. Synchronous
// writes return only once the replica has them; asynchronous writes of
// sections larger than a frame arrive whole.
func TestNodeOverBlades(t *testing.T) {
	cfg := amf.Config{Shelf: 1, Slots: []uint8{1, 2}, Timers: clm.Timers{Interval: 20 * time.Millisecond, Misses: 5},
		Groups: []amf.ServiceGroup{{Name: "mgmt", Model: amf.TwoN, Units: []amf.ServiceUnit{{Name: "mgmt-1", Node: 1}, {Name: "mgmt-2", Node: 2}}}}}
	key := transport.Key("node-test-shelf-key-0123456789")
	// Ports picked by the kernel: bind each blade's path, then tell the
	// other (the UDP transport takes peers at any time).
	var trs [3]*transport.UDPTransport
	var blades [3]*ha.Blade
	for _, slot := range []uint8{1, 2} {
		b, err := ha.StartWith(ha.Options{Config: cfg, Slot: slot, Key: key}, func(ep *transport.Endpoint, h transport.Handler) (transport.Transport, error) {
			tr, err := transport.ListenUDP(ep, []transport.UDPPath{{Local: netip.MustParseAddrPort("127.0.0.1:0")}}, h)
			trs[slot] = tr
			return tr, err
		})
		if err != nil {
			t.Fatal(err)
		}
		blades[slot] = b
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			b.Close(ctx)
		})
	}
	trs[1].SetPeers(0, map[uint8]netip.AddrPort{2: trs[2].LocalAddr(0)})
	trs[2].SetPeers(0, map[uint8]netip.AddrPort{1: trs[1].LocalAddr(0)})
	var nodes [3]*Node
	for _, slot := range []uint8{1, 2} {
		n, err := AttachBlade(blades[slot], transport.TypeUser+5, Options{Self: slot, Ring: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(n.Close)
		nodes[slot] = n
	}
	w, r := nodes[1], nodes[2]
	w.Do(func(s *Service, now time.Duration) {
		s.Promote(now)
		s.Open(now, "c", time.Minute)
		s.SetReplicas(now, []uint8{2})
	})
	r.Do(func(s *Service, _ time.Duration) { s.Follow(1) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rng := rand.New(rand.NewPCG(1, 2))
	big := make([]byte, 20000)
	for i := range big {
		big[i] = byte(rng.IntN(256))
	}
	for i := range 50 {
		if _, err := w.Write(ctx, "c", "big", big[:1000+i*300], false); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20 {
		data := []byte{byte(i), 1, 2, 3}
		if _, err := w.Write(ctx, "c", "sync", data, true); err != nil {
			t.Fatalf("sync Write(%d) error %v", i, err)
		}
		// Acknowledged: the replica has it now, no waiting.
		if got, err := r.Read("c", "sync"); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("replica after sync write %d: %v %v, want %v", i, got, err, data)
		}
	}
	if got, err := r.Read("c", "big"); err != nil || !bytes.Equal(got, big[:1000+49*300]) {
		t.Fatalf("replica big section: %d bytes %v, want %d (async before the sync writes, in order)", len(got), err, 1000+49*300)
	}
	if st := r.Status(); !st.Ready || st.Role != "replica" {
		t.Errorf("replica Status() = %+v, want ready replica", st)
	}
}

// TestNodeReady: the readiness gate (Node.Ready, the component's
// amf.Component.Ready). A replica is not ready while the AMF shows a live
// writer and that writer does not count it in sync (before Track has read
// the AMF at all, likewise); it is ready once the writer counts it in
// sync, and when no live writer is left to sync from (at once if it never
// saw one, one in-sync lease after it last saw one). The writer is always
// ready.
func TestNodeReady(t *testing.T) {
	type msg struct {
		to   uint8
		data []byte
	}
	q := make(chan msg, 1024)
	send := func(to uint8, b []byte) { q <- msg{to, append([]byte(nil), b...)} }
	const lease = 100 * time.Millisecond
	w := NewNode(Options{Self: 1, Send: send, SyncLease: lease})
	r := NewNode(Options{Self: 2, Send: send, SyncLease: lease})
	t.Cleanup(w.Close)
	t.Cleanup(r.Close)
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-done:
				return
			case m := <-q:
				to, from := r, uint8(1)
				if m.to == 1 {
					to, from = w, 2
				}
				to.Receive(from, m.data)
			}
		}
	}()
	t.Cleanup(func() { close(done); <-stopped })

	if r.Ready() {
		t.Errorf("fresh replica, AMF not read: Ready() = true, want false")
	}
	r.Do(func(s *Service, _ time.Duration) { r.setView(2, 0) })
	if !r.Ready() {
		t.Errorf("fresh replica, never saw a writer: Ready() = false, want true (nothing better to be had)")
	}
	r.Do(func(s *Service, _ time.Duration) { r.setView(2, 1) })
	if r.Ready() {
		t.Errorf("fresh replica, live writer 1: Ready() = true, want false")
	}
	gone := time.Now()
	r.Do(func(s *Service, _ time.Duration) { r.setView(2, 0) })
	if r.Ready() && time.Since(gone) < lease {
		t.Errorf("fresh replica, writer just gone: Ready() = true, want false for %v (it may only seem dead)", lease)
	}
	for !r.Ready() {
		if time.Since(gone) > 10*lease {
			t.Fatalf("fresh replica, writer gone %v: Ready() = false, want true after %v", time.Since(gone), lease)
		}
		time.Sleep(time.Millisecond)
	}
	// The writer writes alone (durable at once), then the replica joins:
	// not ready until it holds those records.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w.Do(func(s *Service, now time.Duration) {
		s.Promote(now)
		s.Open(now, "c", time.Minute)
	})
	if !w.Ready() {
		t.Errorf("writer: Ready() = false, want true")
	}
	for i := range 20 {
		if _, err := w.Write(ctx, "c", fmt.Sprintf("s%d", i), bytes.Repeat([]byte{byte(i)}, 3000), true); err != nil {
			t.Fatal(err)
		}
	}
	// The replica is not in the writer's set yet: nothing flows to it.
	r.Do(func(s *Service, _ time.Duration) {
		r.setView(2, 1)
		s.Follow(1)
	})
	if r.Ready() {
		t.Errorf("replica following live writer 1 before any resync: Ready() = true, want false")
	}
	w.Do(func(s *Service, now time.Duration) { s.SetReplicas(now, []uint8{2}) })
	deadline := time.Now().Add(10 * time.Second)
	for !r.Ready() {
		if time.Now().After(deadline) {
			t.Fatalf("replica not ready 10s after joining: %+v", r.Status())
		}
		time.Sleep(time.Millisecond)
	}
	for i := range 20 {
		got, err := r.Read("c", fmt.Sprintf("s%d", i))
		if want := bytes.Repeat([]byte{byte(i)}, 3000); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("ready replica: section s%d = %d bytes %v, want the writer's %d bytes", i, len(got), err, len(want))
		}
	}
	// Another writer appears (say the AMF moved the group): the records
	// the replica holds may be a tail that writer never had.
	r.Do(func(s *Service, _ time.Duration) {
		r.setView(2, 3)
		s.Follow(3)
	})
	if r.Ready() {
		t.Errorf("replica of a new live writer 3, not in sync with it: Ready() = true, want false")
	}
}

// TestSyncLease: a writer that drops a replica in sync from its set (the
// AMF no longer counts it, while it may be alive and stopped) holds
// synchronous writes until the replica's in-sync lease has run out, and
// the replica's own claim runs out no later; a replica told the writer is
// gone (Follow(0)) keeps the claim it had then.
func TestSyncLease(t *testing.T) {
	type msg struct {
		to   uint8
		data []byte
	}
	var q []msg
	cut := false
	send := func(to uint8, b []byte) {
		if !cut {
			q = append(q, msg{to, append([]byte(nil), b...)})
		}
	}
	const lease = 500 * time.Millisecond
	opt := Options{SyncLease: lease, Send: send}
	opt.Self = 1
	w := New(opt)
	opt.Self = 2
	r := New(opt)
	now := time.Duration(0)
	svcs := map[uint8]*Service{1: w, 2: r}
	deliver := func() {
		for len(q) > 0 {
			m := q[0]
			q = q[1:]
			from := uint8(1)
			if m.to == 1 {
				from = 2 // the writer hears only from the replica it has
				if svcs[3] != nil {
					from = 3
				}
			}
			svcs[m.to].Receive(now, from, m.data)
		}
	}
	step := func(d time.Duration) {
		for end := now + d; now < end; now += time.Millisecond {
			for _, sv := range svcs {
				sv.Tick(now)
			}
			deliver()
		}
	}
	w.Promote(now)
	if err := w.Open(now, "c", time.Hour); err != nil {
		t.Fatal(err)
	}
	r.Follow(1)
	w.SetReplicas(now, []uint8{2})
	step(50 * time.Millisecond)
	seq, err := w.Write(now, "c", "a", []byte("one"), true)
	if err != nil {
		t.Fatal(err)
	}
	step(20 * time.Millisecond)
	if w.Durable() < seq || !r.Ready() {
		t.Fatalf("before the drop: Durable() = %d (want >= %d), replica Ready() = %v (want true)", w.Durable(), seq, r.Ready())
	}
	// The replica is cut off; the writer's AMF drops it from the set.
	cut = true
	dropped := now
	w.SetReplicas(now, nil)
	seq, err = w.Write(now, "c", "a", []byte("two"), true)
	if err != nil {
		t.Fatal(err)
	}
	for now < dropped+lease-20*time.Millisecond {
		step(10 * time.Millisecond)
		if d := w.Durable(); d >= seq {
			t.Fatalf("%v after dropping a replica in sync: Durable() = %d, want < %d until its lease runs out (%v)", now-dropped, d, seq, lease)
		}
	}
	step(lease)
	if d := w.Durable(); d < seq {
		t.Errorf("after the lease: Durable() = %d, want >= %d", d, seq)
	}
	if r.Ready() {
		t.Errorf("replica cut off for longer than its lease: Ready() = true, want false (the writer acknowledged %d without it)", seq)
	}
	// A replica dropped and taken back within its lease (the AMF's view
	// flickered) is taken back as it was: in sync, no resync.
	cut = false
	w.SetReplicas(now, []uint8{2})
	step(50 * time.Millisecond)
	resyncs := w.Status().Counters.Resyncs
	w.SetReplicas(now, nil)
	w.SetReplicas(now, []uint8{2})
	if _, err := w.Write(now, "c", "a", []byte("three"), true); err != nil {
		t.Fatal(err)
	}
	step(20 * time.Millisecond)
	if got := w.Status().Counters.Resyncs; got != resyncs || !r.Ready() || w.Durable() != w.Seq() {
		t.Errorf("replica dropped and taken back at once: resyncs %d (want %d), Ready() = %v (want true), Durable() = %d (want %d)",
			got, resyncs, r.Ready(), w.Durable(), w.Seq())
	}
	w.SetReplicas(now, nil)
	step(lease + 10*time.Millisecond)
	// Told the writer is gone while its claim holds: it keeps it.
	r2 := New(Options{Self: 3, SyncLease: lease, Send: send})
	svcs[3] = r2
	delete(svcs, 2)
	r2.Follow(1)
	w.SetReplicas(now, []uint8{3})
	step(50 * time.Millisecond)
	if !r2.Ready() {
		t.Fatalf("new replica after 50ms: Ready() = false, want true")
	}
	r2.Follow(0)
	step(2 * lease)
	if !r2.Ready() {
		t.Errorf("replica told the writer is gone while in sync: Ready() = false %v later, want true", 2*lease)
	}
}

// TestRoles: the writer is the active unit's blade; every other blade of
// the group that is up replicates, standby or not at this instant.
func TestRoles(t *testing.T) {
	st := amf.Status{Self: 3, Groups: []amf.GroupStatus{
		{Name: "other", Units: []amf.UnitStatus{{Node: 7, State: amf.Active, Known: true}}},
		{Name: "mgmt", Units: []amf.UnitStatus{
			{Node: 3, State: amf.Active, Known: true},
			{Node: 4, State: amf.Standby, Known: true},
			{Node: 5, State: amf.Unassigned, Known: true},
			{Node: 6, State: amf.Standby, Known: false},
		}},
	}}
	w, r := Roles(st, "mgmt")
	if w != 3 || !slices.Equal(r, []uint8{4, 5}) {
		t.Errorf("Roles(mgmt) = %d, %v, want 3, [4 5]", w, r)
	}
	st.Self = 4
	st.Groups[1].Units[0].Known = false // the active's blade is down
	if w, r := Roles(st, "mgmt"); w != 0 || !slices.Equal(r, []uint8{5}) {
		t.Errorf("Roles(mgmt) with the active down, from slot 4 = %d, %v, want 0, [5]", w, r)
	}
}

// TestStandbyDeathStall: on the virtual clock, with the in-sync lease
// Track sets for the shelf's HA lease, synchronous writes stall no longer
// than the detection time (plus 30%) when the standby dies: the AMF drops
// it after the detection time and the writer holds writes only until the
// dead standby's lease runs out (the standby, were it only stopped, no
// longer claims to be in sync once writes go on without it). The other
// way round, a standby in sync is still Ready when it learns, one
// detection time later, that the writer died.
func TestStandbyDeathStall(t *testing.T) {
	const (
		detection = time.Second // the shelf's HA lease
		track     = 20 * time.Millisecond
	)
	for _, writerDies := range []bool{false, true} {
		var now time.Duration
		type msg struct {
			to   uint8
			data []byte
		}
		var q []msg
		dead := uint8(0)
		send := func(to uint8) func(uint8, []byte) {
			return func(dst uint8, b []byte) {
				if dead != to && dead != dst {
					q = append(q, msg{dst, append([]byte(nil), b...)})
				}
			}
		}
		opt := Options{KeepAlive: 100 * time.Millisecond}
		opt.SyncLease = syncLeaseFor(detection, opt.KeepAlive, track)
		opt.Self, opt.Send = 1, send(1)
		w := New(opt)
		opt.Self, opt.Send = 2, send(2)
		r := New(opt)
		svcs := map[uint8]*Service{1: w, 2: r}
		step := func() {
			now += time.Millisecond
			for _, s := range svcs {
				s.Tick(now)
			}
			for len(q) > 0 {
				m := q[0]
				q = q[1:]
				if m.to != dead {
					svcs[m.to].Receive(now, 3-m.to, m.data)
				}
			}
		}
		w.Promote(now)
		if err := w.Open(now, "c", time.Hour); err != nil {
			t.Fatal(err)
		}
		r.Follow(1)
		w.SetReplicas(now, []uint8{2})
		for range 200 {
			step()
		}
		if !r.Ready() {
			t.Fatalf("replica not Ready after 200 ms")
		}
		if writerDies {
			// Idle for a while (the claim rests on idle polls), then the
			// writer dies; the replica's Track learns it after the
			// detection time and one interval.
			for range 500 {
				step()
			}
			dead = 1
			died := now
			for now < died+detection+track {
				step()
			}
			r.Follow(0)
			told := now - died
			for range 3000 {
				step()
			}
			if !r.Ready() {
				t.Errorf("standby told %v after the writer died that it is gone: Ready() = false, want true (it holds every acknowledged write)", told)
			}
			continue
		}
		// Synchronous writes back to back; the standby dies at 0.5 s and
		// the AMF drops it from the set after the detection time.
		var died, dropped time.Duration
		var worst time.Duration
		for i := 0; now < 4*time.Second; i++ {
			start := now
			seq, err := w.Write(now, "c", fmt.Sprint("s", i%8), []byte("state"), true)
			if err != nil {
				t.Fatal(err)
			}
			for w.Durable() < seq {
				step()
				if dead == 0 && now >= 500*time.Millisecond {
					dead, died = 2, now
				}
				if dead != 0 && dropped == 0 && now >= died+detection {
					w.SetReplicas(now, nil)
					dropped = now
				}
				if now > 10*time.Second {
					t.Fatalf("synchronous write %d not durable after %v", seq, now-start)
				}
			}
			if stall := now - start; stall > worst {
				worst = stall
				if dead != 0 && r.Ready() {
					t.Errorf("write %d acknowledged without the stopped standby while it still claims to be in sync", seq)
				}
			}
			step()
		}
		if died == 0 || dropped == 0 {
			t.Fatalf("the standby never died (%v) or was never dropped (%v)", died, dropped)
		}
		if bound := detection + detection/2; worst > bound {
			t.Errorf("longest synchronous write after the standby died: %v, want <= %v (detection %v + 50%%)", worst, bound, detection)
		}
		t.Logf("longest synchronous write stall when the standby died: %v (detection %v)", worst, detection)
	}
}
