package mgmt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cgoa/cgoa/blades/statefeed"
	"github.com/cgoa/cgoa/ha/evt"
	"github.com/cgoa/cgoa/snmpagent"
	"github.com/cgoa/cgoa/snmpagent/mib/bridgemib"
	"github.com/cgoa/cgoa/snmpagent/mib/entitymib"
	"github.com/cgoa/cgoa/snmpagent/mib/eponmib"
	"github.com/cgoa/cgoa/snmpagent/mib/hamib"
	"github.com/cgoa/cgoa/snmpagent/mib/ifmib"
	"github.com/cgoa/cgoa/snmpagent/mib/traps"
)

// Checkpoint is where the SNMP service keeps its failover state: on the mgmt blade, a section
// of the ha/ckpt checkpoint replicated from the active to the standby mgmt blade.
type Checkpoint interface {
	// Save stores data and returns once the standby holds it (a synchronous write).
	Save(ctx context.Context, data []byte) error
	// Load returns the last state saved by whichever blade was active (nil when there is
	// none) and when this blade last saw it change, on its own clock.
	Load() (data []byte, seen time.Time, err error)
}

// SNMPConfig configures the SNMP service.
type SNMPConfig struct {
	// Addr is where managers reach the agent: the management address, UDP 161.
	Addr netip.AddrPort
	Ckpt Checkpoint
	// Active reports whether this blade may answer now (the active assignment with a valid
	// lease); nil: always.
	Active    func() bool
	Ports     ifmib.PortSource
	Admin     func(name string, up bool) error
	Inventory entitymib.Inventory
	IfIndex   func(slot int, port string) (uint32, bool)
	HA        hamib.Source // nil: no CGOA-HA-MIB
	// Feed is the shelf's state feed (blades/statefeed): BRIDGE-MIB and DOT3-EPON-MIB are
	// served from it and its events sent as notifications; nil: neither.
	Feed   *statefeed.Feed
	System snmpagent.System
	// Defaults is the configuration of a new engine (no checkpointed state).
	Defaults func(a *snmpagent.Agent) error
	Logf     func(format string, args ...any)
	Errorf   func(format string, args ...any)
	Now      func() time.Time
}

// snmpState is the checkpointed failover state: the agent's and IF-MIB's.
type snmpState struct {
	Agent snmpagent.State `json:"agent"`
	IF    ifmib.State     `json:"if"`
}

// SNMP is the shelf's SNMP agent as the mgmt blade runs it (issue 9): it serves on the
// management address only while this blade holds the active mgmt assignment, with IF-MIB
// (this blade's ports), ENTITY-MIB (the shelf inventory), CGOA-HA-MIB and SNMPv2-MIB, and
// sends notifications to the configured targets.
//
// Failover: no response leaves the blade before the state it reveals (engine time,
// counters, configuration) is held by the standby. Requests are answered in batches
// (group commit): the batch is handled, the agent's and IF-MIB's state exported and saved
// synchronously to the checkpoint, then the responses are sent. A standby that takes over
// therefore starts from a state at least as new as anything a manager has seen: same
// engine ID and boots (no re-discovery), engineTime and every counter continuing from there.
type SNMP struct {
	cfg   SNMPConfig
	ifs   *ifmib.Interfaces
	ent   *entitymib.Entity
	ham   *hamib.HA
	traps *traps.Mapper
	br    *bridgemib.Bridge
	epon  *eponmib.EPON

	mu      sync.Mutex
	want    bool // the assignment says active
	warm    bool // a checkpointed state existed when the agent last started
	warmed  bool // the standby rehearsed a takeover (warmUp; Run's goroutine only)
	cur     *liveAgent
	wake    chan struct{}
	saveMu  sync.Mutex // one export+save at a time (responses and console)
	started chan struct{}

	// Counters of the service (show snmp).
	Responses   atomic.Uint64 // responses sent after their state was durable
	Commits     atomic.Uint64 // checkpoint saves
	CommitFails atomic.Uint64 // saves that failed: their responses were dropped
	NotActive   atomic.Uint64 // requests dropped because the lease was not held
	Activations atomic.Uint64
	CkptRefused atomic.Uint64 // checkpointed states that failed to open or decode
	WarmUps     atomic.Uint64 // takeovers rehearsed on the standby
}

type liveAgent struct {
	a      *snmpagent.Agent
	conn   *net.UDPConn
	cancel context.CancelFunc
	done   chan struct{}
}

// ErrStandby is returned by configuration changes on a blade whose agent is not running.
var ErrStandby = errors.New("snmp: the agent runs on the active mgmt blade only; configure it there")

