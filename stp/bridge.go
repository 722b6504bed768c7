package stp

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Clock is the bridge's only source of time. Production passes a wall
// clock; tests pass a virtual one.
type Clock interface {
	Now() time.Time
}

// Env is how a Bridge acts on the world. The netstack shell implements it
// over raw sockets and rtnetlink; the tests implement it in memory. The
// Bridge calls it with its lock held: an Env must not call back into the
// Bridge. Errors are counted (see PortSnapshot.TxErrors, StateErrors and
// Snapshot.FDBErrors); the Bridge's own view of port states stays
// authoritative, so a shell can re-apply it (Bridge.Resync).
type Env interface {
	// SendBPDU transmits b on the port.
	SendBPDU(port uint16, b *BPDU) error
	// SetPortState puts the port into state s (learning and forwarding
	// as the bridge forwarding process understands them).
	SetPortState(port uint16, s PortState) error
	// FlushFDB removes the dynamic filtering entries learnt on the port;
	// called when a port stops learning (blocked or disabled).
	FlushFDB(port uint16) error
	// SetAgeingTime sets the ageing time of dynamic filtering entries:
	// the configured ageing time normally, Forward Delay while the
	// Topology Change flag is set (802.1D-1998 8.3.5).
	SetAgeingTime(d time.Duration) error
}

// PortState is a port's state in 802.1D; the values are BRIDGE-MIB's
// dot1dStpPortState.
type PortState uint8

// Port states.
const (
	Disabled   PortState = 1
	Blocking   PortState = 2
	Listening  PortState = 3
	Learning   PortState = 4
	Forwarding PortState = 5
)

