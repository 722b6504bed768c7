package bridge

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/cgoa/cgoa/stp"
	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// WallClock is the stp.Clock of a real bridge. Run sleeps until the
// stp.Bridge's NextDeadline on the wall clock, so the stp.Bridge it runs
// must use WallClock (or a clock that follows time.Now).
type WallClock struct{}

// Now implements stp.Clock.
func (WallClock) Now() time.Time { return time.Now() }

// maxSleep bounds the timer loop's sleep when no STP timer runs, so a
// missed wake-up costs at most this long.
const maxSleep = time.Second

// Run drives sb over this bridge until ctx ends: it feeds BPDUs received on
// the port sockets to sb.Receive, enables and disables STP ports as their
// carrier comes and goes (RTNLGRP_LINK), and calls sb.Tick when its next
// timer is due. sb must have been made with b as its stp.Env (NewSTP, or
// stp.Restore(st, WallClock{}, b)) and its ports must be b's ports. Run
// returns nil when ctx ends, or an error when the link watch fails.
// Run may be called again after it returns (the sockets stay open until
// Close), but not twice at once.
func (b *Bridge) Run(ctx context.Context, sb *stp.Bridge) error {
	if sb == nil {
		return fmt.Errorf("bridge %s: run: no stp bridge", b.cfg.Name)
	}
	snap := sb.Snapshot()
	for _, sp := range snap.Ports {
		if _, err := b.port(sp.Number); err != nil {
			return fmt.Errorf("bridge %s: run: stp port %d (%s) is not a bridge port: %w", b.cfg.Name, sp.Number, sp.Name, err)
		}
	}
	return b.serve(ctx, sb)
}

// Hold keeps the bridge without an STP agent until ctx ends: every STP
// port that has carrier is held blocking (it neither learns nor forwards,
// and the BPDUs it receives are read and dropped), every edge port
// forwarding. It is the standby hub of a protected pair: its uplinks
// stay discarding while the active hub runs the tree, and its backplane
// ports keep carrying the shelf's traffic. A port left forwarding by an
// earlier Run is blocked at once. Hold returns nil when ctx ends, or an
// error when the link watch fails; Run may follow it (not at once).
func (b *Bridge) Hold(ctx context.Context) error { return b.serve(ctx, nil) }

