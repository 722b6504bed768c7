package stp

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// StateVersion is the version of the State layout; Restore refuses others.
const StateVersion = 1

// TimerState is a running or stopped 802.1D timer: Elapsed is its count-up
// value at the moment of Export.
type TimerState struct {
	Active  bool          `json:"active"`
	Elapsed time.Duration `json:"elapsed"`
}

// State is the complete protocol state of a bridge as plain data: every
// parameter, variable, timer and counter. It is what the active switch
// blade checkpoints and what the standby restores, so that the standby
// continues the same bridge: same identifier, roles, states and timers.
// Timers are held as elapsed values, not instants, so the two blades'
// clocks need not agree.
type State struct {
	Version int `json:"version"`

	ID                 BridgeID      `json:"id"`
	BridgeMaxAge       time.Duration `json:"bridge_max_age"`
	BridgeHelloTime    time.Duration `json:"bridge_hello_time"`
	BridgeForwardDelay time.Duration `json:"bridge_forward_delay"`
	AgeingTime         time.Duration `json:"ageing_time"`

	DesignatedRoot         BridgeID      `json:"designated_root"`
	RootPathCost           uint32        `json:"root_path_cost"`
	RootPort               uint16        `json:"root_port"`
	MaxAge                 time.Duration `json:"max_age"`
	HelloTime              time.Duration `json:"hello_time"`
	ForwardDelay           time.Duration `json:"forward_delay"`
	TopologyChangeDetected bool          `json:"topology_change_detected"`
	TopologyChange         bool          `json:"topology_change"`
	HelloTimer             TimerState    `json:"hello_timer"`
	TCNTimer               TimerState    `json:"tcn_timer"`
	TopologyChangeTimer    TimerState    `json:"topology_change_timer"`
	TopologyChanges        uint64        `json:"topology_changes"`
	// SinceTopologyChange is the time since the Topology Change flag was
	// last set; meaningful only when TopologyChanges > 0.
	SinceTopologyChange time.Duration `json:"since_topology_change"`
	FDBErrors           uint64        `json:"fdb_errors"`

	Ports []PortRecord `json:"ports"`
}

// PortRecord is one port's part of State.
type PortRecord struct {
	Number            uint16       `json:"number"`
	Name              string       `json:"name"`
	ID                PortID       `json:"id"`
	State             PortState    `json:"state"`
	PathCost          uint32       `json:"path_cost"`
	DesignatedRoot    BridgeID     `json:"designated_root"`
	DesignatedCost    uint32       `json:"designated_cost"`
	DesignatedBridge  BridgeID     `json:"designated_bridge"`
	DesignatedPort    PortID       `json:"designated_port"`
	TopologyChangeAck bool         `json:"topology_change_ack"`
	ConfigPending     bool         `json:"config_pending"`
	MessageAgeTimer   TimerState   `json:"message_age_timer"`
	ForwardDelayTimer TimerState   `json:"forward_delay_timer"`
	HoldTimer         TimerState   `json:"hold_timer"`
	Counters          PortCounters `json:"counters"`
}

func exportTimer(t timer, now time.Time) TimerState {
	if !t.active {
		return TimerState{}
	}
	return TimerState{Active: true, Elapsed: now.Sub(t.start)}
}

func importTimer(ts TimerState, now time.Time) timer {
	if !ts.Active {
		return timer{}
	}
	return timer{active: true, start: now.Add(-ts.Elapsed)}
}

// Export returns the bridge's complete state as of the clock's now.
func (b *Bridge) Export() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock.Now()
	st := State{
		Version:                StateVersion,
		ID:                     b.id,
		BridgeMaxAge:           b.bridgeMaxAge,
		BridgeHelloTime:        b.bridgeHelloTime,
		BridgeForwardDelay:     b.bridgeFwdDelay,
		AgeingTime:             b.ageingTime,
		DesignatedRoot:         b.designatedRoot,
		RootPathCost:           b.rootPathCost,
		RootPort:               b.rootPort,
		MaxAge:                 b.maxAge,
		HelloTime:              b.helloTime,
		ForwardDelay:           b.forwardDelay,
		TopologyChangeDetected: b.tcDetected,
		TopologyChange:         b.tc,
		HelloTimer:             exportTimer(b.helloTimer, now),
		TCNTimer:               exportTimer(b.tcnTimer, now),
		TopologyChangeTimer:    exportTimer(b.tcTimer, now),
		TopologyChanges:        b.tcCount,
		FDBErrors:              b.fdbErrors,
	}
	if b.tcCount > 0 {
		st.SinceTopologyChange = now.Sub(b.lastTC)
	}
	for _, p := range b.ports {
		st.Ports = append(st.Ports, PortRecord{
			Number:            p.number,
			Name:              p.name,
			ID:                p.id,
			State:             p.state,
			PathCost:          p.pathCost,
			DesignatedRoot:    p.designatedRoot,
			DesignatedCost:    p.designatedCost,
			DesignatedBridge:  p.designatedBridge,
			DesignatedPort:    p.designatedPort,
			TopologyChangeAck: p.tcAck,
			ConfigPending:     p.configPending,
			MessageAgeTimer:   exportTimer(p.messageAge, now),
			ForwardDelayTimer: exportTimer(p.fwdDelay, now),
			HoldTimer:         exportTimer(p.hold, now),
			Counters:          p.counters,
		})
	}
	return st
}

