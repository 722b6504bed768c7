// Package farend is the host side of the shelf's outside channels: the far
// end of each hub's uplink0 (a sink that counts what the shelf sends and can
// send traffic into it; a Prober on it plays a core-network host probing the
// management address) and of each EPON PON port (an ONU emulator: the ONUs
// of that PON with their MPCP and OAM state machines, in ponlink framing).
//
// Both speak QEMU's -netdev dgram framing over unix sockets: one datagram is
// one Ethernet frame, no header (on a PON, the frame carries the ponlink
// header that stands for the EPON preamble). An Endpoint binds its own socket path and
// sends to the blade's socket path; the blade's QEMU does the reverse.
//
//	up, err := farend.Listen("uplink-s1", dir+"/host-uplink-s1.sock", dir+"/s1-uplink0.sock", nil)
//	defer up.Close()
//	up.Send(frame)            // into the shelf
//	c := up.Counters()        // what came out of it
//
// SetUp(false) models a dead far end: it stops sending and drops (and
// counts) what it receives, as when the blade it faces is pulled.
package farend
