package switchblade

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cgoa/cgoa/netstack/bridge"
	"github.com/cgoa/cgoa/stp"
)

// Mode says how the two hubs share the shelf's spanning tree.
type Mode string

// Modes.
const (
	// Protected: the two hubs are one logical bridge (ShelfBridgeID); the
	// active hub runs it on its uplinks, the standby holds its uplinks
	// discarding and the active's state from checkpoints. The
	// inter-switch link is inside the logical bridge (an edge port).
	Protected Mode = "protected"
	// Independent: each hub is its own 802.1D bridge (identifier from its
	// br0 address) over its uplinks and the inter-switch link, with no
	// protection: plain 802.1D, the peer the protected mode is measured
	// against.
	Independent Mode = "independent"
	// Off: no spanning tree; br0 forwards on every port with kernel STP
	// off. Only for wiring without loops, such as the emulator's default
	// shelf, whose hubs' uplinks end at separate host sinks.
	Off Mode = "off"
)

// ParseMode parses a mode name.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case Protected, Independent, Off:
		return m, nil
	}
	return "", fmt.Errorf("stp: mode %q: want %s, %s or %s", s, Protected, Independent, Off)
}

// Port numbers of the STP ports: the same on both hubs, so that the
// logical bridge's port identifiers do not change with the active hub.
var stpPortNumbers = map[string]uint16{"uplink0": 1, "uplink1": 2, "isl0": 3}

// ShelfBridgeID is the logical bridge identifier of a protected shelf: the
// priority field and a locally administered address made from the shelf
// number (02:43:47:4f:<shelf>), so that both hubs derive the same one.
func ShelfBridgeID(priority uint16, shelf int) stp.BridgeID {
	mac := net.HardwareAddr{0x02, 0x43, 0x47, 0x4f, byte(shelf >> 8), byte(shelf)}
	id, _ := stp.NewBridgeID(priority, mac) // six octets: cannot fail
	return id
}

// portPlan is which of the hub's ports run STP and which are held
// forwarding in a mode.
func portPlan(mode Mode, names []string) (stpPorts []bridge.Port, edges []string) {
	for _, n := range names {
		switch {
		case strings.HasPrefix(n, "uplink") || (n == "isl0" && mode == Independent):
			if num, ok := stpPortNumbers[n]; ok {
				stpPorts = append(stpPorts, bridge.Port{Name: n, Number: num})
			}
		case bridgedPort(n):
			edges = append(edges, n)
		}
	}
	sort.Slice(stpPorts, func(i, j int) bool { return stpPorts[i].Number < stpPorts[j].Number })
	sort.Strings(edges)
	return stpPorts, edges
}

// portSpeed reads a port's speed in bit/s from sysfs (0 when unknown, as
// for a virtual link without one).
func portSpeed(name string) uint64 {
	b, err := os.ReadFile("/sys/class/net/" + name + "/speed")
	if err != nil {
		return 0
	}
	mbps, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || mbps <= 0 {
		return 0
	}
	return uint64(mbps) * 1_000_000
}

// settings are the operator's STP configuration (console), applied to a
// bridge the hub starts afresh; a restored bridge carries the active's.
type settings struct {
	Priority  uint16
	MaxAge    time.Duration
	Hello     time.Duration
	FwdDelay  time.Duration
	PortCost  map[string]uint32
	PortPrio  map[string]uint8
	ForceMode Mode
}

// role of the agent on this hub.
type agentRole string

const (
	roleStopped agentRole = "stopped" // not started (waiting for HA) or failed
	roleActive  agentRole = "active"  // runs the tree
	roleStandby agentRole = "standby" // holds the uplinks discarding, and the checkpoint
)

// Store is where the active hub checkpoints the bridge's state and the
// standby reads it: Load returns the latest state and the local time at
// which it was current (nil data: none yet).
type Store interface {
	Save(ctx context.Context, data []byte, sync bool) error
	Load() (data []byte, at time.Time, err error)
}