// serve is Run (sb set) or Hold (sb nil).
func (b *Bridge) serve(ctx context.Context, sb *stp.Bridge) error {

	// Join the link group before reading the carriers, so no change
	// between the two is lost.
	nc := &netlink.Config{Groups: 1 << (unix.RTNLGRP_LINK - 1)}
	if b.cfg.NetNS != "" {
		f, err := os.Open(b.cfg.NetNS)
		if err != nil {
			return fmt.Errorf("bridge %s: run: %w", b.cfg.Name, err)
		}
		nc.NetNS = int(f.Fd())
		defer f.Close()
	}
	watch, err := rtnetlink.Dial(nc)
	if err != nil {
		return fmt.Errorf("bridge %s: run: link watch: %w", b.cfg.Name, err)
	}
	defer watch.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wake := make(chan struct{}, 1)
	poke := func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer func() {
		// Stop and unblock the readers (cancel first: they check ctx
		// when a read fails); Run can be called again later.
		cancel()
		for _, p := range b.ports {
			p.conn.SetReadDeadline(time.Unix(1, 0))
		}
		watch.SetReadDeadline(time.Unix(1, 0))
	}()

	for _, p := range b.ports {
		p.conn.SetReadDeadline(time.Time{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.receive(ctx, sb, p, poke)
		}()
	}

	// Carrier: initial state, then changes.
	up := map[uint32]bool{}
	for _, p := range b.ports {
		c, err := b.Carrier(p.Number)
		if err != nil {
			return err
		}
		up[p.index] = c
		b.applyCarrier(sb, p, c)
	}
	b.checkStates(sb)
	poke()
	watchErr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		watchErr <- b.watchLinks(ctx, watch, sb, up, poke)
	}()

	if sb == nil {
		select {
		case <-ctx.Done():
			return nil
		case err := <-watchErr:
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		sb.Tick()
		sleep := maxSleep
		if t, ok := sb.NextDeadline(); ok {
			sleep = min(time.Until(t), maxSleep)
		}
		timer.Reset(sleep)
		select {
		case <-ctx.Done():
			return nil
		case err := <-watchErr:
			if ctx.Err() != nil {
				return nil
			}
			return err
		case <-wake:
		case <-timer.C:
		}
	}
}

// receive reads BPDUs from the port's socket into sb until ctx ends.
func (b *Bridge) receive(ctx context.Context, sb *stp.Bridge, p *port, poke func()) {
	buf := make([]byte, 1600)
	for {
		n, _, err := p.conn.ReadFrom(buf)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			p.rxErrors.Add(1)
			// Back off rather than spin on a socket that keeps failing.
			select {
			case <-ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		p.rxFrames.Add(1)
		if sb == nil {
			continue // held: nobody runs the tree here
		}
		// Undecodable frames are counted by sb (BadIn).
		_ = sb.Receive(p.Number, buf[:n])
		poke()
	}
}

func (b *Bridge) applyCarrier(sb *stp.Bridge, p *port, up bool) {
	if sb == nil {
		return
	}
	if up {
		_ = sb.EnablePort(p.Number)
	} else {
		_ = sb.DisablePort(p.Number)
	}
}

// watchLinks turns RTM_NEWLINK/RTM_DELLINK notifications for the ports into
// EnablePort/DisablePort.
func (b *Bridge) watchLinks(ctx context.Context, c *rtnetlink.Conn, sb *stp.Bridge, up map[uint32]bool, poke func()) error {
	byIndex := map[uint32]*port{}
	for _, p := range b.ports {
		byIndex[p.index] = p
	}
	edge := map[uint32]*port{}
	edgeUp := map[uint32]bool{}
	for _, e := range b.edges {
		edge[e.index] = e
		if l, err := b.portLink(e); err == nil {
			edgeUp[e.index] = carrier(l)
		}
	}
	for {
		msgs, _, err := c.Receive()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			var oe *netlink.OpError
			if errors.As(err, &oe) && !errors.Is(oe.Err, unix.ENOBUFS) {
				return fmt.Errorf("bridge %s: link watch: %w", b.cfg.Name, err)
			}
			// Notifications lost (ENOBUFS) or one that did not
			// decode: re-read every carrier and state.
			b.watchErrors.Add(1)
			for _, p := range b.ports {
				if c, err := b.Carrier(p.Number); err == nil && c != up[p.index] {
					up[p.index] = c
					b.applyCarrier(sb, p, c)
				}
			}
			b.checkStates(sb)
			poke()
			continue
		}
		ours := false
		for _, m := range msgs {
			l, ok := m.(*rtnetlink.LinkMessage)
			if !ok {
				continue
			}
			if e, ok := edge[l.Index]; ok {
				ours = true
				c := carrier(*l)
				if c != edgeUp[l.Index] {
					edgeUp[l.Index] = c
					if f := b.cfg.OnEdgeCarrier; f != nil {
						f(e.Name, c)
					}
				}
				continue
			}
			p, ok := byIndex[l.Index]
			if !ok {
				continue
			}
			c := carrier(*l)
			if l.Attributes == nil || l.Attributes.Master == nil || *l.Attributes.Master != b.index {
				c = false // deleted or removed from the bridge
			}
			ours = true
			if c != up[p.index] {
				up[p.index] = c
				b.applyCarrier(sb, p, c)
				poke()
			}
		}
		if ours {
			b.checkStates(sb)
		}
	}
}

// checkStates puts the kernel's port states back where they belong if they
// differ: the STP ports where sb wants them (blocking when held, sb nil),
// the edge ports in forwarding. The kernel changes port states on its own
// on carrier events (to disabled on loss; on carrier up to blocking in
// user mode, to forwarding with STP off), possibly before the agent has
// heard of the event.
func (b *Bridge) checkStates(sb *stp.Bridge) {
	if n := b.holdEdges(); n > 0 {
		b.resyncs.Add(uint64(n))
	}
	if sb == nil {
		b.holdBlocking()
		return
	}
	for _, sp := range sb.Snapshot().Ports {
		p, err := b.port(sp.Number)
		if err != nil {
			continue
		}
		want, err := b.kernelState(sp.State)
		if err != nil {
			continue
		}
		if got, err := b.kernelPortState(p); err == nil && got != want {
			// A write racing this check shows up as a difference
			// too; Resync re-applies the same states, so that is
			// harmless.
			b.resyncs.Add(1)
			sb.Resync()
			return
		}
	}
}

// holdBlocking writes Blocking to every STP port that has carrier and is
// in another state (disabled is left to the kernel: it is what a port
// without carrier holds, and the only state such a port accepts).
func (b *Bridge) holdBlocking() {
	want, _ := b.kernelState(stp.Blocking)
	for _, p := range b.ports {
		l, err := b.portLink(p)
		if err != nil || !carrier(l) {
			continue
		}
		if k, err := b.kernelPortState(p); err == nil && k == want {
			continue
		}
		if b.writeState(p, stp.Blocking) == nil {
			b.resyncs.Add(1)
		}
	}
}
