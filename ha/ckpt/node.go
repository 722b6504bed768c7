package ckpt

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cgoa/cgoa/ha"
	"github.com/cgoa/cgoa/ha/transport"
)

// Node runs a Service on the real clock: it serialises calls, ticks the
// service and lets synchronous writes wait for durability. All methods are
// safe for concurrent use.
type Node struct {
	mu      sync.Mutex
	svc     *Service
	start   time.Time
	durable *sync.Cond
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	// wake tells the loop that a call may have brought its next tick
	// forward (Promote, a write); due is that tick (under mu).
	wake chan struct{}
	due  time.Duration
	last time.Duration // the last clock reading (now), under mu
	// pumpWanted: a Link has room again (ServeLink's OnRoom); whoever
	// holds mu next pumps.
	pumpWanted atomic.Bool
	// links: the Links served whose writer may still read ring memory
	// (under mu): each is told before the ring reuses bytes.
	links []*Link

	// What Track last learnt from the AMF (under mu): whether it has
	// looked at all, and whether another blade's unit of the group is
	// active (a live writer to sync from).
	tracked    bool
	liveWriter bool
	lastLive   time.Duration // when Track last saw a live writer (0: never)
}

// NewNode starts a Node around a new Service. opt.Send is called with the
// Node's lock held: it must not call back into the Node.
func NewNode(opt Options) *Node {
	n := &Node{svc: New(opt), start: time.Now(), stop: make(chan struct{}), done: make(chan struct{}), wake: make(chan struct{}, 1)}
	n.durable = sync.NewCond(&n.mu)
	go n.loop()
	return n
}

// AttachBlade starts a Node whose messages travel over b's authenticated
// HA transport as frames of typ (transport.TypeUser and above).
func AttachBlade(b *ha.Blade, typ transport.Type, opt Options) (*Node, error) {
	opt.Send = func(to uint8, msg []byte) { b.Send(typ, to, msg) }
	n := NewNode(opt)
	if err := b.Handle(typ, func(f transport.Frame) { n.Receive(f.From, f.Payload) }); err != nil {
		n.Close()
		return nil, fmt.Errorf("ckpt: %w", err)
	}
	return n, nil
}

// now reads the clock (and notes the reading for recent).
func (n *Node) now() time.Duration {
	n.last = max(n.last, time.Since(n.start))
	return n.last
}

// recent is the last clock reading under n.mu: at most a tick (RTO/2)
// old while the Node is busy. An asynchronous write takes it, not a
// reading of its own: the Service only notes it (and may poll an unknown
// replica a tick late), and here a clock reading costs more than the
// rest of a small write's bookkeeping.
func (n *Node) recent() time.Duration { return n.last }

// loop ticks the Service at its deadlines (a writer with frames under
// way every RTO/2, an idle writer and a replica every keep-alive), not on
// a fixed fast ticker: an idle blade,
// emulated ones above all, must not wake hundreds of times a second.
func (n *Node) loop() {
	defer close(n.done)
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		fired := false
		select {
		case <-n.stop:
			return
		case <-t.C:
			fired = true
		case <-n.wake:
		}
		n.mu.Lock()
		now := n.now()
		if fired || now >= n.due {
			n.svc.Tick(now)
			n.durable.Broadcast()
			n.due = n.svc.NextDeadline(now)
		} else {
			n.due = min(n.due, n.svc.NextDeadline(now))
		}
		d := n.due - now
		n.mu.Unlock()
		if !fired && !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(max(d, 0))
	}
}

// pumpNow pumps the Service if a Link asked for it (OnRoom) and no one
// has since (n.mu held).
func (n *Node) pumpNow(now time.Duration) {
	if n.pumpWanted.Load() && n.pumpWanted.Swap(false) {
		n.svc.Pump(now)
	}
}

