// Package mpcp is a codec for the IEEE 802.3ah Multi-Point Control Protocol
// (clause 64): the MAC Control frames (EtherType 0x8808) an EPON OLT and its
// ONUs exchange for discovery, registration, ranging and upstream grants.
//
// A Frame is a whole Ethernet frame: addresses, the 32-bit MPCP timestamp
// (in 16 ns time quanta) and one Message (*Gate, *Report, *RegisterReq,
// *Register or *RegisterAck). MarshalBinary pads to the 64-byte MPCPDU
// (60 bytes without the FCS, which the MAC adds); UnmarshalBinary reads
// such a frame and returns an error wrapping ErrTruncated, ErrUnknownOpcode,
// ErrNotMPCP or ErrBadLength for anything malformed.
//
//	f := &mpcp.Frame{
//		Destination: mpcp.MACControlAddr,
//		Source:      oltMAC,
//		Timestamp:   mpcp.Quanta(now),
//		Message: &mpcp.Gate{Grants: []mpcp.Grant{{Start: s, Length: l, ForceReport: true}}},
//	}
//	b, err := f.MarshalBinary()
//	...
//	var g mpcp.Frame
//	err = g.UnmarshalBinary(b)
//	gate, ok := g.Message.(*mpcp.Gate)
//
// The codec does no I/O and keeps no state; the state machines that use it
// live in blades/epon.
package mpcp