func (s PortState) String() string {
	switch s {
	case Disabled:
		return "disabled"
	case Blocking:
		return "blocking"
	case Listening:
		return "listening"
	case Learning:
		return "learning"
	case Forwarding:
		return "forwarding"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// MarshalText implements encoding.TextMarshaler.
func (s PortState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses the String form.
func (s *PortState) UnmarshalText(b []byte) error {
	for v := Disabled; v <= Forwarding; v++ {
		if v.String() == string(b) {
			*s = v
			return nil
		}
	}
	return fmt.Errorf("stp: unknown port state %q", b)
}

// PortRole is the role a port plays in the active topology. Classic STP
// does not name roles; they are derived from its variables: the root port,
// designated ports, and blocked ports, which are alternate (another bridge
// is designated on the LAN) or backup (another port of this bridge is).
type PortRole uint8

// Port roles.
const (
	RoleDisabled PortRole = iota
	RoleRoot
	RoleDesignated
	RoleAlternate
	RoleBackup
)

func (r PortRole) String() string {
	switch r {
	case RoleDisabled:
		return "disabled"
	case RoleRoot:
		return "root"
	case RoleDesignated:
		return "designated"
	case RoleAlternate:
		return "alternate"
	case RoleBackup:
		return "backup"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// MarshalText implements encoding.TextMarshaler.
func (r PortRole) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText parses the String form.
func (r *PortRole) UnmarshalText(b []byte) error {
	for v := RoleDisabled; v <= RoleBackup; v++ {
		if v.String() == string(b) {
			*r = v
			return nil
		}
	}
	return fmt.Errorf("stp: unknown port role %q", b)
}

// 802.1D default and fixed protocol timer values.
const (
	DefaultMaxAge       = 20 * time.Second
	DefaultHelloTime    = 2 * time.Second
	DefaultForwardDelay = 15 * time.Second
	DefaultAgeingTime   = 300 * time.Second
	HoldTime            = 1 * time.Second
	DefaultPriority     = 0x8000
)

// messageAgeIncrement is added to the age of relayed information so that it
// grows at every hop even over links that take no time (virtual links, a
// fast backplane). One wire unit, as the Linux bridge does.
const messageAgeIncrement = timeUnit

// Config is a bridge's management configuration. Zero timers take the
// 802.1D defaults.
type Config struct {
	ID           BridgeID
	MaxAge       time.Duration
	HelloTime    time.Duration
	ForwardDelay time.Duration
	AgeingTime   time.Duration
}

// PortConfig describes a port when it is added.
type PortConfig struct {
	Number uint16
	Name   string
	// Priority is taken as given (0 is a valid priority): a multiple of
	// 16, DefaultPortPriority (128) unless management says otherwise.
	Priority uint8
	// PathCost 0 takes DefaultPathCost(0); see DefaultPathCost for speeds.
	PathCost uint32
}

// Errors of the management interface.
var (
	ErrNoPort      = errors.New("no such port")
	ErrPortExists  = errors.New("port exists")
	ErrBadTimers   = errors.New("timers out of range")
	ErrBadPathCost = errors.New("path cost out of range")
)

// CheckTimers applies the 802.1D-2004 (table 17-1, 17.14) ranges and the
// relation 2 x (Forward Delay - 1 s) >= Max Age >= 2 x (Hello Time + 1 s).
func CheckTimers(maxAge, hello, fwd time.Duration) error {
	switch {
	case hello < time.Second || hello > 10*time.Second:
		return fmt.Errorf("stp: hello time %v: %w (1s..10s)", hello, ErrBadTimers)
	case maxAge < 6*time.Second || maxAge > 40*time.Second:
		return fmt.Errorf("stp: max age %v: %w (6s..40s)", maxAge, ErrBadTimers)
	case fwd < 4*time.Second || fwd > 30*time.Second:
		return fmt.Errorf("stp: forward delay %v: %w (4s..30s)", fwd, ErrBadTimers)
	case 2*(fwd-time.Second) < maxAge:
		return fmt.Errorf("stp: max age %v above 2 x (forward delay %v - 1s): %w", maxAge, fwd, ErrBadTimers)
	case maxAge < 2*(hello+time.Second):
		return fmt.Errorf("stp: max age %v below 2 x (hello time %v + 1s): %w", maxAge, hello, ErrBadTimers)
	}
	return nil
}

// timer is one of 802.1D's count-up timers, held as the instant it was
// (virtually) started; its limit is looked up when it is checked, so a
// timer honours a Max Age or Forward Delay learnt while it runs.
type timer struct {
	active bool
	start  time.Time
}

func (t *timer) run(at time.Time) { t.active, t.start = true, at }
func (t *timer) stop()            { t.active = false }

// Bridge is one 802.1D spanning tree bridge: the variables, timers and
// procedures of 802.1D-1998 clause 8 (classic STP, kept in 802.1D-2004
// annex). It is safe for concurrent use.
type Bridge struct {
	mu    sync.Mutex
	clock Clock
	env   Env

	// Bridge parameters (management).
	id                                            BridgeID
	bridgeMaxAge, bridgeHelloTime, bridgeFwdDelay time.Duration
	ageingTime                                    time.Duration

	// Bridge variables (8.5.3).
	designatedRoot                  BridgeID
	rootPathCost                    uint32
	rootPort                        uint16
	maxAge, helloTime, forwardDelay time.Duration
	tcDetected, tc                  bool
	helloTimer, tcnTimer, tcTimer   timer
	tcCount                         uint64
	lastTC                          time.Time
	appliedAgeing                   time.Duration
	fdbErrors                       uint64
	generation                      uint64        // see Generation
	changed                         chan struct{} // closed when generation moves (Changed)
	ports                           []*port       // ordered by number
}

type port struct {
	number uint16
	name   string

	// Port variables (8.5.5).
	id               PortID
	state            PortState
	pathCost         uint32
	designatedRoot   BridgeID
	designatedCost   uint32
	designatedBridge BridgeID
	designatedPort   PortID
	tcAck            bool
	configPending    bool

	messageAge, fwdDelay, hold timer

	counters PortCounters
}

// PortCounters are a port's protocol counters.
type PortCounters struct {
	ForwardTransitions uint64 `json:"forward_transitions"`
	ConfigIn           uint64 `json:"config_in"`
	TCNIn              uint64 `json:"tcn_in"`
	RSTIn              uint64 `json:"rst_in"` // RST/MST BPDUs seen and ignored
	BadIn              uint64 `json:"bad_in"` // undecodable frames
	IgnoredIn          uint64 `json:"ignored_in"`
	ConfigOut          uint64 `json:"config_out"`
	TCNOut             uint64 `json:"tcn_out"`
	TxErrors           uint64 `json:"tx_errors"`
	StateErrors        uint64 `json:"state_errors"`
}

// New creates a bridge with no ports and runs 802.1D initialisation: the
// bridge starts as root of its own tree.
func New(cfg Config, clock Clock, env Env) (*Bridge, error) {
	if clock == nil || env == nil {
		return nil, errors.New("stp: new bridge: nil clock or env")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.MaxAge, DefaultMaxAge)
	def(&cfg.HelloTime, DefaultHelloTime)
	def(&cfg.ForwardDelay, DefaultForwardDelay)
	def(&cfg.AgeingTime, DefaultAgeingTime)
	if err := CheckTimers(cfg.MaxAge, cfg.HelloTime, cfg.ForwardDelay); err != nil {
		return nil, fmt.Errorf("stp: new bridge %v: %w", cfg.ID, err)
	}
	b := &Bridge{
		changed:         make(chan struct{}),
		clock:           clock,
		env:             env,
		id:              cfg.ID,
		bridgeMaxAge:    cfg.MaxAge,
		bridgeHelloTime: cfg.HelloTime,
		bridgeFwdDelay:  cfg.ForwardDelay,
		ageingTime:      cfg.AgeingTime,
	}
	now := clock.Now()
	// Initialisation (8.8.1).
	b.designatedRoot = b.id
	b.rootPathCost = 0
	b.rootPort = 0
	b.maxAge, b.helloTime, b.forwardDelay = b.bridgeMaxAge, b.bridgeHelloTime, b.bridgeFwdDelay
	b.helloTimer.run(now)
	b.applyAgeing()
	return b, nil
}

func (b *Bridge) port(n uint16) (*port, error) {
	for _, p := range b.ports {
		if p.number == n {
			return p, nil
		}
	}
	return nil, fmt.Errorf("stp: port %d: %w", n, ErrNoPort)
}

// AddPort adds a port in the disabled state; EnablePort brings it into the tree.
func (b *Bridge) AddPort(pc PortConfig) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, err := b.port(pc.Number); err == nil {
		return fmt.Errorf("stp: port %d: %w", pc.Number, ErrPortExists)
	}
	if pc.PathCost == 0 {
		pc.PathCost = DefaultPathCost(0)
	}
	if pc.PathCost > 200_000_000 {
		return fmt.Errorf("stp: port %d: path cost %d: %w", pc.Number, pc.PathCost, ErrBadPathCost)
	}
	id, err := NewPortID(pc.Priority, pc.Number)
	if err != nil {
		return err
	}
	if pc.Name == "" {
		pc.Name = fmt.Sprint(pc.Number)
	}
	p := &port{number: pc.Number, name: pc.Name, id: id, state: Disabled, pathCost: pc.PathCost}
	b.becomeDesignatedPort(p)
	b.ports = append(b.ports, p)
	slices.SortFunc(b.ports, func(x, y *port) int { return int(x.number) - int(y.number) })
	b.setState(p, Disabled, true)
	return nil
}

// RemovePort disables the port and forgets it.
func (b *Bridge) RemovePort(n uint16) error {
	if err := b.DisablePort(n); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ports = slices.DeleteFunc(b.ports, func(p *port) bool { return p.number == n })
	return nil
}

// EnablePort is 802.1D's enable port (8.8.2): call it when the port's link
// comes up (and it is administratively enabled).
func (b *Bridge) EnablePort(n uint16) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, err := b.port(n)
	if err != nil {
		return err
	}
	if p.state != Disabled {
		return nil
	}
	b.initializePort(p)
	b.portStateSelection()
	return nil
}

// DisablePort is 802.1D's disable port (8.8.3): call it when the port's
// link goes down or it is administratively disabled.
func (b *Bridge) DisablePort(n uint16) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, err := b.port(n)
	if err != nil {
		return err
	}
	if p.state == Disabled {
		return nil
	}
	wasRoot := b.isRoot()
	b.becomeDesignatedPort(p)
	b.setState(p, Disabled, false)
	p.tcAck, p.configPending = false, false
	p.messageAge.stop()
	p.fwdDelay.stop()
	p.hold.stop()
	b.configurationUpdate()
	b.portStateSelection()
	if b.isRoot() && !wasRoot {
		b.becomeRootBridge()
	}
	return nil
}

// SetBridgePriority sets the 16-bit priority field of the bridge
// identifier (8.8.4).
func (b *Bridge) SetBridgePriority(priority uint16) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	newID := b.id.WithPriority(priority)
	wasRoot := b.isRoot()
	for _, p := range b.ports {
		if p.state != Disabled && b.isDesignatedPort(p) {
			p.designatedBridge = newID
		}
	}
	b.id = newID
	b.configurationUpdate()
	b.portStateSelection()
	b.afterRootChange(wasRoot)
	return nil
}

// SetPortPriority sets a port's priority (8.8.5); priority is a multiple of 16.
func (b *Bridge) SetPortPriority(n uint16, priority uint8) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, err := b.port(n)
	if err != nil {
		return err
	}
	id, err := NewPortID(priority, n)
	if err != nil {
		return err
	}
	if b.isDesignatedPort(p) {
		p.designatedPort = id
	}
	p.id = id
	if b.id == p.designatedBridge && p.id < p.designatedPort {
		b.becomeDesignatedPort(p)
	}
	// 8.8.5 stops here; the port identifier is also a root port tie
	// breaker, so re-run the selection now rather than at the next BPDU.
	b.configurationUpdate()
	b.portStateSelection()
	return nil
}