// NewSNMP builds the service; Run runs it, Assign drives it.
func NewSNMP(cfg SNMPConfig) *SNMP {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.Errorf == nil {
		cfg.Errorf = cfg.Logf
	}
	if cfg.Active == nil {
		cfg.Active = func() bool { return true }
	}
	s := &SNMP{cfg: cfg, wake: make(chan struct{}, 1), started: make(chan struct{})}
	s.ifs = ifmib.New(cfg.Ports, ifmib.Options{Admin: cfg.Admin})
	if cfg.Inventory != nil {
		s.ent = entitymib.New(cfg.Inventory, entitymib.Options{IfIndex: cfg.IfIndex})
	}
	if cfg.HA != nil {
		s.ham = hamib.New(cfg.HA)
	}
	s.traps = traps.New(notifier{s}, traps.Options{HA: s.ham})
	if cfg.Feed != nil {
		s.br, s.epon = feedModules(cfg.Feed)
		cfg.Feed.OnEvent(s.feedEvent)
	}
	s.ifs.OnLinkChange(func(c ifmib.LinkChange) {
		if s.Wanted() {
			s.traps.Link(c)
		}
	})
	return s
}

// Interfaces is the IF-MIB module (for the entity module's ifIndex mapping).
func (s *SNMP) Interfaces() *ifmib.Interfaces { return s.ifs }

// HAMIB is the CGOA-HA-MIB module (nil without an HA source); subscribe its Observe.
func (s *SNMP) HAMIB() *hamib.HA { return s.ham }

// Traps is the notification mapper.
func (s *SNMP) Traps() *traps.Mapper { return s.traps }

// SetActive is what the component's Assign callback says: serve or stop. It never blocks
// (it runs on the HA loop); Run does the work.
func (s *SNMP) SetActive(active bool) {
	s.mu.Lock()
	s.want = active
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Wanted reports whether the assignment says active.
func (s *SNMP) Wanted() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.want
}

// HAEvent feeds an HA event to the notifications while this blade is (becoming) active.
func (s *SNMP) HAEvent(e evt.Event) {
	if s.Wanted() {
		s.traps.HAEvent(e)
	}
}

// Agent returns the running agent (nil on a standby).
func (s *SNMP) Agent() *snmpagent.Agent {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return nil
	}
	return s.cur.a
}

// Run starts and stops the agent as the assignment says, until ctx ends.
func (s *SNMP) Run(ctx context.Context) error {
	go s.traps.Run(ctx)
	go s.ifs.Poll(ctx, time.Second)
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	defer s.stop()
	for {
		want := s.Wanted()
		s.mu.Lock()
		running := s.cur != nil
		s.mu.Unlock()
		switch {
		case want && !running:
			if err := s.start(ctx); err != nil {
				// The address may not be up yet (the address component is assigned beside
				// this one), or the checkpoint is unreadable: try again shortly.
				s.cfg.Errorf("snmp: start: %v", err)
				retry.Reset(50 * time.Millisecond)
			}
		case !want && running:
			s.stop()
		}
		if !want && !s.warmed {
			// A standby: rehearse the takeover's first steps once there is a state to take.
			switch ok, err := s.warmUp(); {
			case err != nil:
				s.cfg.Errorf("snmp: warm-up: %v", err)
				s.warmed = true // a state that does not decode is counted at takeover
			case ok:
				s.warmed = true
			default:
				retry.Reset(warmUpPoll)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		case <-retry.C:
		}
	}
}

// start builds an agent from the checkpointed state (or a new engine), registers the MIBs
// and serves on the management address.
func (s *SNMP) start(ctx context.Context) error {
	begin := time.Now()
	data, seen, err := s.cfg.Ckpt.Load()
	if errors.Is(err, ErrCkptRefused) {
		data = nil
		s.refused(err)
	} else if err != nil {
		return err
	}
	var st *snmpState
	if data != nil {
		if st, err = decodeState(data); err != nil {
			st = nil
			s.refused(err)
		}
	}
	a, err := s.newAgent(st, seen)
	if err != nil {
		return err
	}
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(s.cfg.Addr))
	if err != nil {
		return fmt.Errorf("snmp: listen %v: %w", s.cfg.Addr, err)
	}
	_ = conn.SetReadBuffer(1 << 20)
	actx, cancel := context.WithCancel(ctx)
	// The agent's own socket (an ephemeral port on the same address) carries the
	// notifications; managers use Addr, whose responses pass the checkpoint first.
	if err := a.Start(actx, netip.AddrPortFrom(s.cfg.Addr.Addr(), 0).String()); err != nil {
		cancel()
		conn.Close()
		return err
	}
	built := time.Since(begin)
	l := &liveAgent{a: a, conn: conn, cancel: cancel, done: make(chan struct{})}
	s.mu.Lock()
	s.cur = l
	s.warm = st != nil
	s.mu.Unlock()
	// The first save makes the standby hold this engine before anything is answered; Run
	// must not hang on it (a standby that vanished leaves the replica set within the
	// detection time).
	sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
	err = s.save(sctx)
	scancel()
	if err != nil {
		s.cfg.Errorf("snmp: first checkpoint: %v", err)
	}
	go s.serve(l)
	s.Activations.Add(1)
	s.traps.Started(st != nil)
	s.cfg.Logf("snmp: agent up on %v, engine %x boots %d (%s; built and bound in %v, first checkpoint in %v)", s.cfg.Addr, a.EngineID(), a.Export().EngineBoots,
		map[bool]string{true: "took over the checkpointed state", false: "new engine"}[st != nil],
		built.Round(time.Millisecond), (time.Since(begin) - built).Round(time.Millisecond))
	select {
	case <-s.started:
	default:
		close(s.started)
	}
	return nil
}

