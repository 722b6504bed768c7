package ha

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cgoa/cgoa/ha/amf"
	"github.com/cgoa/cgoa/ha/cfg"
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
	// VoteFile keeps the raft term and vote of the replicated
	// configuration across restarts (optional; see package cfg).
	VoteFile string
}

// Blade runs the HA core of one blade on the real clock: it owns the
// transport, serialises every call into the amf.Node engine and ticks it
// at its deadlines. All methods are safe for concurrent use.
type Blade struct {
	mu    sync.Mutex
	node  *amf.Node
	store *cfg.Store
	// replicated lock states last pushed into the node
	synced map[string]bool
	// commands raised by events during an engine call, proposed after it
	// (never re-enter the engine from its own callbacks)
	pending   []cfg.Command
	restarted []string // slots seen restarting, for the raft leader
	handlers  map[transport.Type]func(transport.Frame)
	cfgErr    error
	tick      time.Duration
	tr        transport.Transport
	key       transport.Key
	bus       *evt.Bus
	start     time.Time
	wake      chan struct{}
	// late: the HA loop's wake-ups that came lateLog or more after their deadline (the
	// blade was not scheduled: under emulation, a busy host), and the worst.
	worstLate time.Duration
	lateCount uint64
	// changed is closed when the node's Version moves past seen (Changed).
	changed chan struct{}
	seen    uint64
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	// groups are the configured service groups; leases is, per group, the end of the lease
	// behind this blade's active unit (amf.Node.ActiveUntil), republished by every engine
	// call that changes it and before any frame that gives a lease up: Active reads it
	// without b.mu, so a probe responder does not wait for an HA loop busy with a takeover.
	groups []string
	leases atomic.Pointer[map[string]time.Duration]
	untils []time.Duration // publishLeases' scratch, one per group
	// held is, per 2N group, this blade's unit while it is active, and reasserted when its
	// replicated record was last proposed again (reassert).
	twoN       map[string]bool
	held       map[string]string
	reasserted map[string]time.Duration
}

// minRaftTick is the shortest raft tick of the replicated configuration.
const minRaftTick = 100 * time.Millisecond

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
	b := &Blade{bus: evt.NewBus(opts.Events), start: time.Now(), wake: make(chan struct{}, 1), key: append(transport.Key(nil), opts.Key...),
		stop: make(chan struct{}), done: make(chan struct{}), changed: make(chan struct{})}
	env := amf.Env{
		Send: func(typ transport.Type, to uint8, p []byte) {
			if b.tr != nil {
				b.tr.Send(typ, to, p) // failures are counted by the endpoint
			}
		},
		Publish:      b.bus.Publish,
		NodeFailover: opts.NodeFailover,
		Released:     func(string) { b.publishLeases() },
	}
	b.twoN, b.held, b.reasserted = map[string]bool{}, map[string]string{}, map[string]time.Duration{}
	for _, g := range opts.Config.Groups {
		b.groups = append(b.groups, g.Name)
		b.twoN[g.Name] = g.Model == amf.TwoN
	}
	b.node, err = amf.NewNode(opts.Config, opts.Slot, opts.Epoch, b.now(), env)
	if err != nil {
		return nil, fmt.Errorf("ha: %w", err)
	}
	// The replicated configuration is off the failover path: its raft
	// ticks (heartbeats every tick, elections after ten) need not follow
	// a tight membership interval, and every raft heartbeat is a frame per
	// follower and path.
	b.tick = max(opts.Config.Timers.Interval, minRaftTick)
	b.synced = map[string]bool{}
	b.store, err = cfg.New(cfg.Options{Slot: opts.Slot, Voters: opts.Config.Slots, VoteFile: opts.VoteFile,
		MaxMessage: transport.MaxPayload,
		// A leader heartbeat every third tick (elections after ten):
		// raft's liveness needs no more, and each one is a frame per
		// follower and path.
		HeartbeatTicks: 3,
		Send: func(to uint8, msg []byte) {
			if b.tr != nil {
				b.tr.Send(transport.TypeRaft, to, msg)
			}
		}})
	if err != nil {
		return nil, fmt.Errorf("ha: %w", err)
	}
	// Record every unit of this blade that becomes active in the
	// replicated state (best effort: without a leader it is skipped; the
	// lease decided it already).
	incs := map[string]uint64{}
	b.bus.Subscribe(func(e evt.Event) {
		if e.Kind == evt.Membership && e.To == "joined" {
			var inc uint64
			if _, err := fmt.Sscanf(e.Detail, "incarnation %d", &inc); err == nil {
				if old, seen := incs[e.Subject]; seen && old != inc {
					b.restarted = append(b.restarted, e.Subject)
				}
				incs[e.Subject] = inc
			}
		}
		if e.Kind == evt.Assignment && e.To == amf.Active.String() && e.From != amf.Active.String() {
			b.pending = append(b.pending, cfg.Command{Op: cfg.OpAssign, Group: e.Group, Unit: e.Subject, Node: opts.Slot})
		}
		if e.Kind == evt.Assignment && e.Node == opts.Slot {
			// Published by the engine as the state changes, before the role's callbacks
			// and before any frame: a new active answers at once, an old one stops.
			b.publishLeases()
			switch {
			case e.To == amf.Active.String() && b.twoN[e.Group]:
				b.held[e.Group] = e.Subject
			case e.From == amf.Active.String():
				delete(b.held, e.Group)
			}
		}
	})
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
	switch {
	case f.Type == transport.TypeRaft:
		b.cfgDo(func() error { return b.store.Step(f.From, f.Payload) })
	case f.Type >= transport.TypeUser:
		if h := b.handlers[f.Type]; h != nil {
			h(f)
		}
	default:
		b.node.Receive(b.now(), f)
	}
	b.flush()
	b.mu.Unlock()
	b.poke()
}