// SetPortPathCost sets a port's path cost (8.8.6).
func (b *Bridge) SetPortPathCost(n uint16, cost uint32) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, err := b.port(n)
	if err != nil {
		return err
	}
	if cost == 0 || cost > 200_000_000 {
		return fmt.Errorf("stp: port %s: path cost %d: %w", p.name, cost, ErrBadPathCost)
	}
	p.pathCost = cost
	b.configurationUpdate()
	b.portStateSelection()
	return nil
}

// SetTimers sets the bridge's Max Age, Hello Time and Forward Delay; they
// take effect in the network while this bridge is root.
func (b *Bridge) SetTimers(maxAge, hello, fwd time.Duration) error {
	if err := CheckTimers(maxAge, hello, fwd); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.bridgeMaxAge, b.bridgeHelloTime, b.bridgeFwdDelay = maxAge, hello, fwd
	if b.isRoot() {
		b.maxAge, b.helloTime, b.forwardDelay = maxAge, hello, fwd
		b.applyAgeing()
	}
	return nil
}

// SetAgeingTime sets the normal ageing time of dynamic filtering entries.
func (b *Bridge) SetAgeingTime(d time.Duration) error {
	if d < 10*time.Second || d > 1000000*time.Second {
		return fmt.Errorf("stp: ageing time %v: out of range (10s..1000000s)", d)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ageingTime = d
	b.applyAgeing()
	return nil
}

// Receive decodes an Ethernet frame received on port n and processes it.
// Undecodable frames are counted and returned as errors.
func (b *Bridge) Receive(n uint16, frame []byte) error {
	bpdu, _, err := ParseFrame(frame)
	if err != nil {
		b.mu.Lock()
		if p, perr := b.port(n); perr == nil {
			p.counters.BadIn++
		}
		b.mu.Unlock()
		return fmt.Errorf("stp: port %d: %w", n, err)
	}
	return b.ReceiveBPDU(n, bpdu)
}

// ReceiveBPDU processes a decoded BPDU received on port n.
func (b *Bridge) ReceiveBPDU(n uint16, bpdu *BPDU) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, err := b.port(n)
	if err != nil {
		return err
	}
	if p.state == Disabled {
		p.counters.IgnoredIn++
		return nil
	}
	switch bpdu.Type {
	case TypeConfig:
		if bpdu.MessageAge >= bpdu.MaxAge || (bpdu.BridgeID == b.id && bpdu.PortID == p.id) {
			// Invalid (9.3.4): stale, or our own BPDU looped back
			// to the port that sent it.
			p.counters.IgnoredIn++
			return nil
		}
		p.counters.ConfigIn++
		b.receivedConfig(p, bpdu)
	case TypeTCN:
		p.counters.TCNIn++
		b.receivedTCN(p)
	case TypeRST:
		// A classic STP bridge does not know this type and ignores it
		// (802.1D-2004 9.3.4); an RSTP neighbour falls back to STP when
		// it hears our configuration BPDUs.
		p.counters.RSTIn++
	default:
		p.counters.IgnoredIn++
	}
	return nil
}

