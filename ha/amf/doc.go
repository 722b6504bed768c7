// Package amf is the availability management framework of the HA core:
// service groups of service units with the redundancy models 2N, N+M,
// N-way-active and no-redundancy, HA states (active, standby, quiescing,
// quiesced), component health checks with escalation (restart the
// component, fail the unit over, fail the node over), admin operations
// (switchover, lock, unlock, repair) and graceful extraction on an ATCA
// hot-swap handle opening.
//
// # How assignments are decided
//
// Every exclusive assignment (a 2N group as a whole; one instance of an
// N+M or no-redundancy group) is a lease key of package quorum. A node
// asks the voters (every configured slot) for the key when its unit is in
// service and no live member announces holding it; the voters grant the
// key to the first unit in the group's succession order among those
// asking that is two-way connected and in the quorum partition, renew a
// current holder, and otherwise keep each promise for one lease. A unit is
// Active exactly while its node holds the key (Node.Active checks the
// lease against the clock at the moment of asking), so the safety argument
// of package quorum is the safety argument of the AMF: two units of a
// group are never both active, and a minority steps down within one lease
// (= detection time, Interval × Misses) by itself. Each node also holds a
// lease on its own "node/<slot>" key: holding it means being in the quorum
// partition, which is what N-way-active units need to be active.
//
// Failover needs no election: when the active's node dies or is cut off,
// the voters' promises run out within one lease and the standby, which has
// been asking since it saw the holder go, gets the key the moment the last
// needed promise ends; in simulation a kill is restored within one lease
// (TestFailoverOnKill), any fault mix once healed within 2·Lease +
// 4·Interval (TestSimulationSeeds). The replicated shelf configuration
// (package cfg, raft) is not on this path.
//
// Fencing by carrier (Config.Hubs, fence.go) shortens the common case: a
// blade pulled, powered off or cut at every channel is seen at once by the
// PHYs at the far ends of its channels. Each member reports the channels
// without carrier (SetLinks, a TypeLinks frame); when the far end of every
// channel of a blade reports it, the members fail it in their view and the
// voters end their promises to it (quorum.Lessor.Revoke), so its standby
// takes over in one request round trip (TestFenceOnPull). The blade itself,
// without carrier on any channel, gives its leases up at the same event
// (TestIsolatedGivesUp). A hung blade keeps its carrier: it is found by its
// missing heartbeats, within one lease as above.
//
// On the wire a member sends one beat frame per heartbeat interval: its
// heartbeat (the members it hears, the keys it holds, its units' states)
// with its lease requests and releases and, as a voter, the renewals it
// grants, batched. Only what cannot wait goes in a frame of its own: a
// grant that moves a key, a refusal, a release on handover, admin
// operations. While a member of the generation before beats is up (a
// rolling upgrade), the others also send it the old separate frames.
//
// A switchover, asked on any member, names the units it switches away
// from: those its member sees active at that moment. The request reaches
// the members at different instants; a unit that became active since (the
// standby, taking the group the old active released on the same request)
// keeps it, instead of handing it back when its copy arrives late
// (TestSwitchoverLateFrame). A member older than the field is sent the
// bare request. A frame whose payload does not decode is dropped and
// counted (Status.BadPayloads).
//
// Standby is derived, not leased: a 2N unit is standby when it is the
// first ready unit after the active in the succession order; in N+M every
// in-service unit without an instance is standby; no-redundancy has none.
//
// # Use
//
//	n, err := amf.NewNode(cfg, slot, epoch, clock(), amf.Env{Send: tr.Send, Publish: bus.Publish})
//	n.Register(amf.Component{Name: "addr", Unit: "mgmt-3", Assign: moveAddress, Health: probe})
//	// on every received frame:   n.Receive(clock(), frame)
//	// at n.NextDeadline(clock()): n.Tick(clock())
//	n.Switchover(clock(), "mgmt")
//
// Node is a pure state machine (no goroutines, no clock reads); package ha
// runs it on a real clock and UDP, the tests run it on virtual time.
package amf