// warmUpPoll is how often a standby looks for the first checkpointed state to rehearse on.
const warmUpPoll = time.Second

// warmUp rehearses, on a standby, what a takeover does first with the checkpointed state:
// decode it, import it into an agent, export and encode it again, on a throwaway agent that
// serves nothing and registers no module. The first run of that code on a blade is many
// times its later runs (on an emulated blade 300-800 ms against a few: the emulator
// translates each code path the first time, and the encoders are built on first use), and
// a takeover must not pay it while the new active answers its first requests. It reports
// whether there was a state to rehearse on.
func (s *SNMP) warmUp() (bool, error) {
	data, seen, err := s.cfg.Ckpt.Load()
	if err != nil || data == nil {
		return false, nil // nothing replicated yet (or not readable now): later
	}
	st, err := decodeState(data)
	if err != nil {
		return true, err
	}
	a, err := snmpagent.New(snmpagent.Config{System: s.cfg.System, EngineID: st.Agent.EngineID})
	if err != nil {
		return true, err
	}
	defer a.Close()
	if err := a.Import(s.resumed(st.Agent, seen)); err != nil {
		return true, err
	}
	if _, err := json.Marshal(snmpState{Agent: a.Export(), IF: st.IF}); err != nil {
		return true, err
	}
	s.WarmUps.Add(1)
	return true, nil
}

// refused counts a checkpointed state that cannot be used. The agent then starts as a new
// engine (coldStart; managers re-discover it) rather than not at all: the management function
// must come back, and nothing in an unopenable section can be trusted.
func (s *SNMP) refused(err error) {
	s.CkptRefused.Add(1)
	s.cfg.Errorf("%v; starting a new engine", err)
}

// Started is closed once the agent has served for the first time.
func (s *SNMP) Started() <-chan struct{} { return s.started }

// stopSlack is engineTime headroom on takeover: the exported engineTime is truncated to whole
// seconds and the standby's view of when it was saved may be late by its poll period, so the
// new agent starts a little ahead rather than ever behind what a manager saw.
const stopSlack = 2 * time.Second

func (s *SNMP) newAgent(st *snmpState, seen time.Time) (*snmpagent.Agent, error) {
	cfg := snmpagent.Config{System: s.cfg.System}
	if st != nil {
		cfg.EngineID = st.Agent.EngineID
	}
	a, err := snmpagent.New(cfg)
	if err != nil {
		return nil, err
	}
	if err := s.register(a); err != nil {
		return nil, err
	}
	if st == nil {
		if s.cfg.Defaults != nil {
			if err := s.cfg.Defaults(a); err != nil {
				return nil, fmt.Errorf("snmp: default configuration: %w", err)
			}
		}
		return a, nil
	}
	if err := a.Import(s.resumed(st.Agent, seen)); err != nil {
		return nil, err
	}
	if err := s.ifs.Import(st.IF); err != nil {
		return nil, err
	}
	return a, nil
}

// decodeState parses a checkpointed state (ErrCkptRefused if it does not decode).
func decodeState(data []byte) (*snmpState, error) {
	st := new(snmpState)
	if err := json.Unmarshal(data, st); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCkptRefused, err)
	}
	return st, nil
}