// soon wakes the loop if its next tick is later than a busy writer's
// (n.mu held): what just happened (a write, an ack, a path with room) may
// have left frames under way, which the Service ticks every RTO/2, while
// an idle writer's loop sleeps until its next keep-alive. A writer
// streaming is ticked every RTO/2 anyway, so its calls wake nothing (a
// wake-up per write cost the loop goroutine a run and the writer a futex
// call).
func (n *Node) soon(now time.Duration) {
	if n.due > now+n.svc.opt.RTO/2 {
		n.poke()
	}
}

// poke wakes the loop to reconsider its next tick.
func (n *Node) poke() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Receive hands the Node a message from slot from (the transport's
// handler calls it).
func (n *Node) Receive(from uint8, b []byte) {
	n.mu.Lock()
	now := n.now()
	n.svc.Receive(now, from, b)
	n.soon(now)
	n.durable.Broadcast()
	n.mu.Unlock()
}

// SetSend replaces the Service's Options.Send (a link made after the
// Node, say). Like Options.Send, f runs with the Node's lock held.
func (n *Node) SetSend(f func(to uint8, msg []byte)) {
	n.mu.Lock()
	n.svc.opt.Send = f
	n.mu.Unlock()
}

// Do runs f on the Service with the Node's lock held (Promote, Demote,
// Follow, SetReplicas, Open, Close, Read, Sections, Status ...). f gets
// the current instant to pass on.
func (n *Node) Do(f func(s *Service, now time.Duration)) {
	n.mu.Lock()
	now := n.now()
	n.svc.clock = max(n.svc.clock, now)
	f(n.svc, now)
	n.durable.Broadcast()
	n.mu.Unlock()
	n.poke()
}

// Write writes a section. A synchronous write returns once every replica
// has applied it, or with ctx's error (the write stays queued: it is
// durable later or lost with the writer).
func (n *Node) Write(ctx context.Context, ckpt, section string, data []byte, sync bool) (uint64, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.recent()
	if sync {
		now = n.now()
	}
	seq, err := n.svc.Write(now, ckpt, section, data, sync)
	n.pumpNow(now)
	n.soon(now)
	if err != nil || !sync {
		return seq, err
	}
	return seq, n.wait(ctx, seq)
}

// Delete deletes a section, synchronously like Write if sync.
func (n *Node) Delete(ctx context.Context, ckpt, section string, sync bool) (uint64, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.now()
	seq, err := n.svc.Delete(now, ckpt, section, sync)
	n.soon(now)
	if err != nil || !sync {
		return seq, err
	}
	return seq, n.wait(ctx, seq)
}

// WaitDurable waits until record seq (of an asynchronous write, say) is
// durable: every replica has applied it. Writers use it for flow
// control and group commit: many asynchronous writes, then one wait.
func (n *Node) WaitDurable(ctx context.Context, seq uint64) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.wait(ctx, seq)
}

// wait blocks (n.mu held) until seq is durable or ctx ends. A cancelled
// ctx is noticed at the next tick (2 ms): no allocation or goroutine per
// wait on the synchronous write's path.
func (n *Node) wait(ctx context.Context, seq uint64) error {
	for n.svc.Durable() < seq {
		n.pumpNow(n.recent())
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("ckpt: synchronous write %d: %w", seq, err)
		}
		if !n.svc.Active() {
			return fmt.Errorf("ckpt: synchronous write %d: %w", seq, ErrNotActive)
		}
		n.durable.Wait()
	}
	return nil
}

// Read returns a copy of a section's data.
func (n *Node) Read(ckpt, section string) ([]byte, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	d, err := n.svc.Read(ckpt, section)
	return append([]byte(nil), d...), err
}

// Seq is the sequence number of the last record written or applied here
// (cheap: no status is built).
func (n *Node) Seq() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.svc.Seq()
}

// Status returns `show ckpt` data.
func (n *Node) Status() Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.svc.Status()
}

