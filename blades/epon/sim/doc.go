// Package sim is a discrete-event simulator of an EPON upstream channel on
// virtual time: N ONUs at given distances, each fed by self-similar
// traffic (the aggregate of Pareto ON/OFF packet trains, shape 1.4 for
// Hurst 0.8, trimodal 64/594/1518-byte frames), polled by the OLT through
// blades/epon/dba's Poller and Algorithm, the same code the blade runs.
//
// Each ONU queues frames in FIFO order, sends whole frames only inside its
// windows, and ends every window with a REPORT of its queue (plus a
// frame-aligned queue set up to MaxWindow) that reaches the OLT at the
// window's end; guard times, the REPORT and per-frame preamble and
// inter-packet gap all take line time. Run returns, per load point, the
// mean and 99th-percentile queueing delay (arrival at the ONU to start of
// upstream transmission), throughput, utilisation (the fraction of the
// granted data time, i.e. what guard times and MPCP overhead leave, that
// carried frames), and Jain's fairness index.
//
//	r, err := sim.Run(sim.Config{ONUs: 16, LineRate: 1e9, Load: 0.9, DBA: "cgoa",
//		MaxCycle: 2 * time.Millisecond, MaxWindow: 15000, Guard: time.Microsecond,
//		Duration: 2 * time.Second, Warmup: 200 * time.Millisecond, Seed: 1})
//
// Runs are deterministic per Seed. The command blades/epon/cmd/dbasim
// sweeps loads and algorithms.
package sim
