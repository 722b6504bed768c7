package traps

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cgoa/cgoa/ha/evt"
	"github.com/cgoa/cgoa/snmpagent"
	"github.com/cgoa/cgoa/snmpagent/mib/bridgemib"
	"github.com/cgoa/cgoa/snmpagent/mib/hamib"
	"github.com/cgoa/cgoa/snmpagent/mib/ifmib"
	"github.com/cgoa/cgoa/stp"
)

// Notifier sends one notification to every configured target;
// *snmpagent.Agent is one.
type Notifier interface {
	Notify(ctx context.Context, trapOID snmpagent.OID, vbs ...snmpagent.Varbind) error
}

// Options configure a Mapper.
type Options struct {
	// HA builds cgoaHaStateChange's unit objects; without it HA state
	// changes are not sent (failover and quorum changes still are).
	HA *hamib.HA
	// Queue is how many notifications may wait (default 256).
	Queue int
	// Timeout bounds one notification, informs' retries included
	// (default 10 s).
	Timeout time.Duration
	Logger  *slog.Logger
}

// notification is built on the Run goroutine: building may read HA
// status, which must not happen on the HA loop.
type notification func() (trap snmpagent.OID, vbs []snmpagent.Varbind, ok bool)

// Mapper maps events to notifications.
type Mapper struct {
	n     Notifier
	opts  Options
	queue chan notification

	mu     sync.Mutex
	bridge *stp.Snapshot // last snapshot seen

	sent, failed, dropped atomic.Uint64
}

// New builds a mapper sending through n.
func New(n Notifier, opts Options) *Mapper {
	if opts.Queue <= 0 {
		opts.Queue = 256
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Mapper{n: n, opts: opts, queue: make(chan notification, opts.Queue)}
}

// Counters: notifications sent, failed to send (to at least one target),
// and dropped because the queue was full.
func (m *Mapper) Sent() uint64    { return m.sent.Load() }
func (m *Mapper) Failed() uint64  { return m.failed.Load() }
func (m *Mapper) Dropped() uint64 { return m.dropped.Load() }

func (m *Mapper) enqueue(f notification) {
	select {
	case m.queue <- f:
	default:
		m.dropped.Add(1)
	}
}

// Run sends queued notifications in order until ctx ends.
func (m *Mapper) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case f := <-m.queue:
			trap, vbs, ok := f()
			if !ok {
				continue
			}
			nctx, cancel := context.WithTimeout(ctx, m.opts.Timeout)
			err := m.n.Notify(nctx, trap, vbs...)
			cancel()
			if err != nil {
				m.failed.Add(1)
				m.opts.Logger.Warn("traps: notification failed", "trap", trap.String(), "err", err)
				continue
			}
			m.sent.Add(1)
		}
	}
}

func fixed(trap snmpagent.OID, vbs ...snmpagent.Varbind) notification {
	return func() (snmpagent.OID, []snmpagent.Varbind, bool) { return trap, vbs, true }
}

// Started sends coldStart, or warmStart when the agent took over from a
// failed or departing active management blade (its configuration
// carried over).
func (m *Mapper) Started(warm bool) {
	if warm {
		m.enqueue(fixed(snmpagent.OIDWarmStart))
		return
	}
	m.enqueue(fixed(snmpagent.OIDColdStart))
}

// Link sends linkUp or linkDown for c unless the manager disabled them
// for the port (ifLinkUpDownTrapEnable).
func (m *Mapper) Link(c ifmib.LinkChange) {
	if c.TrapEnabled {
		m.enqueue(fixed(c.TrapOID(), c.Varbinds()...))
	}
}

// HAEvent maps an HA event: assignment changes to cgoaHaStateChange,
// failovers to cgoaHaFailover, quorum changes to cgoaHaQuorumChange. It
// never blocks: subscribe it to the HA event bus.
func (m *Mapper) HAEvent(e evt.Event) {
	switch e.Kind {
	case evt.Assignment:
		if m.opts.HA == nil {
			return
		}
		m.enqueue(func() (snmpagent.OID, []snmpagent.Varbind, bool) {
			vbs, ok := m.opts.HA.StateChangeVarbinds(e)
			return hamib.OIDStateChange, vbs, ok
		})
	case evt.Failover:
		m.enqueue(fixed(hamib.OIDFailover, hamib.FailoverVarbinds(e)...))
	case evt.Quorum:
		m.enqueue(fixed(hamib.OIDQuorumChange, hamib.QuorumVarbinds(e)...))
	}
}

// Bridge compares s with the previous snapshot: a bridge that became
// root sends newRoot; otherwise a grown topology change count sends
// topologyChange (RFC 4188: not both for one transition). The first
// snapshot only sets the baseline.
func (m *Mapper) Bridge(s stp.Snapshot) {
	m.mu.Lock()
	prev := m.bridge
	m.bridge = &s
	m.mu.Unlock()
	switch {
	case prev == nil:
	case s.IsRoot && (!prev.IsRoot || prev.ID != s.ID):
		m.enqueue(fixed(bridgemib.OIDNewRoot))
	case s.TopologyChanges > prev.TopologyChanges:
		m.enqueue(fixed(bridgemib.OIDTopologyChange))
	}
}

// NewRoot sends newRoot for a bridge whose transitions are detected where it runs (the
// switch blades' state feed), not by comparing snapshots here.
func (m *Mapper) NewRoot() { m.enqueue(fixed(bridgemib.OIDNewRoot)) }

// TopologyChange sends topologyChange, like NewRoot.
func (m *Mapper) TopologyChange() { m.enqueue(fixed(bridgemib.OIDTopologyChange)) }

// Notify queues any notification (e.g. eponmib.Notification's). It never blocks.
func (m *Mapper) Notify(trap snmpagent.OID, vbs ...snmpagent.Varbind) { m.enqueue(fixed(trap, vbs...)) }
