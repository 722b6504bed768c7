package ha

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cgoa/cgoa/ha/amf"
	"github.com/cgoa/cgoa/ha/cfg"
	"github.com/cgoa/cgoa/ha/clm"
	"github.com/cgoa/cgoa/ha/transport"
)

var testKey = transport.Key("blade-test-shelf-key-0123456789")

func testConfig() amf.Config {
	return amf.Config{
		Shelf: 3,
		Slots: []uint8{1, 3, 4},
		// Looser than process mode's 10 ms x 3 so that a loaded CI machine
		// does not starve a blade past detection in the middle of a check.
		Timers: clm.Timers{Interval: 20 * time.Millisecond, Misses: 5},
		Groups: []amf.ServiceGroup{{Name: "mgmt", Model: amf.TwoN, Units: []amf.ServiceUnit{{Name: "mgmt-3", Node: 3}, {Name: "mgmt-4", Node: 4}}}},
	}
}

// loopShelf is blades over UDP on loopback, two sockets (paths) each.
type loopShelf struct {
	t      *testing.T
	cfg    amf.Config
	blades map[uint8]*Blade
	addrs  map[uint8][2]netip.AddrPort
	epoch  uint64
}

// newLoopShelf starts blades for the slots and wires their peers.
func newLoopShelf(t *testing.T, slots ...uint8) *loopShelf {
	t.Helper()
	return newLoopShelfWith(t, testConfig(), slots...)
}

// newLoopShelfWith is newLoopShelf with another configuration.
func newLoopShelfWith(t *testing.T, cfg amf.Config, slots ...uint8) *loopShelf {
	t.Helper()
	ls := &loopShelf{t: t, cfg: cfg, blades: map[uint8]*Blade{}, addrs: map[uint8][2]netip.AddrPort{}, epoch: uint64(time.Now().UnixNano())}
	lo := netip.MustParseAddrPort("127.0.0.1:0")
	trs := map[uint8]*transport.UDPTransport{}
	for _, slot := range slots {
		trs[slot] = ls.start(slot, [2]netip.AddrPort{lo, lo})
		ls.addrs[slot] = [2]netip.AddrPort{trs[slot].LocalAddr(0), trs[slot].LocalAddr(1)}
	}
	for slot, tr := range trs {
		for path := 0; path < 2; path++ {
			tr.SetPeers(path, ls.peers(slot, path))
		}
	}
	return ls
}

func (ls *loopShelf) peers(slot uint8, path int) map[uint8]netip.AddrPort {
	peers := map[uint8]netip.AddrPort{}
	for other, a := range ls.addrs {
		if other != slot {
			peers[other] = a[path]
		}
	}
	return peers
}

// start (re)starts slot on the given local addresses.
func (ls *loopShelf) start(slot uint8, local [2]netip.AddrPort) *transport.UDPTransport {
	ls.t.Helper()
	var tr *transport.UDPTransport
	ls.epoch++
	check := &leaseCheck{}
	// Runs after the blade's crash below (cleanups run last first).
	ls.t.Cleanup(func() {
		if n := check.bad.Load(); n > 0 {
			ls.t.Errorf("slot %d: %d engine frames left while Active's lock-free view claimed a lease the engine no longer held (first: %v)", slot, n, check.first.Load())
		}
	})
	b, err := StartWith(Options{Config: ls.cfg, Slot: slot, Key: testKey, Epoch: ls.epoch}, func(ep *transport.Endpoint, h transport.Handler) (transport.Transport, error) {
		var err error
		paths := []transport.UDPPath{{Local: local[0], Peers: ls.peers(slot, 0)}, {Local: local[1], Peers: ls.peers(slot, 1)}}
		tr, err = transport.ListenUDP(ep, paths, h)
		check.Transport = tr
		return check, err
	})
	if err != nil {
		ls.t.Fatalf("StartWith(slot %d) error %v", slot, err)
	}
	check.b.Store(b)
	ls.blades[slot] = b
	ls.t.Cleanup(func() { crash(b) })
	return tr
}

// leaseCheck wraps a blade's transport and checks, at every frame of the engine (sent with
// b.mu held), the invariant behind Active's lock-free view: it never claims a lease the
// engine does not hold (a release, a demotion, republished before any frame tells the
// others that the key is free).
type leaseCheck struct {
	transport.Transport
	b     atomic.Pointer[Blade]
	bad   atomic.Int64
	first atomic.Value // string
}

func (c *leaseCheck) Send(typ transport.Type, to uint8, p []byte) error {
	if b := c.b.Load(); b != nil && typ < transport.TypeUser {
		if m := b.leases.Load(); m != nil {
			now := b.now()
			for g, until := range *m {
				if truth := b.node.ActiveUntil(g, ""); now < until && truth < until {
					if c.bad.Add(1) == 1 {
						c.first.Store(fmt.Sprintf("frame type %d at %v: view says %s until %v, engine %v", typ, now, g, until, truth))
					}
				}
			}
		}
	}
	return c.Transport.Send(typ, to, p)
}