// Agent runs the hub's spanning tree on br0 through netstack/bridge and
// follows the HA assignment (SetActive). Its loop (Run) is one goroutine
// that reopens the bridge when the mode changes and switches between
// running the tree (active) and holding the ports (standby).
type Agent struct {
	shelf int
	noSTP bool // process mode: br0 is not in the initial network namespace
	ports func() ([]string, error)
	logf  func(string, ...any)
	errf  func(string, ...any)
	open  func(bridge.Config) (*bridge.Bridge, error)

	mu     sync.Mutex
	set    settings
	mode   Mode
	want   agentRole // from HA
	role   agentRole // what runs
	br     *bridge.Bridge
	brMode Mode
	sb     *stp.Bridge
	// changed is closed at the next change of the role or of the running bridge's
	// protocol state (Changed).
	changed chan struct{}
	store   Store
	lastErr string
	restore restoreInfo
	held    struct {
		data []byte
		rec  checkpointRecord
	}
	kick chan struct{}
	// provisional: the standby took over on its own when isl0 lost carrier (MateLost),
	// before HA confirms; since provisionalAt.
	provisional   bool
	provisionalAt time.Time
	mateGrace     time.Duration

	ckptWrites, ckptErrors, restores, restoreFails atomic.Uint64
	fastTakeovers, fastReverts                     atomic.Uint64
}

// restoreInfo describes the last takeover.
type restoreInfo struct {
	At         time.Time     `json:"at"`
	Restored   bool          `json:"restored"` // from a checkpoint (false: started afresh)
	Age        time.Duration `json:"checkpoint_age"`
	Generation uint64        `json:"generation"`
	Error      string        `json:"error,omitempty"`
}

// AgentConfig sets an agent up.
type AgentConfig struct {
	Shelf int
	// NoSTP runs br0 with kernel STP off (process mode; see bridge.Config.NoSTP).
	NoSTP bool
	// Ports lists the hub's interfaces.
	Ports func() ([]string, error)
	Logf  func(string, ...any)
	Errf  func(string, ...any)
	// Open opens the bridge (default bridge.Open).
	Open func(bridge.Config) (*bridge.Bridge, error)
	// MateGrace is how long a standby that took over on losing isl0's carrier runs the
	// tree without HA's confirmation before it goes back to holding (default 10 s).
	MateGrace time.Duration
}

