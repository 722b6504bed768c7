package ha

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cgoa/cgoa/ha/amf"
	"github.com/cgoa/cgoa/ha/evt"
	"github.com/cgoa/cgoa/ha/transport"
)

// Options configure a Blade.
type Options struct {
	// Config is the shelf's HA configuration (identical on every blade).
	Config amf.Config
	// Slot is this blade's slot.
	Slot uint8
	// Key is the shelf key (at least 16 bytes).
	Key transport.Key
	// Paths are the base paths (base0, base1) for the UDP transport.
	Paths []transport.UDPPath
	// Epoch is this start's incarnation; it must grow across restarts of
	// the slot. Zero means the wall clock in nanoseconds.
	Epoch uint64
	// Events keeps this many events for Status (default 64).
	Events int
	// NodeFailover is called (on the HA loop) when escalation fails the
	// whole node over; a blade typically reboots.
	NodeFailover func(reason string)
}

// Blade runs the HA core of one blade on the real clock: it owns the
// transport, serialises every call into the amf.Node engine and ticks it
// at its deadlines. All methods are safe for concurrent use.
type Blade struct {
	mu    sync.Mutex
	node  *amf.Node
	tr    transport.Transport
	bus   *evt.Bus
	start time.Time
	wake  chan struct{}
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

// Start brings the HA core up over UDP on opts.Paths.
func Start(opts Options) (*Blade, error) {
	return StartWith(opts, func(ep *transport.Endpoint, h transport.Handler) (transport.Transport, error) {
		return transport.ListenUDP(ep, opts.Paths, h)
	})
}

// Dialer makes the transport of a blade (ListenUDP for real blades, a
// MemNetwork attachment or anything else in tests).
type Dialer func(ep *transport.Endpoint, h transport.Handler) (transport.Transport, error)

// StartWith brings the HA core up on the transport that dial makes.
func StartWith(opts Options, dial Dialer) (*Blade, error) {
	if opts.Epoch == 0 {
		opts.Epoch = uint64(time.Now().UnixNano())
	}
	if opts.Events == 0 {
		opts.Events = 64
	}
	ep, err := transport.NewEndpoint(opts.Key, opts.Config.Shelf, opts.Slot, opts.Epoch)
	if err != nil {
		return nil, fmt.Errorf("ha: %w", err)
	}
	b := &Blade{bus: evt.NewBus(opts.Events), start: time.Now(), wake: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
	env := amf.Env{
		Send: func(typ transport.Type, to uint8, p []byte) {
			if b.tr != nil {
				b.tr.Send(typ, to, p) // failures are counted by the endpoint
			}
		},
		Publish:      b.bus.Publish,
		NodeFailover: opts.NodeFailover,
	}
	b.node, err = amf.NewNode(opts.Config, opts.Slot, opts.Epoch, b.now(), env)
	if err != nil {
		return nil, fmt.Errorf("ha: %w", err)
	}
	// Frames arriving before the transport is stored are handled after:
	// the lock is held until then.
	b.mu.Lock()
	tr, err := dial(ep, b.receive)
	if err != nil {
		b.mu.Unlock()
		return nil, fmt.Errorf("ha: transport: %w", err)
	}
	b.tr = tr
	b.mu.Unlock()
	go b.loop()
	return b, nil
}

// now is the engine's clock: monotonic time since Start.
func (b *Blade) now() time.Duration { return time.Since(b.start) }

func (b *Blade) receive(f transport.Frame) {
	b.mu.Lock()
	b.node.Receive(b.now(), f)
	b.mu.Unlock()
	b.poke()
}

func (b *Blade) poke() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

func (b *Blade) loop() {
	defer close(b.done)
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.mu.Lock()
			b.node.Tick(b.now())
			b.mu.Unlock()
		case <-b.wake:
		}
		b.mu.Lock()
		d := b.node.NextDeadline(b.now()) - b.now()
		b.mu.Unlock()
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(max(d, 0))
	}
}

// Register adds a role's component to a local service unit. Its Assign
// callback runs on the HA loop and must not block or call back into the
// Blade.
func (b *Blade) Register(c amf.Component) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.node.Register(c)
}

// Active reports whether this blade's unit of group is active for
// instance si ("" = any) with an unexpired lease right now. Roles check it
// before externally visible actions.
func (b *Blade) Active(group, si string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.node.Active(group, si, b.now())
}

func (b *Blade) admin(f func(now time.Duration) error) error {
	b.mu.Lock()
	err := f(b.now())
	b.mu.Unlock()
	b.poke()
	return err
}

// Switchover hands group's active assignments gracefully to the next unit
// (console: ha switchover SG).
func (b *Blade) Switchover(group string) error {
	return b.admin(func(now time.Duration) error { return b.node.Switchover(now, group) })
}

// Lock takes a unit out of service (console: ha lock SU).
func (b *Blade) Lock(unit string) error {
	return b.admin(func(now time.Duration) error { return b.node.Lock(now, unit) })
}

// Unlock returns a unit to service (console: ha unlock SU).
func (b *Blade) Unlock(unit string) error {
	return b.admin(func(now time.Duration) error { return b.node.Unlock(now, unit) })
}

// Repair clears a unit's failure after escalation.
func (b *Blade) Repair(unit string) error {
	return b.admin(func(now time.Duration) error { return b.node.Repair(now, unit) })
}

// HandleOpen starts the graceful extraction after the ATCA handle opened;
// done (called on the HA loop) says whether every active assignment was
// handed over; then the blade may be released.
func (b *Blade) HandleOpen(done func(handedOver bool)) {
	b.admin(func(now time.Duration) error { b.node.HandleOpen(now, done); return nil })
}

// HandleClose cancels an extraction: the units return to service.
func (b *Blade) HandleClose() {
	b.admin(func(now time.Duration) error { b.node.HandleClose(now); return nil })
}

// Events is the blade's event bus (membership, quorum, assignment,
// failover, admin, fault). Subscribers run on the HA loop: no blocking.
func (b *Blade) Events() *evt.Bus { return b.bus }

// Status is what `show ha` shows.
type Status struct {
	amf.Status
	Transport transport.Counters `json:"transport"`
	Events    []evt.Event        `json:"events"`
}

// Status returns a snapshot.
func (b *Blade) Status() Status {
	b.mu.Lock()
	s := b.node.Status(b.now())
	b.mu.Unlock()
	return Status{Status: s, Transport: b.tr.Endpoint().Counters(), Events: b.bus.History()}
}

// ErrClosed is returned by Close when called twice.
var ErrClosed = errors.New("ha: blade closed")

// Close leaves the shelf gracefully (hands over first, tells the others),
// stops the loop and closes the transport. ctx bounds the wait for the
// loop.
func (b *Blade) Close(ctx context.Context) error {
	err := ErrClosed
	b.once.Do(func() {
		err = nil
		b.mu.Lock()
		b.node.Stop(b.now())
		b.mu.Unlock()
		close(b.stop)
		select {
		case <-b.done:
		case <-ctx.Done():
			err = ctx.Err()
		}
		if cerr := b.tr.Close(); err == nil {
			err = cerr
		}
	})
	return err
}