// restart crashes slot and starts it again on the same addresses.
func (ls *loopShelf) restart(slot uint8) {
	crash(ls.blades[slot])
	ls.start(slot, ls.addrs[slot])
}

// crash stops a blade without a word to the others, like kill -9.
func crash(b *Blade) {
	b.once.Do(func() {
		close(b.stop)
		<-b.done
		b.tr.Close()
	})
}

func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

func TestBladesOverUDP(t *testing.T) {
	bl := newLoopShelf(t, 1, 3, 4).blades
	var mu sync.Mutex
	var told []amf.HAState
	if err := bl[4].Register(amf.Component{Name: "addr", Unit: "mgmt-4", Assign: func(a amf.Assignment) {
		mu.Lock()
		told = append(told, a.State)
		mu.Unlock()
	}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "mgmt-3 active", 5*time.Second, func() bool { return bl[3].Active("mgmt", "") })
	waitFor(t, "mgmt-4 standby", 5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(told) > 0 && told[len(told)-1] == amf.Standby
	})
	var buf bytes.Buffer
	if err := WriteStatus(&buf, bl[4].Status()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"in quorum: yes", "mgmt-3", "active", "standby"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("show ha output lacks %q:\n%s", want, buf.String())
		}
	}
	if _, err := json.Marshal(bl[4].Status()); err != nil {
		t.Errorf("json.Marshal(Status) error %v", err)
	}
	// Admin switchover from the standby's blade, then back by lock/unlock.
	if err := bl[4].Switchover("mgmt"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "mgmt-4 active after switchover", 5*time.Second, func() bool { return bl[4].Active("mgmt", "") })
	if bl[3].Active("mgmt", "") {
		t.Error("mgmt-3 still active after switchover")
	}
	// kill -9 of the active: the standby takes over within the lease.
	crash(bl[4])
	took := waitFor(t, "mgmt-3 active after crash of 4", 5*time.Second, func() bool { return bl[3].Active("mgmt", "") })
	t.Logf("takeover after crash: %v", took)
	st := bl[3].Status()
	if st.Transport.Forged+st.Transport.Garbled+st.Transport.Short != 0 {
		t.Errorf("transport counters %+v: unexpected bad frames", st.Transport)
	}
	if st.Transport.Duplicates == 0 {
		t.Errorf("no duplicates counted: frames did not travel both paths (%+v)", st.Transport)
	}
	if err := bl[3].Close(context.Background()); err != nil {
		t.Errorf("Close() = %v", err)
	}
	if err := bl[3].Close(context.Background()); err != ErrClosed {
		t.Errorf("second Close() = %v, want %v", err, ErrClosed)
	}
}

func TestLockReplicatedAcrossRestart(t *testing.T) {
	ls := newLoopShelf(t, 1, 3, 4)
	waitFor(t, "mgmt-3 active", 5*time.Second, func() bool { return ls.blades[3].Active("mgmt", "") })
	waitFor(t, "a raft leader", 5*time.Second, func() bool { return ls.blades[1].Status().RaftLeader != 0 })
	// Locked from the witness blade, which hosts no unit.
	if err := ls.blades[1].Lock("mgmt-3"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "mgmt-4 active", 5*time.Second, func() bool { return ls.blades[4].Active("mgmt", "") })
	waitFor(t, "lock replicated to slot 3", 5*time.Second, func() bool { return ls.blades[3].Status().Replicated.Locked["mgmt-3"] })
	waitFor(t, "assignment of mgmt-4 replicated", 5*time.Second, func() bool {
		return ls.blades[1].Status().Replicated.Active["mgmt"].Unit == "mgmt-4"
	})
	// Slot 3 restarts: it forgot the lock locally, learns it from raft.
	ls.restart(3)
	waitFor(t, "restarted slot 3 caught up", 5*time.Second, func() bool { return ls.blades[3].Status().Replicated.Locked["mgmt-3"] })
	waitFor(t, "mgmt-3 locked after restart", 5*time.Second, func() bool {
		for _, g := range ls.blades[3].Status().Groups {
			for _, u := range g.Units {
				if u.Name == "mgmt-3" && u.Oper == amf.Locked {
					return true
				}
			}
		}
		return false
	})
	if err := ls.blades[4].Unlock("mgmt-3"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "unlock replicated to slot 3", 5*time.Second, func() bool { return !ls.blades[3].Status().Replicated.Locked["mgmt-3"] })
	if !ls.blades[4].Active("mgmt", "") || ls.blades[3].Active("mgmt", "") {
		t.Error("unlock pre-empted the active unit")
	}
}

func TestUserFrames(t *testing.T) {
	ls := newLoopShelf(t, 1, 3, 4)
	got := make(chan string, 4)
	if err := ls.blades[4].Handle(transport.TypeUser+1, func(f transport.Frame) { got <- fmt.Sprintf("%d:%s", f.From, f.Payload) }); err != nil {
		t.Fatal(err)
	}
	if err := ls.blades[4].Handle(transport.TypeLease, nil); err == nil {
		t.Error("Handle(TypeLease) succeeded, want error (reserved)")
	}
	if err := ls.blades[3].Send(transport.TypeUser+1, 4, []byte("section")); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m != "3:section" {
			t.Errorf("handler got %q, want %q", m, "3:section")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("user frame not delivered")
	}
	if err := ls.blades[3].Send(transport.TypeHeartbeat, 4, nil); err == nil {
		t.Error("Send(TypeHeartbeat) succeeded, want error (reserved)")
	}
}

