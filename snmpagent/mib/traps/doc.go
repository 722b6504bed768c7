// Package traps turns what happens on the shelf into SNMP notifications
// through the agent's notifier: coldStart/warmStart (SNMPv2-MIB) when the
// agent starts or takes over, linkDown/linkUp (IF-MIB) from ifmib's link
// changes, cgoaHaStateChange, cgoaHaFailover and cgoaHaQuorumChange
// (CGOA-HA-MIB) from the HA event bus, and newRoot/topologyChange
// (BRIDGE-MIB) from successive STP snapshots.
//
// Inputs never block: events are queued (a full queue drops and counts)
// and Run sends them in order on its own goroutine, so HAEvent can be
// subscribed to the HA event bus, whose subscribers run on the HA loop.
//
// Use:
//
//	m := traps.New(agent, traps.Options{HA: haMIB})
//	go m.Run(ctx)
//	blade.Events().Subscribe(m.HAEvent)
//	ifs.OnLinkChange(m.Link)
//	m.Started(tookOver) // warmStart after a failover, coldStart at boot
//	// and for every STP snapshot the switch blade publishes: m.Bridge(s)
package traps
