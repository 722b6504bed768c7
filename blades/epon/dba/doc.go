// Package dba is the EPON upstream dynamic bandwidth allocation: the IPACT
// interleaved polling scheduler (Poller) and the window-sizing algorithms
// behind one interface (Algorithm): IPACT fixed, gated and limited service
// (Kramer, Mukherjee, Pesavento 2002) as baselines and CGOA, the project's
// DBA (limited service with SLA guarantees and redistribution of the excess
// lightly loaded ONUs leave).
//
// Time is in 16 ns quanta and sizes in bytes of line time (frames with
// their preamble and inter-packet gap), as the REPORT and GATE MPCPDUs
// count them; guard times and the REPORT each window carries are accounted
// in every window. Nothing here reads a clock: the OLT passes the time in
// each Report, so the same code runs on the blade (on its injected clock)
// and in the simulator (on virtual time).
//
//	cfg := dba.Config{ONUs: 16, LineRate: 1e9, Guard: 62, MaxCycle: 125000, MaxWindow: 15000}
//	alg, err := dba.New("cgoa", cfg)
//	p := dba.NewPoller(cfg, alg)
//	// on each REPORT from ONU i arriving at OLT time now:
//	w := p.Next(dba.Report{ONU: i, Now: now, Queued: q, Received: got, Granted: last}, rtt[i])
//	// send GATE{Start: w.Start - rtt[i], Length: w.Length}
//	// (an OLT first asks p.NotBefore(report, rtt[i]): an ONU at its SLA
//	// peak rate is polled when its token bucket lets it send again)
package dba
