// Package oam is a codec for IEEE 802.3ah Ethernet OAM (clause 57): the
// OAMPDUs an EPON OLT and its ONUs exchange on the Slow Protocols
// EtherType 0x8809, subtype 0x03.
//
// A PDU is a whole Ethernet frame: addresses, the OAM Flags (link fault,
// dying gasp, critical event, local/remote evaluating and stable) and one
// Payload: *Information (Local/Remote Information TLVs), *EventNotification
// (sequence number and link event TLVs), *VariableRequest (variable
// descriptors), *VariableResponse (variable containers), *LoopbackControl
// or *OrganizationSpecific (passed through as OUI and bytes).
//
//	p := &oam.PDU{
//		Destination: oam.SlowProtocolsAddr,
//		Source:      onuMAC,
//		Flags:       oam.FlagDyingGasp | oam.FlagLocalStable | oam.FlagRemoteStable,
//		Payload:     &oam.Information{Local: &local, Remote: &remote},
//	}
//	b, err := p.MarshalBinary()
//
// UnmarshalBinary returns errors wrapping ErrTruncated, ErrNotOAM,
// ErrUnknownCode, ErrBadLength, ErrBadValue or ErrTooLong; it never
// panics on any input (fuzzed). The codec does no I/O; the OAM discovery
// state machine lives with the OLT in blades/epon.
package oam