// Aged returns st as it would have been exported d later: every running
// timer advanced by d. A standby that knows how old its checkpoint is
// (the checkpoint's write time on a shared clock) restores st.Aged(age),
// so the restored bridge's timers expire when the active's would have.
func (st State) Aged(d time.Duration) State {
	age := func(t *TimerState) {
		if t.Active {
			t.Elapsed += d
		}
	}
	age(&st.HelloTimer)
	age(&st.TCNTimer)
	age(&st.TopologyChangeTimer)
	if st.TopologyChanges > 0 {
		st.SinceTopologyChange += d
	}
	st.Ports = append([]PortRecord(nil), st.Ports...)
	for i := range st.Ports {
		p := &st.Ports[i]
		age(&p.MessageAgeTimer)
		age(&p.ForwardDelayTimer)
		age(&p.HoldTimer)
	}
	return st
}

// ErrBadState reports a State that Restore cannot continue from.
var ErrBadState = errors.New("bad bridge state")

// Restore builds a bridge that continues from st: timers resume from their
// exported values, as if no time had passed since Export (add the
// checkpoint's age to the elapsed values first where it is known). It
// tells env the restored port states and ageing time, and sends nothing:
// the next hello or relayed BPDU goes out when the restored timers say.
func Restore(st State, clock Clock, env Env) (*Bridge, error) {
	if clock == nil || env == nil {
		return nil, errors.New("stp: restore: nil clock or env")
	}
	if err := st.check(); err != nil {
		return nil, fmt.Errorf("stp: restore %v: %w", st.ID, err)
	}
	now := clock.Now()
	b := &Bridge{
		changed:         make(chan struct{}),
		clock:           clock,
		env:             env,
		id:              st.ID,
		bridgeMaxAge:    st.BridgeMaxAge,
		bridgeHelloTime: st.BridgeHelloTime,
		bridgeFwdDelay:  st.BridgeForwardDelay,
		ageingTime:      st.AgeingTime,
		designatedRoot:  st.DesignatedRoot,
		rootPathCost:    st.RootPathCost,
		rootPort:        st.RootPort,
		maxAge:          st.MaxAge,
		helloTime:       st.HelloTime,
		forwardDelay:    st.ForwardDelay,
		tcDetected:      st.TopologyChangeDetected,
		tc:              st.TopologyChange,
		helloTimer:      importTimer(st.HelloTimer, now),
		tcnTimer:        importTimer(st.TCNTimer, now),
		tcTimer:         importTimer(st.TopologyChangeTimer, now),
		tcCount:         st.TopologyChanges,
		lastTC:          now.Add(-st.SinceTopologyChange),
		fdbErrors:       st.FDBErrors,
	}
	for _, pr := range st.Ports {
		p := &port{
			number:           pr.Number,
			name:             pr.Name,
			id:               pr.ID,
			state:            pr.State,
			pathCost:         pr.PathCost,
			designatedRoot:   pr.DesignatedRoot,
			designatedCost:   pr.DesignatedCost,
			designatedBridge: pr.DesignatedBridge,
			designatedPort:   pr.DesignatedPort,
			tcAck:            pr.TopologyChangeAck,
			configPending:    pr.ConfigPending,
			messageAge:       importTimer(pr.MessageAgeTimer, now),
			fwdDelay:         importTimer(pr.ForwardDelayTimer, now),
			hold:             importTimer(pr.HoldTimer, now),
			counters:         pr.Counters,
		}
		b.ports = append(b.ports, p)
	}
	slices.SortFunc(b.ports, func(x, y *port) int { return int(x.number) - int(y.number) })
	b.resync()
	return b, nil
}

// check validates what Restore relies on, so that a corrupt checkpoint
// gives an error rather than a bridge that misbehaves.
func (st *State) check() error {
	if st.Version != StateVersion {
		return fmt.Errorf("%w: version %d, want %d", ErrBadState, st.Version, StateVersion)
	}
	if err := CheckTimers(st.BridgeMaxAge, st.BridgeHelloTime, st.BridgeForwardDelay); err != nil {
		return fmt.Errorf("%w: %w", ErrBadState, err)
	}
	if st.AgeingTime <= 0 {
		return fmt.Errorf("%w: ageing time %v", ErrBadState, st.AgeingTime)
	}
	if st.MaxAge <= 0 || st.HelloTime < 0 || st.ForwardDelay < 0 {
		return fmt.Errorf("%w: timers max age %v, hello %v, forward delay %v", ErrBadState, st.MaxAge, st.HelloTime, st.ForwardDelay)
	}
	seen := map[uint16]bool{}
	rootFound := st.RootPort == 0
	for _, p := range st.Ports {
		if p.Number == 0 || p.Number > MaxPortNumber || seen[p.Number] || p.ID.Number() != p.Number {
			return fmt.Errorf("%w: port %d (id %v) invalid or repeated", ErrBadState, p.Number, p.ID)
		}
		seen[p.Number] = true
		if p.State < Disabled || p.State > Forwarding {
			return fmt.Errorf("%w: port %d: state %v", ErrBadState, p.Number, p.State)
		}
		if p.Number == st.RootPort {
			rootFound = p.State != Disabled
		}
	}
	if !rootFound {
		return fmt.Errorf("%w: root port %d missing or disabled", ErrBadState, st.RootPort)
	}
	if (st.RootPort == 0) != (st.DesignatedRoot == st.ID) {
		return fmt.Errorf("%w: root port %d with designated root %v, bridge %v", ErrBadState, st.RootPort, st.DesignatedRoot, st.ID)
	}
	return nil
}
