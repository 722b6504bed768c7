// Package olt is the OLT control of one EPON PON port (IEEE 802.3ah
// clauses 64 and 57): discovery windows, registration and LLID
// assignment, ranging, the GATE/REPORT polling loop under a DBA from
// blades/epon/dba (the same code the simulator runs), MPCP timeout and
// re-registration, OAM discovery per ONU with link events and dying gasp
// raised as alarms, per-ONU SLAs, and the statistics DOT3-EPON-MIB (RFC
// 4837) and DOT3-OAM-MIB (RFC 4878) need.
//
// The OLT reads time only from its Clock (16 ns time quanta) and talks to
// the PON only through a Port (send a frame on an LLID) and Receive (a
// frame with its LLID and arrival time), so the same code runs in
// virtual-time tests (blades/epon/onu/vpon), in the cpu.6x32 benchmark
// and on the blade against the ONU emulator over a ponlink socket:
//
//	o, err := olt.New(olt.Config{Name: "pon0", MAC: mac}, clock, port)
//	o.OnAlarm = func(a olt.Alarm) { ... }
//	o.OnData = func(llid uint16, frame []byte, at int64) { ... }
//	// for each upstream frame:
//	o.Receive(llid, frame, clock.Now())
//	// whenever the clock reaches the time Tick last returned, and after
//	// each Receive:
//	next := o.Tick()
//	// console: o.ShowPON(), o.ShowONUs(), o.Deregister("0x3"), o.SetSLA(mac, sla)
//	// OAM: o.RequestVariables(llid, descriptors), o.SetLoopback(llid, true)
//
// How it runs the protocol:
//
//   - Every DiscoveryPeriod, while an LLID is free, it reserves a stretch
//     of the upstream channel (dba.Poller.Reserve: the discovery window
//     plus the longest round trip) and broadcasts a discovery GATE. ONUs
//     answer at random offsets; REGISTER_REQs that collide are lost and
//     the ONUs back off (blades/epon/onu).
//   - A REGISTER_REQ gives the round trip (its arrival less its
//     timestamp, 802.3 64.2.2.4) and gets a REGISTER with the LLID
//     (kept across registrations while free) and a GATE for the
//     REGISTER_ACK. Every REPORT measures the round trip again.
//   - Each REPORT is handed to the Poller, whose window becomes the next
//     GATE (start = window start at the OLT less the round trip, force
//     report). An ONU that reports an empty queue is polled again after
//     IdlePoll; one whose REPORT does not come is granted again after
//     RepollAfter; one without a REPORT for MPCPTimeout (1 s) is
//     deregistered (REGISTER with the deregister flag) and may register
//     again in a later discovery window.
//   - After registration the OLT runs OAM discovery as the active end
//     (Information exchange to "send any"), then keep-alives every second;
//     5 s without an OAMPDU is a lost OAM link. Dying gasp, link fault and
//     critical event flags and Event Notifications (duplicates by sequence
//     number dropped) become Alarms. SetLoopback sends Loopback Control;
//     the ONU's Information (its State field) confirms it.
//   - Upstream data frames are counted per ONU; numbered test frames
//     (blades/epon/onu.NumberedFrame) also by sequence, so rx_data_lost
//     in show onu counts the frames lost on the way.
//   - SLAs (guaranteed and peak rate, by MAC, before or after
//     registration) go to the DBA when it supports them (CGOA); empty
//     LLID slots keep their default share as excess for the loaded ONUs
//     and give it up when an SLA needs it.
package olt