// NewAgent makes an agent in protected mode that holds the uplinks discarding from the start
// (Run opens the bridge at once) until SetActive(true): a hub that boots next to a running
// one must not forward on its uplinks before it knows its role, or the LAN its uplinks share
// with the other hub's, and isl0, close a loop.
func NewAgent(cfg AgentConfig) *Agent {
	if cfg.Open == nil {
		cfg.Open = bridge.Open
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.Errf == nil {
		cfg.Errf = cfg.Logf
	}
	if cfg.MateGrace <= 0 {
		cfg.MateGrace = 10 * time.Second
	}
	return &Agent{changed: make(chan struct{}), shelf: cfg.Shelf, mateGrace: cfg.MateGrace, noSTP: cfg.NoSTP, ports: cfg.Ports, logf: cfg.Logf, errf: cfg.Errf, open: cfg.Open,
		set:  settings{Priority: stp.DefaultPriority, PortCost: map[string]uint32{}, PortPrio: map[string]uint8{}},
		mode: Protected, want: roleStandby, role: roleStopped, kick: make(chan struct{}, 1)}
}

func (a *Agent) poke() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// SetStore gives the agent its checkpoint store (protected mode with HA).
func (a *Agent) SetStore(s Store) {
	a.mu.Lock()
	a.store = s
	a.mu.Unlock()
}

// SetActive tells the agent whether this hub holds the switch group's
// active assignment. It only records the wish (it is called on the HA
// loop); Run acts on it.
func (a *Agent) SetActive(active bool) {
	a.mu.Lock()
	if active {
		a.want = roleActive
	} else {
		a.want = roleStandby
	}
	a.provisional = false // HA has spoken
	a.mu.Unlock()
	a.poke()
}

// MateLost is the standby's fast path: isl0 lost carrier, so the other hub was most likely
// pulled or died (a hub's death takes its end of isl0 down at once; HA needs its detection
// time). In protected mode, a standby that holds a checkpoint takes over at once from it,
// provisionally: HA confirms (SetActive(true)) or, if it has not within the grace time,
// the hub goes back to holding. Taking over while the mate lives is loop-free: with isl0
// down nothing joins the two hubs but the uplink LAN, and node blades bridge nothing; the
// nodes may get broadcasts twice meanwhile.
func (a *Agent) MateLost() {
	a.mu.Lock()
	if a.mode != Protected || a.want != roleStandby || a.role != roleStandby || a.provisional || a.store == nil {
		a.mu.Unlock()
		return
	}
	store := a.store
	a.mu.Unlock()
	if data, _, err := store.Load(); err != nil || data == nil {
		return // nothing to continue from: a fresh bridge gains nothing over waiting for HA
	}
	a.mu.Lock()
	if a.want != roleStandby || a.provisional {
		a.mu.Unlock()
		return
	}
	at := time.Now()
	a.provisional, a.provisionalAt = true, at
	grace := a.mateGrace
	a.mu.Unlock()
	a.fastTakeovers.Add(1)
	a.logf("stp: isl0 lost carrier: taking over from the checkpoint before HA confirms")
	time.AfterFunc(grace, func() {
		a.mu.Lock()
		revert := a.provisional && a.provisionalAt.Equal(at)
		if revert {
			a.provisional = false
		}
		a.mu.Unlock()
		if revert {
			a.fastReverts.Add(1)
			a.errf("stp: HA did not confirm the takeover within %v: holding again", grace)
			a.poke()
		}
	})
	a.poke()
}

// SetMode switches between protected, independent and off.
func (a *Agent) SetMode(m Mode) error {
	if _, err := ParseMode(string(m)); err != nil {
		return err
	}
	a.mu.Lock()
	a.mode = m
	a.mu.Unlock()
	a.poke()
	return nil
}

// desired is the role the agent should play: independent hubs always run
// their own tree; protected ones follow HA.
func (a *Agent) desired() (Mode, agentRole) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.mode == Off:
		return a.mode, roleStopped
	case a.mode == Independent && a.want != roleStopped:
		return a.mode, roleActive
	case a.mode == Protected && a.want == roleStandby && a.provisional:
		return a.mode, roleActive
	}
	return a.mode, a.want
}