// resumed is a checkpointed agent state as this blade continues it now, seen being when the
// state arrived here: its save time moved back by the time elapsed since, by the saver's
// clock or by this blade's arrival time, the larger one (clock skew between the blades cannot
// make it short), and by stopSlack.
func (s *SNMP) resumed(ast snmpagent.State, seen time.Time) snmpagent.State {
	now := s.cfg.Now()
	elapsed := max(now.Sub(ast.SavedAt), now.Sub(seen), 0)
	ast.SavedAt = now.Add(-elapsed - stopSlack)
	return ast
}

func (s *SNMP) register(a *snmpagent.Agent) error {
	if err := s.ifs.Register(a); err != nil {
		return err
	}
	if s.ent != nil {
		if err := s.ent.Register(a); err != nil {
			return err
		}
	}
	if s.ham != nil {
		if err := s.ham.Register(a); err != nil {
			return err
		}
	}
	if s.br != nil {
		if err := s.br.Register(a); err != nil {
			return err
		}
		if err := s.epon.Register(a); err != nil {
			return err
		}
	}
	return nil
}

func (s *SNMP) stop() {
	s.mu.Lock()
	l := s.cur
	s.cur = nil
	s.mu.Unlock()
	if l == nil {
		return
	}
	l.cancel()
	l.conn.Close()
	<-l.done
	l.a.Close()
	s.cfg.Logf("snmp: agent stopped (standby)")
}

type reply struct {
	to   netip.AddrPort
	resp snmpagent.Response
}

// serve reads requests and hands their responses to the committer.
func (s *SNMP) serve(l *liveAgent) {
	defer close(l.done)
	out := make(chan reply, 256)
	committed := make(chan struct{})
	go func() {
		defer close(committed)
		s.commitLoop(l, out)
	}()
	buf := make([]byte, 65536)
	for {
		n, from, err := l.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				break
			}
			continue
		}
		if !s.cfg.Active() {
			s.NotActive.Add(1)
			continue
		}
		resp := l.a.HandleMessage(buf[:n], from)
		if resp.Data != nil {
			out <- reply{to: from, resp: resp}
		}
	}
	close(out)
	<-committed
}

// commitLoop takes every response waiting, saves the state once for all of them, and only
// then sends them.
func (s *SNMP) commitLoop(l *liveAgent, in <-chan reply) {
	batch := make([]reply, 0, 64)
	for r := range in {
		batch = append(batch[:0], r)
	more:
		for len(batch) < cap(batch) {
			select {
			case r, ok := <-in:
				if !ok {
					break more
				}
				batch = append(batch, r)
			default:
				break more
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := s.saveAgent(ctx, l.a)
		cancel()
		if err != nil || !s.cfg.Active() {
			// The manager retries; what it would have seen is not known to the standby.
			s.CommitFails.Add(1)
			continue
		}
		for _, r := range batch {
			if _, err := l.conn.WriteToUDPAddrPort(r.resp.Data, r.to); err == nil {
				l.a.Sent(r.resp) // snmpOutPkts, snmpOutGetResponses, ...
				s.Responses.Add(1)
			}
		}
	}
}

// save checkpoints the running agent's state (console changes call it too).
func (s *SNMP) save(ctx context.Context) error {
	a := s.Agent()
	if a == nil {
		return ErrStandby
	}
	return s.saveAgent(ctx, a)
}

func (s *SNMP) saveAgent(ctx context.Context, a *snmpagent.Agent) error {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	st := snmpState{Agent: a.Export(), IF: s.ifs.Export()}
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("snmp: encode state: %w", err)
	}
	if err := s.cfg.Ckpt.Save(ctx, b); err != nil {
		return fmt.Errorf("snmp: checkpoint: %w", err)
	}
	s.Commits.Add(1)
	return nil
}

// change applies f to the running agent and checkpoints the result before returning.
func (s *SNMP) change(f func(a *snmpagent.Agent) error) error {
	a := s.Agent()
	if a == nil {
		return ErrStandby
	}
	if err := f(a); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.save(ctx)
}

// notifier sends through whichever agent is running; a notification raised while the agent
// is starting waits for it.
type notifier struct{ s *SNMP }

func (n notifier) Notify(ctx context.Context, trap snmpagent.OID, vbs ...snmpagent.Varbind) error {
	for {
		if a := n.s.Agent(); a != nil {
			return a.Notify(ctx, trap, vbs...)
		}
		if !n.s.Wanted() {
			return ErrStandby
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("snmp: notification: agent not up: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// sortedTargets is for show snmp.
func sortedTargets(ts []snmpagent.Target) []snmpagent.Target {
	ts = slices.Clone(ts)
	slices.SortFunc(ts, func(a, b snmpagent.Target) int { return cmpStr(a.Name, b.Name) })
	return ts
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
