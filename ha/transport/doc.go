// Package transport carries the HA core's frames between the members of a
// shelf over both base paths (base0 through hub slot 1, base1 through hub
// slot 2), so that losing one hub never looks like losing a blade.
//
// Every frame carries a version, the shelf id, the sender's slot, the
// sender's epoch (incarnation, larger on every start) and a per-epoch
// sequence number, and is authenticated with the shelf key
// (HMAC-SHA256 truncated to 16 bytes). The same sealed bytes go out on both
// paths; the receiver keeps the first copy. Frames that are forged,
// truncated, garbled, replayed (sequence outside a 64-frame window per
// sender and epoch, or from an older epoch), for another shelf or another
// slot are dropped and counted in Counters, never delivered.
//
// The codec (Seal, Open) and the Endpoint (sequence numbers, replay
// windows, counters) do no I/O. Two transports move the bytes:
//
//   - UDPTransport: one UDP socket per path, bound to the path's interface
//     with SO_BINDTODEVICE, each frame sent once to the path's broadcast
//     address (or fanned out to the configured peers). A classic BPF
//     socket filter drops the sender's own looped-back frames and frames
//     for another single slot in the kernel, before any wake-up.
//   - MemNetwork/MemTransport: an in-memory backplane on a virtual-time
//     Scheduler with fault injection (loss, delay, partitions, one-way
//     loss, a path down, a paused member, a detached member), for
//     deterministic simulation.
//
// Usage:
//
//	ep, err := transport.NewEndpoint(key, shelf, slot, uint64(time.Now().UnixNano()))
//	tr, err := transport.ListenUDP(ep, []transport.UDPPath{base0, base1}, handle)
//	err = tr.Send(transport.TypeBeat, transport.Broadcast, payload)
//	fmt.Printf("%+v\n", ep.Counters())
package transport