// Tick runs the timers that have expired by the clock's current time, in
// expiry order. The shell calls it periodically or at NextDeadline.
func (b *Bridge) Tick() {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock.Now()
	for {
		t, fire := b.earliestTimer()
		if fire == nil || t.After(now) {
			return
		}
		fire()
	}
}

// NextDeadline reports when the next timer expires; ok is false when none runs.
func (b *Bridge) NextDeadline() (t time.Time, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, fire := b.earliestTimer()
	return t, fire != nil
}

// earliestTimer finds the running timer that expires first and returns its
// expiry and a function that stops it and runs its expiry procedure (8.7).
func (b *Bridge) earliestTimer() (time.Time, func()) {
	var (
		best time.Time
		fire func()
	)
	consider := func(t *timer, limit time.Duration, f func()) {
		if !t.active {
			return
		}
		d := t.start.Add(limit)
		if fire == nil || d.Before(best) {
			best = d
			fire = func() { t.stop(); f() }
		}
	}
	consider(&b.helloTimer, b.bridgeHelloTime, b.helloTimerExpiry)
	consider(&b.tcnTimer, b.bridgeHelloTime, b.tcnTimerExpiry)
	consider(&b.tcTimer, b.bridgeMaxAge+b.bridgeFwdDelay, b.tcTimerExpiry)
	for _, p := range b.ports {
		consider(&p.messageAge, b.maxAge, func() { b.messageAgeTimerExpiry(p) })
		consider(&p.fwdDelay, b.forwardDelay, func() { b.forwardDelayTimerExpiry(p) })
		consider(&p.hold, HoldTime, func() { b.holdTimerExpiry(p) })
	}
	return best, fire
}

