// Package stp is the switch blade's 802.1D spanning tree: the BPDU codec
// and the classic STP state machines (802.1D-1998 clause 8, the algorithm
// the Linux kernel bridge runs with stp_state 1), as pure code on an
// injected clock. It does no I/O: the blade's netstack shell moves frames
// and port states between it and the Linux bridge.
//
// # Codec
//
// MarshalFrame and ParseFrame carry a BPDU in an 802.3 frame to the Bridge
// Group Address 01:80:C2:00:00:00 (the length field, not an EtherType,
// follows the addresses) behind the LLC header 42-42-03; MarshalLLC and
// ParseLLC do the part after the Ethernet header. Configuration and TCN
// BPDUs are decoded per 802.1D-2004 9.3.4 (trailing octets ignored, a
// configuration BPDU whose message age is not below its max age is
// invalid). RST and MST BPDUs (type 0x02) are recognised and returned as
// TypeRST with their common fields, never as configuration BPDUs; the
// Bridge counts and ignores them, which is how an RSTP neighbour learns to
// fall back to STP. Identifiers are BridgeID (16-bit priority field, i.e.
// 4-bit priority and 12-bit system ID extension, then the MAC; compare
// with <) and PortID (4-bit priority, 12-bit number); timers travel as
// Time in 1/256 s. Decoding errors match ErrTruncated, ErrNotBPDU,
// ErrBadLLC, ErrBadProtocol, ErrUnknownType, ErrMessageAge with errors.Is.
//
// # Bridge
//
// A Bridge holds every variable and timer of 802.1D: the priority vector
// comparisons (root, root path cost, designated bridge, designated port,
// port), root and designated port selection, the port states disabled,
// blocking, listening, learning and forwarding, the hello, message age,
// forward delay, hold, TCN and topology change timers, TCN propagation
// toward the root with acknowledgement, and the Topology Change flag,
// during which filtering entries age in Forward Delay instead of the
// ageing time (for Max Age + Forward Delay after the root hears of it).
// Roles (root, designated, alternate, backup, disabled) are derived from
// those variables for display. Path costs default to 802.1D-2004's table
// (DefaultPathCost); note that the Linux kernel bridge uses the 1998 costs.
//
// Where the 1998 text leaves room, these choices were made: relayed
// information ages by the time it waited plus 1/256 s per hop (as the
// Linux bridge does), so it grows even over links that take no time; a
// configuration BPDU carrying this bridge's own identifier and the
// receiving port's identifier is discarded (802.1D-2004 9.3.4); a port
// priority change re-runs root and designated port selection at once
// rather than at the next BPDU; a port that leaves learning or forwarding
// has its filtering entries flushed (the kernel bridge does this on
// disable); a disabled port does not by itself signal a topology change
// (8.8.3), the ports that take over do when they reach forwarding.
//
// The Bridge talks to the world through two small interfaces:
//
//   - Clock: Now. The Bridge never reads the system clock.
//   - Env: SendBPDU(port, bpdu), SetPortState(port, state),
//     FlushFDB(port) when a port stops learning, SetAgeingTime(d).
//
// and is driven by calls: Receive (a raw frame) or ReceiveBPDU from the
// port sockets, EnablePort/DisablePort on link changes, the management
// setters (SetBridgePriority, SetPortPriority, SetPortPathCost,
// SetTimers, SetAgeingTime), and Tick, which fires the timers that are due.
// NextDeadline says when the next one is, so a shell can sleep exactly
// and a simulator can jump virtual time. A Bridge is safe for concurrent
// use; Env is called with its lock held and must not call back.
//
// How the switch blade uses it (a sketch; the shell lives in netstack):
//
//	b, err := stp.New(stp.Config{ID: id}, wallClock{}, shell) // shell implements Env
//	b.AddPort(stp.PortConfig{Number: 1, Name: "isl0", Priority: stp.DefaultPortPriority,
//		PathCost: stp.DefaultPathCost(speed)})
//	b.EnablePort(1) // on carrier up; DisablePort on carrier down
//	// per port: for frame := range rx { b.Receive(1, frame) }
//	// timers:   for { sleep until b.NextDeadline(); b.Tick() }
//	// console:  s := b.Snapshot(); render s / s.Ports (JSON tags included)
//
// # Checkpoints and 1:1 protection
//
// Export returns a State: the whole bridge and port state as plain data
// (JSON-ready), timers as elapsed values so the blades' clocks need not
// agree. The active blade checkpoints it synchronously whenever
// Generation moves (a port state, root, root port, held information or
// the TC flag changed) and asynchronously every hello time for the timer
// values. On failover the standby calls Restore(st.Aged(age), clock, env)
// (age: how old the checkpoint is, where known); the restored Bridge pushes
// the port states and ageing time to env and then continues the same
// bridge: same identifier, roles, states, stored information and timers,
// so hellos, relays and timeouts happen when they would have and the
// network sees no topology change. Snapshot gives what `show stp`,
// `show stp ports` and BRIDGE-MIB's dot1dStp objects need.
//
// # Tests
//
// The tests run networks of bridges joined by simulated point-to-point
// links and shared LANs on virtual time (rings, meshes, random graphs,
// changing priorities and costs, cable cuts, silent failures, root
// failure), check after every event that no forwarding loop exists, and
// compare the converged tree with one computed independently from the
// topology by 802.1D's rules, within the 802.1D timer bounds. Restore is
// tested by swapping bridges for restored copies mid-convergence and
// requiring the run to be identical to an undisturbed one. Frames are
// cross-checked with tshark's STP dissector.
package stp
