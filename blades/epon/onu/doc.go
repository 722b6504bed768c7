// Package onu is the ONU side of an EPON: the MPCP state machine of an
// optical network unit (wait for a discovery GATE, random back-off inside
// the discovery window and binary exponential back-off across windows
// after a collision, REGISTER_REQ, REGISTER, REGISTER_ACK, REPORTs from
// its upstream queue, upstream bursts only inside its grants), its OAM
// responder (passive discovery to "send any", keep-alives, variable
// requests, remote loopback, link events, dying gasp), numbered test traffic so loss is
// countable, and an emulator that runs up to 32 ONUs over a ponlink
// unix-datagram socket on the real clock with per-ONU distances.
//
// An ONU reads time only from its injected Clock (its free-running
// oscillator in 16 ns quanta) and learns its MPCP local time from the
// OLT's timestamps, so the same code runs in virtual-time tests
// (blades/epon/onu/vpon) and in the emulator:
//
//	o, err := onu.New(onu.Config{MAC: mac}, clock, tx)
//	o.PowerOn()
//	// for each downstream frame:
//	o.Receive(llid, mode, frame, clock.Now())
//	// whenever the clock reaches the time Tick last returned:
//	next := o.Tick()
//	o.Enqueue(frame) // upstream traffic, sent in the ONU's grants
//
// Each upstream window carries the queued frames that fit, control
// (OAM) frames first, and ends with a REPORT: one queue set with the
// whole queue or, with Config.Threshold, first the whole frames up to the
// threshold and then the whole queue. Lengths are in quanta of line time
// including each frame's FCS, preamble and inter-packet gap, as the DBA
// (blades/epon/dba) counts them.
//
// The Emulator's ONUs can offer numbered test traffic at a set rate
// (Emulator.SetTraffic, counters in Emulator.Traffic); the OLT counts the
// frames and the gaps in their numbering per ONU. Each emulated ONU's
// upstream frames leave in the order it sent them.
package onu