// --- 802.1D-1998 clause 8.6 procedures ---

func (b *Bridge) isRoot() bool { return b.designatedRoot == b.id }

func (b *Bridge) isDesignatedPort(p *port) bool {
	return p.designatedBridge == b.id && p.designatedPort == p.id
}

func (b *Bridge) rootPortPtr() *port {
	if b.rootPort == 0 {
		return nil
	}
	p, _ := b.port(b.rootPort)
	return p
}

// transmitConfig (8.6.1).
func (b *Bridge) transmitConfig(p *port) {
	if p.hold.active {
		p.configPending = true
		return
	}
	now := b.clock.Now()
	var age time.Duration
	if !b.isRoot() {
		if rp := b.rootPortPtr(); rp != nil && rp.messageAge.active {
			age = now.Sub(rp.messageAge.start)
		}
		age += messageAgeIncrement
	}
	if age >= b.maxAge {
		// The information would arrive invalid (9.3.4); it is about to
		// time out here as well.
		return
	}
	bp := &BPDU{
		Version:      VersionSTP,
		Type:         TypeConfig,
		RootID:       b.designatedRoot,
		RootPathCost: b.rootPathCost,
		BridgeID:     b.id,
		PortID:       p.id,
		MessageAge:   wireTime(age),
		MaxAge:       wireTime(b.maxAge),
		HelloTime:    wireTime(b.helloTime),
		ForwardDelay: wireTime(b.forwardDelay),
	}
	if b.tc {
		bp.Flags |= FlagTC
	}
	if p.tcAck {
		bp.Flags |= FlagTCA
	}
	if err := b.env.SendBPDU(p.number, bp); err != nil {
		p.counters.TxErrors++
	} else {
		p.counters.ConfigOut++
	}
	p.tcAck = false
	p.configPending = false
	p.hold.run(now)
}

// wireTime converts a protocol time, already range-checked, to wire units.
func wireTime(d time.Duration) Time {
	t, err := TimeOf(d)
	if err != nil {
		return 0xffff
	}
	return t
}

// supersedesPortInfo (8.6.2.2): is the BPDU better than what the port holds?
func (b *Bridge) supersedesPortInfo(p *port, m *BPDU) bool {
	switch {
	case m.RootID != p.designatedRoot:
		return m.RootID < p.designatedRoot
	case m.RootPathCost != p.designatedCost:
		return m.RootPathCost < p.designatedCost
	case m.BridgeID != p.designatedBridge:
		return m.BridgeID < p.designatedBridge
	case m.BridgeID != b.id:
		// Fresh information from the same designated bridge.
		return true
	}
	return m.PortID <= p.designatedPort
}