// Run is the agent's loop; it returns when ctx ends. Errors opening or
// running the bridge are logged and retried after a back-off.
func (a *Agent) Run(ctx context.Context) error {
	var (
		stop    context.CancelFunc = func() {}
		runDone chan error
	)
	defer func() {
		stop()
		if runDone != nil {
			<-runDone
		}
		a.mu.Lock()
		if a.br != nil {
			a.br.Close()
			a.br = nil
		}
		a.sb = nil
		a.role = roleStopped
		a.notify()
		a.mu.Unlock()
	}()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	for {
		mode, want := a.desired()
		a.mu.Lock()
		current, brMode, open := a.role, a.brMode, a.br != nil
		a.mu.Unlock()
		if want != current || (open && brMode != mode) || (runDone == nil && want != roleStopped) {
			stop()
			if runDone != nil {
				<-runDone
				runDone = nil
			}
			if mode == Off && open {
				a.release()
			}
			rctx, cancel := context.WithCancel(ctx)
			stop = cancel
			done, err := a.start(rctx, mode, want)
			if err != nil {
				a.mu.Lock()
				a.lastErr = err.Error()
				a.role = roleStopped
				a.mu.Unlock()
				a.errf("stp: %v", err)
				retry.Reset(2 * time.Second)
			} else {
				runDone = done
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-a.kick:
		case <-retry.C:
		case err := <-runDone:
			runDone = nil
			if err != nil && ctx.Err() == nil {
				a.mu.Lock()
				a.lastErr = err.Error()
				a.role = roleStopped
				a.mu.Unlock()
				a.errf("stp: %v", err)
				retry.Reset(2 * time.Second)
			}
		}
	}
}

// release gives br0 back to no spanning tree (mode off).
func (a *Agent) release() {
	a.mu.Lock()
	br := a.br
	a.br, a.sb, a.brMode, a.role = nil, nil, "", roleStopped
	a.notify()
	a.mu.Unlock()
	if err := br.Release(); err != nil {
		a.errf("stp: off: %v", err)
	}
	a.logf("stp: off: %s forwards on every port, kernel STP off", Bridge)
}

// openBridge (re)opens br0 with the mode's port plan.
func (a *Agent) openBridge(mode Mode) (*bridge.Bridge, error) {
	a.mu.Lock()
	br, brMode := a.br, a.brMode
	a.mu.Unlock()
	if br != nil && brMode == mode {
		return br, nil
	}
	if br != nil {
		br.Close()
	}
	names, err := a.ports()
	if err != nil {
		return nil, err
	}
	stpPorts, edges := portPlan(mode, names)
	if len(stpPorts) == 0 {
		return nil, fmt.Errorf("no uplink on this hub (ports %v)", names)
	}
	br, err = a.open(bridge.Config{Name: Bridge, Ports: stpPorts, EdgePorts: edges, NoSTP: a.noSTP,
		OnEdgeCarrier: func(name string, up bool) {
			if name == "isl0" && !up {
				go a.MateLost() // off the watch goroutine: it reads the checkpoint
			}
		}})
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	a.br, a.brMode, a.sb = br, mode, nil
	a.notify()
	a.mu.Unlock()
	how := "user-space STP"
	if a.noSTP {
		how = "kernel STP off (process mode)"
	}
	a.logf("stp: %s mode, %s %s over %v, edge ports %v", mode, Bridge, how, stpPorts, edges)
	return br, nil
}

// start begins the role: the tree (active) or holding the ports (standby).
func (a *Agent) start(ctx context.Context, mode Mode, role agentRole) (chan error, error) {
	if role == roleStopped {
		return nil, nil
	}
	br, err := a.openBridge(mode)
	if err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	if role == roleStandby {
		a.mu.Lock()
		a.sb, a.role, a.lastErr = nil, roleStandby, ""
		a.notify()
		a.mu.Unlock()
		go func() { done <- br.Hold(ctx) }()
		a.logf("stp: standby: %s uplinks held discarding", Bridge)
		return done, nil
	}
	sb, info, err := a.bridgeFor(mode, br)
	if err != nil {
		return nil, err
	}
	if mode == Protected {
		// Addresses learnt through the old active (now perhaps dead) across isl0 would
		// black-hole traffic until they age out.
		if err := br.FlushAllFDB(); err != nil {
			a.errf("stp: takeover: %v", err)
		}
	}
	a.mu.Lock()
	a.sb, a.role, a.lastErr, a.restore = sb, roleActive, "", info
	a.notify()
	store := a.store
	a.mu.Unlock()
	go func() { done <- br.Run(ctx, sb) }()
	go a.forward(ctx, sb)
	if mode == Protected && store != nil {
		go a.checkpoint(ctx, sb, store)
	}
	if info.Restored {
		a.logf("stp: active: continued bridge %v from a checkpoint %v old (generation %d)", sb.Snapshot().ID, info.Age.Round(time.Millisecond), info.Generation)
	} else {
		a.logf("stp: active: bridge %v started afresh%s", sb.Snapshot().ID, map[bool]string{true: " (" + info.Error + ")", false: ""}[info.Error != ""])
	}
	return done, nil
}

// bridgeFor makes the stp.Bridge an active hub runs: in protected mode the
// checkpointed one when there is a usable checkpoint, otherwise a new one.
func (a *Agent) bridgeFor(mode Mode, br *bridge.Bridge) (*stp.Bridge, restoreInfo, error) {
	info := restoreInfo{At: time.Now()}
	a.mu.Lock()
	store, set := a.store, a.set
	set.PortCost = cloneMap(set.PortCost)
	set.PortPrio = cloneMap(set.PortPrio)
	a.mu.Unlock()
	if mode == Protected && store != nil {
		sb, age, gen, err := restoreFrom(store, br)
		switch {
		case err == nil && sb != nil:
			a.restores.Add(1)
			info.Restored, info.Age, info.Generation = true, age, gen
			return sb, info, nil
		case err != nil:
			a.restoreFails.Add(1)
			info.Error = "checkpoint unusable: " + err.Error()
		default:
			info.Error = "no checkpoint"
		}
	}
	var id stp.BridgeID
	if mode == Protected {
		id = ShelfBridgeID(set.Priority, a.shelf)
	} else {
		var err error
		if id, err = stp.NewBridgeID(set.Priority, br.MAC()); err != nil {
			return nil, info, err
		}
	}
	// Path costs by port speed (802.1D-2004 table 17-3), unless set.
	var ports []bridge.Port
	for _, p := range br.Ports() {
		if c, ok := set.PortCost[p.Name]; ok {
			p.PathCost = c
		} else {
			p.PathCost = stp.DefaultPathCost(portSpeed(p.Name))
		}
		if pr, ok := set.PortPrio[p.Name]; ok {
			p.Priority = pr
		}
		ports = append(ports, p)
	}
	sb, err := stp.New(stp.Config{ID: id, MaxAge: set.MaxAge, HelloTime: set.Hello, ForwardDelay: set.FwdDelay}, bridge.WallClock{}, br)
	if err != nil {
		return nil, info, err
	}
	for _, p := range ports {
		if err := sb.AddPort(stp.PortConfig{Number: p.Number, Name: p.Name, Priority: p.Priority, PathCost: p.PathCost}); err != nil {
			return nil, info, err
		}
	}
	return sb, info, nil
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// checkpointRecord is what the active hub writes: the bridge's State and
// the Generation it was taken at.
type checkpointRecord struct {
	Generation uint64    `json:"generation"`
	State      stp.State `json:"state"`
}

// restoreFrom builds the bridge from the store's latest record, aged by
// the time since it was current. A nil bridge and nil error: no record.
func restoreFrom(store Store, br *bridge.Bridge) (*stp.Bridge, time.Duration, uint64, error) {
	data, at, err := store.Load()
	if err != nil || data == nil {
		return nil, 0, 0, err
	}
	var rec checkpointRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, 0, 0, fmt.Errorf("decode: %w", err)
	}
	have := map[uint16]string{}
	for _, p := range br.Ports() {
		have[p.Number] = p.Name
	}
	for _, p := range rec.State.Ports {
		if have[p.Number] != p.Name {
			return nil, 0, 0, fmt.Errorf("port %d (%s) of the checkpoint is not a port here (%v)", p.Number, p.Name, have)
		}
	}
	if len(rec.State.Ports) != len(have) {
		return nil, 0, 0, fmt.Errorf("checkpoint has %d ports, this hub %d", len(rec.State.Ports), len(have))
	}
	age := max(time.Since(at), 0)
	sb, err := stp.Restore(rec.State.Aged(age), bridge.WallClock{}, br)
	if err != nil {
		return nil, 0, 0, err
	}
	return sb, age, rec.Generation, nil
}

// checkpointRetry is how soon a failed checkpoint write is tried again.
const checkpointRetry = 50 * time.Millisecond

// checkpoint writes the bridge's state while ctx lives: synchronously when
// Generation moved (a state, root or held information changed), otherwise
// asynchronously every hello time, so the standby's timers stay close. It
// waits on the bridge's Changed, not on a poll: an idle bridge wakes it once
// per hello time.
func (a *Agent) checkpoint(ctx context.Context, sb *stp.Bridge, store Store) {
	var lastGen uint64
	var lastWrite time.Time
	first := true
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		changed := sb.Changed() // before the read: no change is missed
		gen := sb.Generation()
		hello := sb.Snapshot().HelloTime
		wait := hello - time.Since(lastWrite)
		if first || gen != lastGen || wait <= 0 {
			rec := checkpointRecord{Generation: gen, State: sb.Export()}
			data, err := json.Marshal(rec)
			if err == nil {
				wctx, cancel := context.WithTimeout(ctx, time.Second)
				err = store.Save(wctx, data, first || gen != lastGen)
				cancel()
			}
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				a.ckptErrors.Add(1)
				wait = checkpointRetry
			} else {
				a.ckptWrites.Add(1)
				first, lastGen, lastWrite = false, gen, time.Now()
				wait = hello
			}
		}
		t.Reset(max(wait, 0))
		select {
		case <-ctx.Done():
			return
		case <-changed: // Reset above drops the timer's pending value (Go 1.23 timers)
		case <-t.C:
		}
	}
}