// TestChangedWakesFollowers: a follower that took Changed before reading
// the group is woken by the failover of the group's active unit (on
// another blade's crash), and reads the new placement then; a quiet shelf
// leaves it asleep.
func TestChangedWakesFollowers(t *testing.T) {
	ls := newLoopShelf(t, 1, 3, 4)
	active := func(b *Blade) uint8 {
		g, _, _, _ := b.Group("mgmt")
		for _, u := range g.Units {
			if u.Known && u.State == amf.Active {
				return u.Node
			}
		}
		return 0
	}
	observer := ls.blades[1]
	waitFor(t, "an active mgmt unit seen on slot 1", 10*time.Second, func() bool { return active(observer) != 0 })
	// Quiet: heartbeats keep flowing but nothing changes.
	ch := observer.Changed()
	waitFor(t, "placement settled", 10*time.Second, func() bool {
		select {
		case <-ch:
			ch = observer.Changed() // still settling (the standby's report)
			return false
		case <-time.After(10 * testConfig().Timers.Interval):
			return true
		}
	})
	was := active(observer)
	crash(ls.blades[was])
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("Changed() not closed 10 s after crashing the active slot %d", was)
	}
	waitFor(t, "the other mgmt unit active on slot 1's view", 10*time.Second, func() bool {
		if now := active(observer); now != 0 && now != was {
			return true
		}
		select {
		case <-ch:
		case <-time.After(time.Second):
		}
		ch = observer.Changed()
		return false
	})
}

// TestActiveWithoutTheLoop: while the HA loop holds its lock (a takeover's callbacks, a
// burst of frames), Active still answers for an unexpired lease: a probe responder does not
// queue behind the loop. Timers of 200 ms x 5 (a 1 s lease, as on a shelf) leave a wait long
// enough that only a call blocked on the lock misses it.
func TestActiveWithoutTheLoop(t *testing.T) {
	cfg := testConfig()
	cfg.Timers = clm.Timers{Interval: 200 * time.Millisecond, Misses: 5}
	ls := newLoopShelfWith(t, cfg, 1, 3, 4)
	b := ls.blades[3]
	waitFor(t, "mgmt-3 active", 10*time.Second, func() bool { return b.Active("mgmt", "") })
	for try := 0; ; try++ {
		b.mu.Lock()
		var until time.Duration
		if m := b.leases.Load(); m != nil {
			until = (*m)["mgmt"]
		}
		left := until - b.now()
		if left < 400*time.Millisecond {
			// Just before a renewal, or not republished yet: let the loop run.
			b.mu.Unlock()
			if try > 50 {
				t.Fatalf("no lease with 400 ms left in %d tries", try)
			}
			waitFor(t, "a renewal", 10*time.Second, func() bool { p := b.leases.Load(); return p != nil && (*p)["mgmt"] > until })
			continue
		}
		got := make(chan bool, 1)
		go func() { got <- b.Active("mgmt", "") }()
		select {
		case a := <-got:
			b.mu.Unlock()
			if !a {
				t.Fatalf("Active(mgmt) = false with %v of the lease left", left)
			}
			return
		case <-time.After(left / 2):
			b.mu.Unlock()
			<-got
			t.Fatalf("Active(mgmt) did not return in %v while the loop held its lock (%v of the lease left): it waits for the loop", left/2, left)
		}
	}
}

// TestReassertRecord: a replicated record that names another unit than the one active (the
// takeover's proposal was dropped, or a stale record was committed) is proposed again by the
// active unit's blade.
func TestReassertRecord(t *testing.T) {
	ls := newLoopShelf(t, 1, 3, 4)
	waitFor(t, "mgmt-3 active", 5*time.Second, func() bool { return ls.blades[3].Active("mgmt", "") })
	waitFor(t, "a raft leader", 5*time.Second, func() bool { return ls.blades[1].Status().RaftLeader != 0 })
	record := func() cfg.Record { return ls.blades[1].Status().Replicated.Active["mgmt"] }
	waitFor(t, "the record of mgmt-3", 10*time.Second, func() bool { return record().Unit == "mgmt-3" })
	// A stale record, committed through the witness blade.
	b := ls.blades[1]
	b.mu.Lock()
	err := b.propose(cfg.Command{Op: cfg.OpAssign, Group: "mgmt", Unit: "mgmt-4", Node: 4})
	b.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stale record committed", 10*time.Second, func() bool { return record().Unit == "mgmt-4" })
	waitFor(t, "the record of mgmt-3 reasserted", 10*time.Second, func() bool {
		r := record()
		return r.Unit == "mgmt-3" && r.Reason == "reasserted"
	})
	if !ls.blades[3].Active("mgmt", "") || ls.blades[4].Active("mgmt", "") {
		t.Error("the stale record moved the assignment")
	}
}
