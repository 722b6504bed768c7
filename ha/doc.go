// Package ha is the HA core of a CGOA blade (the SA Forum AIS idea): it
// keeps the shelf's services up through blade failures and never lets two
// units of a protected group be active at once.
//
// Subpackages, each usable and tested alone:
//
//   - transport: authenticated frames over both base paths (UDP, or an
//     in-memory backplane with fault injection for simulation);
//   - clm: membership (heartbeats, view, incarnations, failure detection);
//   - quorum: the quorum rule and the lease protocol (safety argument in
//     its package doc);
//   - amf: service groups, redundancy models, HA states, health checks,
//     escalation, admin operations, hot-swap; a pure state machine;
//   - evt: events; cfg: the shelf configuration replicated with raft;
//   - sim: the virtual-time loop the simulations run on;
//   - procmode, cmd/hanode: blades as processes in test-made network
//     namespaces (process-mode tests, the failover bench).
//
// This package runs an amf.Node on the real clock and a UDP transport.
// Wiring a blade:
//
//	b, err := ha.Start(ha.Options{Config: cfg, Slot: slot, Key: key,
//		Paths: []transport.UDPPath{base0, base1}})
//	b.Register(amf.Component{Name: "mgmt-addr", Unit: "mgmt-3",
//		Assign: func(a amf.Assignment) { /* Active: add address, send GARP; else: remove */ },
//		Health: checkSNMP})
//	if b.Active("mgmt", "") { answerProbe() }
//	ha.WriteStatus(os.Stdout, b.Status())   // show ha (json: encoding/json)
//	b.Switchover("mgmt"); b.Lock("mgmt-3"); b.Unlock("mgmt-3")
//	b.HandleOpen(func(ok bool) { releaseBlade() })
//	defer b.Close(ctx)
//
// Timing: the lease and the failure detection time are both
// Timers.Interval × Timers.Misses (10 ms × 3 in process mode; use e.g.
// 50 ms × 4 under TCG). A killed active is replaced within one lease plus
// network delay; a cut-off active stops within one lease by itself.
// Roles must gate externally visible actions on Blade.Active, which checks
// the lease against the clock at that moment (an Assign callback can be
// late if the process was stopped). Active does not wait for the HA loop:
// it reads a view of the blade's lease ends (amf.Node.ActiveUntil) that
// the engine republishes whenever one moves, and before any frame that
// gives a lease up (Env.Released, the assignment event), so the view
// never claims a lease the engine no longer holds; a responder keeps
// answering while the loop is busy with a takeover. The HA loop should
// run at real-time priority on a loaded blade: a blade starved for longer
// than the detection time is suspected (safely: it loses its lease,
// nothing more).
package ha