// recordConfigInformation (8.6.2).
func (b *Bridge) recordConfigInformation(p *port, m *BPDU) {
	if p.designatedRoot != m.RootID || p.designatedCost != m.RootPathCost ||
		p.designatedBridge != m.BridgeID || p.designatedPort != m.PortID {
		b.bump()
	}
	p.designatedRoot = m.RootID
	p.designatedCost = m.RootPathCost
	p.designatedBridge = m.BridgeID
	p.designatedPort = m.PortID
	p.messageAge.run(b.clock.Now().Add(-m.MessageAge.Duration()))
}

// recordConfigTimeoutValues (8.6.3).
func (b *Bridge) recordConfigTimeoutValues(m *BPDU) {
	b.maxAge = m.MaxAge.Duration()
	b.helloTime = m.HelloTime.Duration()
	b.forwardDelay = m.ForwardDelay.Duration()
	b.setTC(m.TC())
}

// configBPDUGeneration (8.6.4).
func (b *Bridge) configBPDUGeneration() {
	for _, p := range b.ports {
		if p.state != Disabled && b.isDesignatedPort(p) {
			b.transmitConfig(p)
		}
	}
}

// transmitTCN (8.6.6).
func (b *Bridge) transmitTCN() {
	rp := b.rootPortPtr()
	if rp == nil {
		return
	}
	if err := b.env.SendBPDU(rp.number, &BPDU{Version: VersionSTP, Type: TypeTCN}); err != nil {
		rp.counters.TxErrors++
		return
	}
	rp.counters.TCNOut++
}

// configurationUpdate (8.6.7).
func (b *Bridge) configurationUpdate() {
	b.rootSelection()
	b.designatedPortSelection()
}

// betterRootPort compares candidate root ports by the priority vector
// (root, root path cost, designated bridge, designated port, port id).
func betterRootPort(p, q *port) bool {
	if p.designatedRoot != q.designatedRoot {
		return p.designatedRoot < q.designatedRoot
	}
	pc := uint64(p.designatedCost) + uint64(p.pathCost)
	qc := uint64(q.designatedCost) + uint64(q.pathCost)
	if pc != qc {
		return pc < qc
	}
	if p.designatedBridge != q.designatedBridge {
		return p.designatedBridge < q.designatedBridge
	}
	if p.designatedPort != q.designatedPort {
		return p.designatedPort < q.designatedPort
	}
	return p.id < q.id
}

// rootSelection (8.6.8).
func (b *Bridge) rootSelection() {
	was := [3]uint64{uint64(b.rootPort), uint64(b.designatedRoot), uint64(b.rootPathCost)}
	defer func() {
		if was != [3]uint64{uint64(b.rootPort), uint64(b.designatedRoot), uint64(b.rootPathCost)} {
			b.bump()
		}
	}()
	var root *port
	for _, p := range b.ports {
		if p.state == Disabled || b.isDesignatedPort(p) || p.designatedRoot >= b.id {
			continue
		}
		if root == nil || betterRootPort(p, root) {
			root = p
		}
	}
	if root == nil {
		b.rootPort = 0
		b.designatedRoot = b.id
		b.rootPathCost = 0
		return
	}
	b.rootPort = root.number
	b.designatedRoot = root.designatedRoot
	c := uint64(root.designatedCost) + uint64(root.pathCost)
	if c > 0xffffffff {
		c = 0xffffffff
	}
	b.rootPathCost = uint32(c)
}

// designatedPortSelection (8.6.9).
func (b *Bridge) designatedPortSelection() {
	for _, p := range b.ports {
		if p.state == Disabled {
			continue
		}
		if b.isDesignatedPort(p) ||
			p.designatedRoot != b.designatedRoot ||
			b.rootPathCost < p.designatedCost ||
			(b.rootPathCost == p.designatedCost &&
				(b.id < p.designatedBridge ||
					(b.id == p.designatedBridge && p.id <= p.designatedPort))) {
			b.becomeDesignatedPort(p)
		}
	}
}