// Changed returns a channel closed at the next change of the agent's role
// or of the running bridge's protocol state (stp.Bridge.Changed): the
// state feed waits on it instead of polling. Take it before reading.
func (a *Agent) Changed() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.changed
}

// notify wakes those waiting on Changed (a.mu held).
func (a *Agent) notify() {
	close(a.changed)
	a.changed = make(chan struct{})
}

// forward passes the running bridge's changes on to Changed while ctx lives.
func (a *Agent) forward(ctx context.Context, sb *stp.Bridge) {
	for {
		ch := sb.Changed()
		select {
		case <-ctx.Done():
			return
		case <-ch:
			a.mu.Lock()
			a.notify()
			a.mu.Unlock()
		}
	}
}

// nopEnv lets a standby render a checkpointed state as a Snapshot.
type nopEnv struct{}

func (nopEnv) SendBPDU(uint16, *stp.BPDU) error         { return nil }
func (nopEnv) SetPortState(uint16, stp.PortState) error { return nil }
func (nopEnv) FlushFDB(uint16) error                    { return nil }
func (nopEnv) SetAgeingTime(time.Duration) error        { return nil }
func (a *Agent) heldSnapshot() (*stp.Snapshot, time.Duration, error) {
	a.mu.Lock()
	store := a.store
	a.mu.Unlock()
	if store == nil {
		return nil, 0, nil
	}
	data, at, err := store.Load()
	if err != nil || data == nil {
		return nil, 0, err
	}
	// Decode only when the checkpoint changed (the feed asks ten times a second).
	a.mu.Lock()
	rec, cached := a.held.rec, bytes.Equal(a.held.data, data)
	a.mu.Unlock()
	if !cached {
		if err := json.Unmarshal(data, &rec); err != nil {
			return nil, 0, err
		}
		a.mu.Lock()
		a.held.data, a.held.rec = slices.Clone(data), rec
		a.mu.Unlock()
	}
	age := max(time.Since(at), 0)
	b, err := stp.Restore(rec.State.Aged(age), bridge.WallClock{}, nopEnv{})
	if err != nil {
		return nil, 0, err
	}
	s := b.Snapshot()
	return &s, age, nil
}

// Snapshot is the bridge as this hub runs it or, on the standby, holds it from the
// checkpoint (the zero Snapshot when it has neither): what BRIDGE-MIB serves, through
// blades/statefeed.
func (a *Agent) Snapshot() stp.Snapshot {
	a.mu.Lock()
	sb := a.sb
	a.mu.Unlock()
	if sb != nil {
		return sb.Snapshot()
	}
	if s, _, err := a.heldSnapshot(); err == nil && s != nil {
		return *s
	}
	return stp.Snapshot{}
}

// errNotActive refuses management changes on a hub that does not run the tree.
var errNotActive = errors.New("this hub does not run the tree (standby or stopped): configure the active hub")
