// Package ponlink is the encapsulation an emulated EPON PON link uses to
// carry the logical link ID (LLID) that real EPON carries in the preamble.
//
// The emulated PON is a unix-datagram link (QEMU's -netdev dgram on the
// blade side, the host ONU emulator on the other): one datagram is one
// Ethernet frame (no FCS) behind a 12-byte header:
//
//	offset size field
//	0      2    magic 0x50 0x4c ("PL")
//	2      1    version, 1
//	3      1    flags: bit 0 (0x01) T, the timestamp field is valid;
//	            the other bits are zero
//	4      2    mode bit (bit 15) and LLID (bits 14..0), big-endian:
//	            the same 16 bits as octets 6-7 of the 802.3 clause 65
//	            EPON preamble
//	6      2    reserved, zero
//	8      4    timestamp, big-endian, in 16 ns time quanta: the sender's
//	            MPCP local time when the frame's first bit left it
//	            (valid only with T)
//	12     n    the Ethernet frame, destination address first, at least
//	            14 bytes, at most MaxFrame
//
// Mode 1 with LLID 0x7fff is the downstream broadcast (single-copy
// broadcast) channel, which carries discovery GATEs; unregistered ONUs
// send upstream on LLID 0x7fff with mode 0. The timestamp lets a receiver
// see when a sender put a frame on the emulated fibre without relying on
// socket latency (the ONU emulator stamps its upstream bursts so the OLT
// can check them against its grants); receivers that do not need it
// ignore it.
//
// Frames that do not start with the magic (a guest kernel's own IPv6
// neighbour discovery on the PON NIC, say) fail to decode with ErrMagic,
// so a receiver drops and counts them. Inside a QEMU guest the PON NIC is
// put in promiscuous mode and read and written through a raw packet socket
// (ETH_P_ALL): the NIC sees the header's first 6 bytes as a destination
// address.
//
//	b, err := (&ponlink.Frame{LLID: 0x0101, Payload: eth}).MarshalBinary()
//	...
//	var f ponlink.Frame
//	if err := f.UnmarshalBinary(datagram); err != nil { count and drop }
//	handle(f.LLID, f.Payload)
//
// The codec does no I/O; Conn is a thin unixgram socket shell around it.
package ponlink