// becomeDesignatedPort (8.6.10).
func (b *Bridge) becomeDesignatedPort(p *port) {
	if p.designatedRoot != b.designatedRoot || p.designatedCost != b.rootPathCost ||
		p.designatedBridge != b.id || p.designatedPort != p.id {
		b.bump()
	}
	p.designatedRoot = b.designatedRoot
	p.designatedCost = b.rootPathCost
	p.designatedBridge = b.id
	p.designatedPort = p.id
}

// portStateSelection (8.6.11).
func (b *Bridge) portStateSelection() {
	for _, p := range b.ports {
		if p.state == Disabled {
			continue
		}
		switch {
		case p.number == b.rootPort:
			p.configPending = false
			p.tcAck = false
			b.makeForwarding(p)
		case b.isDesignatedPort(p):
			p.messageAge.stop()
			b.makeForwarding(p)
		default:
			p.configPending = false
			p.tcAck = false
			b.makeBlocking(p)
		}
	}
}

// makeForwarding (8.6.12).
func (b *Bridge) makeForwarding(p *port) {
	if p.state == Blocking {
		b.setState(p, Listening, false)
		p.fwdDelay.run(b.clock.Now())
	}
}

// makeBlocking (8.6.13).
func (b *Bridge) makeBlocking(p *port) {
	if p.state == Disabled || p.state == Blocking {
		return
	}
	if p.state == Forwarding || p.state == Learning {
		b.topologyChangeDetection()
	}
	b.setState(p, Blocking, false)
	p.fwdDelay.stop()
}

// topologyChangeDetection (8.6.14).
func (b *Bridge) topologyChangeDetection() {
	if b.isRoot() {
		b.setTC(true)
		b.tcTimer.run(b.clock.Now())
	} else if !b.tcDetected {
		b.transmitTCN()
		b.tcnTimer.run(b.clock.Now())
	}
	b.tcDetected = true
}

// topologyChangeAcknowledged (8.6.15).
func (b *Bridge) topologyChangeAcknowledged() {
	b.tcDetected = false
	b.tcnTimer.stop()
}

// acknowledgeTopologyChange (8.6.16).
func (b *Bridge) acknowledgeTopologyChange(p *port) {
	p.tcAck = true
	b.transmitConfig(p)
}

// becomeRootBridge is the common tail of 8.7.3 and 8.8.3.
func (b *Bridge) becomeRootBridge() {
	b.maxAge, b.helloTime, b.forwardDelay = b.bridgeMaxAge, b.bridgeHelloTime, b.bridgeFwdDelay
	b.applyAgeing()
	b.topologyChangeDetection()
	b.tcnTimer.stop()
	b.configBPDUGeneration()
	b.helloTimer.run(b.clock.Now())
}

// afterRootChange handles the bridge gaining or losing the root role.
func (b *Bridge) afterRootChange(wasRoot bool) {
	switch isRoot := b.isRoot(); {
	case isRoot && !wasRoot:
		b.becomeRootBridge()
	case !isRoot && wasRoot:
		b.helloTimer.stop()
		if b.tcDetected {
			b.tcTimer.stop()
			b.transmitTCN()
			b.tcnTimer.run(b.clock.Now())
		}
	}
}

// receivedConfig (8.7.1).
func (b *Bridge) receivedConfig(p *port, m *BPDU) {
	wasRoot := b.isRoot()
	if b.supersedesPortInfo(p, m) {
		b.recordConfigInformation(p, m)
		b.configurationUpdate()
		b.portStateSelection()
		b.afterRootChange(wasRoot)
		if p.number == b.rootPort {
			b.recordConfigTimeoutValues(m)
			b.configBPDUGeneration()
			if m.TCA() {
				b.topologyChangeAcknowledged()
			}
		}
	} else if b.isDesignatedPort(p) {
		b.transmitConfig(p) // reply (8.6.5)
	}
}

// receivedTCN (8.7.2).
func (b *Bridge) receivedTCN(p *port) {
	if b.isDesignatedPort(p) {
		b.topologyChangeDetection()
		b.acknowledgeTopologyChange(p)
	}
}