// Ready is the readiness gate of the unit whose checkpoints this Node
// replicates (amf.Component.Ready): true when the unit could take over
// the active assignment without losing an acknowledged synchronous
// write. That is so when this Node is the writer; when it is a replica
// the current writer counts in sync (it holds every record written
// before it joined the writer's replica set, and every synchronous
// write since then waited for it; Service.Ready); or when the AMF, as
// Track last read it, shows no live writer (no other blade's unit of
// the group active) and has shown none for one in-sync lease
// (Options.SyncLease) since it last showed one: then nothing better can
// be had, and a gate that stayed shut would leave the group unassigned
// forever; the wait lets a writer that only seemed dead (a starved
// process on a loaded blade) come back before a replica without its
// state takes over. A replica in sync is not delayed. Until Track has
// read the AMF once, a replica that is not in sync is not ready.
//
// Ready runs on the HA loop (the AMF calls it for every heartbeat): it
// only takes the Node's lock, which nothing holds while waiting for the
// HA loop.
func (n *Node) Ready() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.svc.Ready() || (n.tracked && !n.liveWriter && (n.lastLive == 0 || n.now()-n.lastLive >= n.svc.opt.SyncLease))
}

// LiveWriter reports whether Track last saw another blade's unit of the
// group active (a live writer to sync from).
func (n *Node) LiveWriter() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.liveWriter
}

// setView records what Track read from the AMF: writer is the slot of the
// group's active unit (0: none is known, i.e. no live writer).
func (n *Node) setView(self, writer uint8) {
	n.tracked = true
	n.liveWriter = writer != 0 && writer != self
	if n.liveWriter {
		n.lastLive = max(n.now(), 1)
	}
}

// ServeLink runs the Node's stream over l (to or from its one peer): the
// Service sends through l from now on, as fast as l's queue takes
// (Options.Room), and takes l's messages a batch at a time under one
// lock, acknowledging at the end of a batch when no other follows at
// once, else every linkAckBytes. The returned channel
// yields why the link ended (it failed or was closed); the Node keeps
// running (another link may be served).
func (n *Node) ServeLink(l *Link) <-chan error {
	n.mu.Lock()
	n.svc.opt.Send, n.svc.opt.Room, n.svc.opt.Offer = l.Send, l.Room, l.Offer
	// A link this one replaces may still be writing a batch from the
	// ring: it is told too, until its writer has stopped.
	n.links = slices.DeleteFunc(n.links, func(o *Link) bool {
		select {
		case <-o.wdone:
			return true
		default:
			return false
		}
	})
	n.links = append(n.links, l)
	n.svc.opt.Reclaim = n.reclaim
	n.mu.Unlock()
	l.OnRoom(func() {
		// A writer streaming small records holds the lock nearly all
		// the time and takes it back before a waiter runs: the request
		// is flagged first, and the writer's next Write or wait pumps
		// at once (pumpNow); this Pump then finds little left to do.
		n.pumpWanted.Store(true)
		n.mu.Lock()
		now := n.now()
		n.pumpNow(now)
		n.soon(now)
		n.mu.Unlock()
	})
	done := make(chan error, 1)
	go func() {
		var acks linkAcks
		done <- l.runBatches(func(body []byte, more bool) error {
			n.mu.Lock()
			defer n.mu.Unlock()
			now := n.now()
			ack := acks.took(len(body), more)
			for len(body) > 0 {
				msg, rest, err := nextMsg(body)
				if err != nil {
					return err
				}
				n.svc.Receive(now, l.peer, msg)
				body = rest
			}
			if ack {
				n.svc.AckPending()
			}
			n.durable.Broadcast()
			return nil
		})
	}()
	return done
}

// reclaim tells every Link served that the ring is about to reuse the
// bytes of the records before position before (n.mu held).
func (n *Node) reclaim(before uint64) {
	for _, l := range n.links {
		l.Reclaim(before)
	}
}

// Close stops the ticker.
func (n *Node) Close() {
	n.once.Do(func() { close(n.stop); <-n.done })
}