// flush proposes the commands events raised and wakes the followers of
// the units' placement if it changed (b.mu held). Every call into the
// engine ends with it.
func (b *Blade) flush() {
	b.publishLeases()
	if v := b.node.Version(); v != b.seen {
		b.seen = v
		close(b.changed)
		b.changed = make(chan struct{})
	}
	for _, slot := range b.restarted {
		var s uint8
		if _, err := fmt.Sscanf(slot, "%d", &s); err == nil {
			b.cfgDo(func() error { return b.store.Restarted(s) })
		}
	}
	b.restarted = nil
	for len(b.pending) > 0 {
		c := b.pending[0]
		b.pending = b.pending[1:]
		b.propose(c)
	}
}

// publishLeases republishes the per-group ends of this blade's active leases for Active
// (b.mu held); it allocates only when one changed (a renewal, a takeover, a release).
func (b *Blade) publishLeases() {
	if b.node == nil {
		return // the engine is being made
	}
	var cur map[string]time.Duration
	if p := b.leases.Load(); p != nil {
		cur = *p
	}
	untils, n, same := b.untils[:0], 0, true
	for _, g := range b.groups {
		until := b.node.ActiveUntil(g, "")
		untils = append(untils, until)
		if until != 0 {
			n++
			same = same && cur[g] == until
		}
	}
	b.untils = untils
	if same && n == len(cur) {
		return
	}
	next := make(map[string]time.Duration, n)
	for i, g := range b.groups {
		if untils[i] != 0 {
			next[g] = untils[i]
		}
	}
	b.leases.Store(&next)
}

// cfgDo runs a replicated-store operation (b.mu held) and pushes changed
// replicated lock states into the engine. A store broken by a bad
// message is recreated: it catches up from the leader.
func (b *Blade) cfgDo(f func() error) error {
	err := f()
	if errors.Is(err, cfg.ErrBroken) {
		b.cfgErr = err
		b.bus.Publish(evt.Event{At: b.now(), Node: b.node.Self(), Kind: evt.Fault, Subject: "cfg", To: "recreated", Detail: err.Error()})
		if s, nerr := cfg.New(b.store.Options()); nerr == nil {
			b.store = s
		}
	}
	st := b.store.State()
	for unit, locked := range st.Locked {
		if _, local := b.node.Locked(unit); local && b.synced[unit] != locked {
			b.synced[unit] = locked
			b.node.Apply(b.now(), amf.OpLock, unit)
		}
	}
	for unit, was := range b.synced {
		if was && !st.Locked[unit] {
			b.synced[unit] = false
			b.node.Apply(b.now(), amf.OpUnlock, unit)
		}
	}
	return err
}

// propose submits a command to the replicated store (b.mu held).
func (b *Blade) propose(c cfg.Command) error {
	err := b.cfgDo(func() error { return b.store.Propose(c) })
	if err != nil {
		b.bus.Publish(evt.Event{At: b.now(), Node: b.node.Self(), Kind: evt.Admin, Subject: c.Unit + c.Group,
			To: string(c.Op), Detail: "not replicated: " + err.Error()})
	}
	return err
}