// helloTimerExpiry (8.7.3).
func (b *Bridge) helloTimerExpiry() {
	b.configBPDUGeneration()
	b.helloTimer.run(b.clock.Now())
}

// messageAgeTimerExpiry (8.7.4).
func (b *Bridge) messageAgeTimerExpiry(p *port) {
	wasRoot := b.isRoot()
	b.becomeDesignatedPort(p)
	b.configurationUpdate()
	b.portStateSelection()
	if b.isRoot() && !wasRoot {
		b.becomeRootBridge()
	}
}

// forwardDelayTimerExpiry (8.7.5).
func (b *Bridge) forwardDelayTimerExpiry(p *port) {
	switch p.state {
	case Listening:
		b.setState(p, Learning, false)
		p.fwdDelay.run(b.clock.Now())
	case Learning:
		b.setState(p, Forwarding, false)
		if b.designatedForSomePort() {
			b.topologyChangeDetection()
		}
	}
}

func (b *Bridge) designatedForSomePort() bool {
	for _, p := range b.ports {
		if p.state != Disabled && p.designatedBridge == b.id {
			return true
		}
	}
	return false
}

// tcnTimerExpiry (8.7.6).
func (b *Bridge) tcnTimerExpiry() {
	if b.isRoot() {
		return
	}
	b.transmitTCN()
	b.tcnTimer.run(b.clock.Now())
}

// tcTimerExpiry (8.7.7).
func (b *Bridge) tcTimerExpiry() {
	b.tcDetected = false
	b.setTC(false)
}

// holdTimerExpiry (8.7.8).
func (b *Bridge) holdTimerExpiry(p *port) {
	if p.configPending {
		b.transmitConfig(p)
	}
}

// initializePort is the port part of 8.8.1 and 8.8.2.
func (b *Bridge) initializePort(p *port) {
	b.becomeDesignatedPort(p)
	b.setState(p, Blocking, false)
	p.tcAck, p.configPending = false, false
	p.messageAge.stop()
	p.fwdDelay.stop()
	p.hold.stop()
}

// Generation counts changes of the protocol state that a standby must not
// miss: port states, the root, root port and cost, the information held
// on a port, the Topology Change flag. The blade checkpoints synchronously
// when it moves and refreshes timer values asynchronously (say every hello
// time); a standby restored from a slightly old checkpoint only sees its
// timers run a little late.
func (b *Bridge) Generation() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.generation
}

// Changed returns a channel closed at the next move of Generation: the
// blade's checkpoint and state feed wait on it instead of polling. Take it
// before reading the state, so that no change in between is missed.
func (b *Bridge) Changed() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.changed
}

// bump moves Generation and wakes those waiting on Changed (b.mu held).
func (b *Bridge) bump() {
	b.generation++
	close(b.changed)
	b.changed = make(chan struct{})
}

// setState changes a port's state and tells the environment. Leaving
// learning or forwarding flushes what the port learnt: those entries
// would point into a port that no longer forwards.
func (b *Bridge) setState(p *port, s PortState, force bool) {
	old := p.state
	if old == s && !force {
		return
	}
	p.state = s
	if old != s {
		b.bump()
	}
	if s == Forwarding && old != Forwarding {
		p.counters.ForwardTransitions++
	}
	if err := b.env.SetPortState(p.number, s); err != nil {
		p.counters.StateErrors++
	}
	if (old == Learning || old == Forwarding) && (s == Blocking || s == Disabled) {
		if err := b.env.FlushFDB(p.number); err != nil {
			b.fdbErrors++
		}
	}
}

// setTC sets the bridge's Topology Change flag and the ageing time that
// goes with it, counting each change from clear to set.
func (b *Bridge) setTC(v bool) {
	if v && !b.tc {
		b.tcCount++
		b.lastTC = b.clock.Now()
	}
	if v != b.tc {
		b.bump()
	}
	b.tc = v
	b.applyAgeing()
}

func (b *Bridge) applyAgeing() {
	want := b.ageingTime
	if b.tc {
		want = b.forwardDelay
	}
	if want == b.appliedAgeing {
		return
	}
	if err := b.env.SetAgeingTime(want); err != nil {
		b.fdbErrors++
		return
	}
	b.appliedAgeing = want
}
