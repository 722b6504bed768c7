// Package hamib serves CGOA-HA-MIB (snmpagent/mibs/CGOA-HA-MIB.txt, in
// the placeholder enterprise arc 1.3.6.1.4.1.99999 that the agent's
// sysObjectID uses): membership and quorum, the service group and
// service unit tables with HA, admin and operational states, the last
// failover, and the HA transport's frame counters (what each base path
// carried, what was dropped as forged, replayed or malformed, and
// authenticated payloads the HA core could not decode), from the HA
// core's Status. It also builds the varbinds
// of the module's notifications (cgoaHaStateChange, cgoaHaFailover,
// cgoaHaQuorumChange) from HA events, for package traps.
//
// Use:
//
//	h := hamib.New(blade) // *ha.Blade is a Source
//	blade.Events().Subscribe(h.Observe)
//	h.Register(agent)
//
// Group and unit indexes are positions in the shelf's HA configuration,
// identical on every blade, so they survive a failover of the management
// blade without any exported state. cgoaHaLastFailoverTime is the
// sysUpTime at which this module learnt of the failover: from the HA
// event (Observe) when subscribed, else the first request that saw it.
package hamib