// reassertEvery is the least time between two proposals of the same group's record by
// reassert: a commit takes a few raft ticks on a loaded shelf.
const reassertEvery = time.Second

// reassert proposes again the replicated record of each 2N group whose unit here is active
// while the record names another unit (b.mu held). The proposal at the takeover is best
// effort: without a leader it is refused, and one forwarded to a leader that then loses
// office is dropped; the record is what a restarted blade and the operator read. N+M and
// N-way-active groups have several actives, and one record per group, so they are left
// alone.
func (b *Blade) reassert() {
	if len(b.held) == 0 || b.store.Leader() == 0 {
		return
	}
	now := b.now()
	st := b.store.State()
	for g, unit := range b.held {
		if st.Active[g].Unit == unit || !b.node.Active(g, "", now) {
			continue
		}
		if last, ok := b.reasserted[g]; ok && now-last < reassertEvery {
			continue
		}
		b.reasserted[g] = now
		b.pending = append(b.pending, cfg.Command{Op: cfg.OpAssign, Group: g, Unit: unit, Node: b.node.Self(), Reason: "reasserted"})
	}
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
	raftTick := time.NewTicker(b.tick)
	defer raftTick.Stop()
	var due time.Duration
	for {
		select {
		case <-b.stop:
			return
		case <-raftTick.C:
			b.mu.Lock()
			b.cfgDo(b.store.Tick)
			b.reassert()
			b.flush()
			b.mu.Unlock()
		case <-t.C:
			b.mu.Lock()
			b.noteLate(due)
			b.node.Tick(b.now())
			b.flush()
			b.mu.Unlock()
		case <-b.wake:
		}
		b.mu.Lock()
		due = b.node.NextDeadline(b.now())
		d := due - b.now()
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

// lateLog is how late a wake-up of the HA loop must be to be counted and reported: a
// quarter of the shortest detection time in use (5 x 50 ms), far above Go's timer slack.
const lateLog = 50 * time.Millisecond

// noteLate records a wake-up of the HA loop that came late for its deadline due (b.mu
// held). A blade that is not scheduled for a detection time loses its leases however
// healthy it is; the event names such stalls, so a failover they cause is told apart from
// a fault.
func (b *Blade) noteLate(due time.Duration) {
	late := b.now() - due
	if due == 0 || late < lateLog {
		return
	}
	b.lateCount++
	b.worstLate = max(b.worstLate, late)
	b.bus.Publish(evt.Event{At: b.now(), Node: b.node.Self(), Kind: evt.Fault, Subject: "ha-loop", To: "late",
		Detail: fmt.Sprintf("woke %v after its deadline (not scheduled)", late.Round(time.Millisecond))})
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
	if si == "" {
		if m := b.leases.Load(); m != nil {
			if until, ok := (*m)[group]; ok && b.now() < until {
				return true
			}
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.node.Active(group, si, b.now())
}

func (b *Blade) admin(f func(now time.Duration) error) error {
	b.mu.Lock()
	err := f(b.now())
	b.flush()
	b.mu.Unlock()
	b.poke()
	return err
}

// Switchover hands group's active assignments gracefully to the next unit
// (console: ha switchover SG). It moves them away from the units this
// blade sees active now, and only from those (amf.Admin.Units); with none
// seen active it fails with amf.ErrNoActive.
func (b *Blade) Switchover(group string) error {
	return b.admin(func(now time.Duration) error { return b.node.Switchover(now, group) })
}

// Lock takes a unit out of service (console: ha lock SU). It takes
// effect at once on the unit's blade and is recorded in the replicated
// configuration, so the unit stays locked across restarts of its blade;
// if no raft leader is known the lock still holds until that blade
// restarts, and an event says it was not replicated.
func (b *Blade) Lock(unit string) error {
	return b.admin(func(now time.Duration) error {
		if err := b.node.Lock(now, unit); err != nil {
			return err
		}
		b.propose(cfg.Command{Op: cfg.OpLock, Unit: unit})
		return nil
	})
}

// Unlock returns a unit to service (console: ha unlock SU).
func (b *Blade) Unlock(unit string) error {
	return b.admin(func(now time.Duration) error {
		if err := b.node.Unlock(now, unit); err != nil {
			return err
		}
		b.propose(cfg.Command{Op: cfg.OpUnlock, Unit: unit})
		return nil
	})
}

// Repair clears a unit's failure after escalation.
func (b *Blade) Repair(unit string) error {
	return b.admin(func(now time.Duration) error { return b.node.Repair(now, unit) })
}

// SetLinks reports the blade's backplane carrier to the HA core: the slots
// whose channel to this blade has no carrier now. The firmware calls it
// when the HA core starts and on every carrier change; with the shelf's
// hubs configured (amf.Config.Hubs) the members fence a blade whose every
// channel lost carrier at its far end, and a blade that lost carrier on
// every channel holds no lease (see package amf, fence.go).
func (b *Blade) SetLinks(down []uint8) {
	b.admin(func(now time.Duration) error { b.node.SetLinks(now, down); return nil })
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

// Handle routes received frames of typ (transport.TypeUser and above,
// e.g. checkpoint replication) to h. h runs on a transport reader with
// the HA core's lock held: it must be quick, must copy the payload it
// keeps, and must not call back into the Blade.
func (b *Blade) Handle(typ transport.Type, h func(transport.Frame)) error {
	if typ < transport.TypeUser {
		return fmt.Errorf("ha: frame type %d is reserved for the HA core", typ)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.handlers == nil {
		b.handlers = map[transport.Type]func(transport.Frame){}
	}
	b.handlers[typ] = h
	return nil
}

// Send sends a frame of typ (TypeUser and above) to a slot or
// transport.Broadcast over both base paths, authenticated like the HA
// core's own frames.
func (b *Blade) Send(typ transport.Type, to uint8, payload []byte) error {
	if typ < transport.TypeUser {
		return fmt.Errorf("ha: frame type %d is reserved for the HA core", typ)
	}
	return b.tr.Send(typ, to, payload)
}

// WallTime converts an engine instant (evt.Event.At, Status times) to
// wall-clock time.
func (b *Blade) WallTime(at time.Duration) time.Time { return b.start.Add(at) }

// Events is the blade's event bus (membership, quorum, assignment,
// failover, admin, fault). Subscribers run on the HA loop: no blocking.
func (b *Blade) Events() *evt.Bus { return b.bus }

// Status is what `show ha` shows.
type Status struct {
	amf.Status
	Transport transport.Counters `json:"transport"`
	// Replicated is the raft-replicated shelf state as applied here, and
	// RaftLeader the slot this blade believes leads (0: none known).
	Replicated cfg.State `json:"replicated"`
	// LateWakeups counts the HA loop's wake-ups 50 ms or more after their deadline;
	// WorstLate is the latest.
	LateWakeups uint64        `json:"late_wakeups"`
	WorstLate   time.Duration `json:"worst_late_ns"`
	RaftLeader  uint8         `json:"raft_leader"`
	Events      []evt.Event   `json:"events"`
}

// Status returns a snapshot.
func (b *Blade) Status() Status {
	b.mu.Lock()
	s := Status{Status: b.node.Status(b.now()), Replicated: b.store.State(), RaftLeader: b.store.Leader(),
		LateWakeups: b.lateCount, WorstLate: b.worstLate}
	b.mu.Unlock()
	s.Transport = b.tr.Endpoint().Counters()
	s.Events = b.bus.History()
	return s
}

// Changed returns a channel that is closed at the next change of the
// units' placement as this blade sees it (amf.Node.Version: an HA state,
// a unit's instances or readiness as its blade reports them, a member
// joining, failing or fenced). A role that follows a group reads Group,
// then waits on the channel it took before the read: no change between
// the two is missed, and an idle shelf wakes nobody.
func (b *Blade) Changed() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.changed
}

// Group returns service group name as this blade sees it now, with the
// blade's slot and the lease time: the part of Status a role polling for
// its group's writer and standbys needs, at a fraction of Status's cost.
func (b *Blade) Group(name string) (g amf.GroupStatus, self uint8, lease time.Duration, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	g, ok = b.node.GroupStatus(name)
	return g, b.node.Self(), b.node.Timing().Lease, ok
}

// ShelfKey returns a copy of the shelf key, for roles that derive keys of
// their own from it (HKDF with their own label: the mgmt blade's sealed
// SNMP checkpoint, say).
func (b *Blade) ShelfKey() transport.Key { return append(transport.Key(nil), b.key...) }

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
