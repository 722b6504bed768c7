package stp

import "time"

// Snapshot is a consistent view of a bridge for the console (`show stp`,
// `show stp ports`) and for BRIDGE-MIB (RFC 4188 dot1dStp*). Durations are
// exact; BRIDGE-MIB wants them in hundredths of a second.
type Snapshot struct {
	ID       BridgeID `json:"bridge_id"` // dot1dBaseBridgeAddress + dot1dStpPriority
	Priority uint16   `json:"priority"`  // dot1dStpPriority
	// Root is the designated root (dot1dStpDesignatedRoot).
	Root         BridgeID `json:"root_id"`
	IsRoot       bool     `json:"is_root"`
	RootPort     uint16   `json:"root_port"` // dot1dStpRootPort; 0 when root
	RootPortName string   `json:"root_port_name,omitempty"`
	RootPathCost uint32   `json:"root_cost"` // dot1dStpRootCost

	// Values in use, learnt from the root (dot1dStpMaxAge, ...HelloTime,
	// ...ForwardDelay).
	MaxAge       time.Duration `json:"max_age"`
	HelloTime    time.Duration `json:"hello_time"`
	ForwardDelay time.Duration `json:"forward_delay"`
	HoldTime     time.Duration `json:"hold_time"` // dot1dStpHoldTime
	// Values this bridge uses when it is root (dot1dStpBridgeMaxAge, ...).
	BridgeMaxAge       time.Duration `json:"bridge_max_age"`
	BridgeHelloTime    time.Duration `json:"bridge_hello_time"`
	BridgeForwardDelay time.Duration `json:"bridge_forward_delay"`
	AgeingTime         time.Duration `json:"ageing_time"`   // configured (dot1dTpAgingTime)
	AgeingInUse        time.Duration `json:"ageing_in_use"` // forward delay during a topology change

	TopologyChange         bool   `json:"topology_change"`
	TopologyChangeDetected bool   `json:"topology_change_detected"`
	TopologyChanges        uint64 `json:"topology_changes"` // dot1dStpTopChanges
	// SinceTopologyChange is dot1dStpTimeSinceTopologyChange; zero
	// until the first change (check TopologyChanges).
	SinceTopologyChange time.Duration `json:"since_topology_change"`
	FDBErrors           uint64        `json:"fdb_errors"`

	Ports []PortSnapshot `json:"ports"`
}

// PortSnapshot is one port's row (dot1dStpPortTable).
type PortSnapshot struct {
	Number   uint16    `json:"number"` // dot1dStpPort
	Name     string    `json:"name"`
	ID       PortID    `json:"id"`
	Priority uint8     `json:"priority"` // dot1dStpPortPriority
	Enabled  bool      `json:"enabled"`  // dot1dStpPortEnable
	Role     PortRole  `json:"role"`
	State    PortState `json:"state"`     // dot1dStpPortState
	PathCost uint32    `json:"path_cost"` // dot1dStpPortPathCost32

	DesignatedRoot   BridgeID `json:"designated_root"`   // dot1dStpPortDesignatedRoot
	DesignatedCost   uint32   `json:"designated_cost"`   // dot1dStpPortDesignatedCost
	DesignatedBridge BridgeID `json:"designated_bridge"` // dot1dStpPortDesignatedBridge
	DesignatedPort   PortID   `json:"designated_port"`   // dot1dStpPortDesignatedPort

	// MessageAge is the age of the information held (running message
	// age timer); zero on designated ports, which hold their own.
	MessageAge time.Duration `json:"message_age"`
	// ForwardDelayTimer is how long the port has been listening or learning.
	ForwardDelayTimer time.Duration `json:"forward_delay_timer"`

	PortCounters // ForwardTransitions is dot1dStpPortForwardTransitions
}

// Snapshot returns the bridge's current view.
func (b *Bridge) Snapshot() Snapshot {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock.Now()
	s := Snapshot{
		ID:                     b.id,
		Priority:               b.id.PriorityField(),
		Root:                   b.designatedRoot,
		IsRoot:                 b.isRoot(),
		RootPort:               b.rootPort,
		RootPathCost:           b.rootPathCost,
		MaxAge:                 b.maxAge,
		HelloTime:              b.helloTime,
		ForwardDelay:           b.forwardDelay,
		HoldTime:               HoldTime,
		BridgeMaxAge:           b.bridgeMaxAge,
		BridgeHelloTime:        b.bridgeHelloTime,
		BridgeForwardDelay:     b.bridgeFwdDelay,
		AgeingTime:             b.ageingTime,
		AgeingInUse:            b.appliedAgeing,
		TopologyChange:         b.tc,
		TopologyChangeDetected: b.tcDetected,
		TopologyChanges:        b.tcCount,
		FDBErrors:              b.fdbErrors,
	}
	if b.tcCount > 0 {
		s.SinceTopologyChange = now.Sub(b.lastTC)
	}
	for _, p := range b.ports {
		ps := PortSnapshot{
			Number:           p.number,
			Name:             p.name,
			ID:               p.id,
			Priority:         p.id.Priority(),
			Enabled:          p.state != Disabled,
			Role:             b.role(p),
			State:            p.state,
			PathCost:         p.pathCost,
			DesignatedRoot:   p.designatedRoot,
			DesignatedCost:   p.designatedCost,
			DesignatedBridge: p.designatedBridge,
			DesignatedPort:   p.designatedPort,
			PortCounters:     p.counters,
		}
		if p.messageAge.active {
			ps.MessageAge = now.Sub(p.messageAge.start)
		}
		if p.fwdDelay.active {
			ps.ForwardDelayTimer = now.Sub(p.fwdDelay.start)
		}
		if p.number == b.rootPort {
			s.RootPortName = p.name
		}
		s.Ports = append(s.Ports, ps)
	}
	return s
}

// Port returns the snapshot row of port n.
func (s Snapshot) Port(n uint16) (PortSnapshot, bool) {
	for _, p := range s.Ports {
		if p.Number == n {
			return p, true
		}
	}
	return PortSnapshot{}, false
}

func (b *Bridge) role(p *port) PortRole {
	switch {
	case p.state == Disabled:
		return RoleDisabled
	case p.number == b.rootPort:
		return RoleRoot
	case b.isDesignatedPort(p):
		return RoleDesignated
	case p.designatedBridge == b.id:
		return RoleBackup
	}
	return RoleAlternate
}

// Resync tells the environment every port's state and the ageing time
// again, e.g. after the shell reopened its netlink socket or when a
// standby becomes active.
func (b *Bridge) Resync() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.resync()
}

func (b *Bridge) resync() {
	for _, p := range b.ports {
		b.setState(p, p.state, true)
	}
	b.appliedAgeing = 0
	b.applyAgeing()
}
