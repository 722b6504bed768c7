package stp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/mdlayher/ethernet"
)

// Type is the BPDU Type octet.
type Type uint8

// BPDU types (802.1D-2004 9.3).
const (
	TypeConfig Type = 0x00 // Configuration BPDU
	TypeRST    Type = 0x02 // Rapid Spanning Tree (and MST) BPDU
	TypeTCN    Type = 0x80 // Topology Change Notification BPDU
)

func (t Type) String() string {
	switch t {
	case TypeConfig:
		return "config"
	case TypeRST:
		return "rst"
	case TypeTCN:
		return "tcn"
	}
	return fmt.Sprintf("type(0x%02x)", uint8(t))
}

// Flags is the BPDU Flags octet.
type Flags uint8

// Flag bits. Configuration BPDUs use only TC and TCA; RST BPDUs use the rest.
const (
	FlagTC         Flags = 0x01 // Topology Change
	FlagProposal   Flags = 0x02 // RST only
	FlagRoleMask   Flags = 0x0c // RST only: port role, 2 bits
	FlagLearning   Flags = 0x10 // RST only
	FlagForwarding Flags = 0x20 // RST only
	FlagAgreement  Flags = 0x40 // RST only
	FlagTCA        Flags = 0x80 // Topology Change Acknowledgment
)

// Protocol versions.
const (
	VersionSTP  = 0
	VersionRSTP = 2
	VersionMSTP = 3
)

// Octet lengths of the BPDU kinds (without LLC).
const (
	ConfigLen = 35
	TCNLen    = 4
	RSTLen    = 36
)

// LLC header values for the Bridge Spanning Tree Protocol (802.2 SAP 0x42, UI frame).
const (
	LLCSAP     = 0x42
	LLCControl = 0x03
	llcLen     = 3
)

// GroupAddress is the Bridge Group Address to which BPDUs are sent.
var GroupAddress = net.HardwareAddr{0x01, 0x80, 0xc2, 0x00, 0x00, 0x00}

// Decoding errors; match them with errors.Is.
var (
	ErrTruncated     = errors.New("truncated")
	ErrNotBPDU       = errors.New("not a BPDU frame")
	ErrBadLLC        = errors.New("bad LLC header")
	ErrBadProtocol   = errors.New("bad protocol identifier")
	ErrUnknownType   = errors.New("unknown BPDU type")
	ErrMessageAge    = errors.New("message age not below max age")
	ErrNotEncodable  = errors.New("not encodable")
	ErrBadLengthType = errors.New("bad 802.3 length field")
)

// BPDU is a decoded Bridge Protocol Data Unit. For TypeTCN only Version and
// Type are meaningful. For TypeRST the common fields are decoded (so a
// console can show who sent it) but an 802.1D-1998 bridge ignores them.
type BPDU struct {
	Version      uint8 // Protocol Version Identifier
	Type         Type
	Flags        Flags
	RootID       BridgeID
	RootPathCost uint32
	BridgeID     BridgeID
	PortID       PortID
	MessageAge   Time
	MaxAge       Time
	HelloTime    Time
	ForwardDelay Time
	// Version1Length is the RST BPDU's Version 1 Length octet (0 for RSTP).
	Version1Length uint8
}

// TC reports the Topology Change flag.
func (b *BPDU) TC() bool { return b.Flags&FlagTC != 0 }

// TCA reports the Topology Change Acknowledgment flag.
func (b *BPDU) TCA() bool { return b.Flags&FlagTCA != 0 }

// MarshalBinary encodes the BPDU without LLC header.
func (b *BPDU) MarshalBinary() ([]byte, error) {
	return b.AppendBinary(nil)
}

// AppendBinary appends the BPDU, without LLC header, to p.
func (b *BPDU) AppendBinary(p []byte) ([]byte, error) {
	switch b.Type {
	case TypeTCN:
		return append(p, 0, 0, b.Version, byte(TypeTCN)), nil
	case TypeConfig:
	case TypeRST:
		if b.Version != VersionRSTP {
			// MST BPDUs carry MSTI configuration this codec does not model.
			return nil, fmt.Errorf("stp: bpdu: %w: RST BPDU version %d", ErrNotEncodable, b.Version)
		}
	default:
		return nil, fmt.Errorf("stp: bpdu: %w: %v", ErrUnknownType, b.Type)
	}
	var f [RSTLen]byte
	f[2] = b.Version
	f[3] = byte(b.Type)
	f[4] = byte(b.Flags)
	binary.BigEndian.PutUint64(f[5:13], uint64(b.RootID))
	binary.BigEndian.PutUint32(f[13:17], b.RootPathCost)
	binary.BigEndian.PutUint64(f[17:25], uint64(b.BridgeID))
	binary.BigEndian.PutUint16(f[25:27], uint16(b.PortID))
	binary.BigEndian.PutUint16(f[27:29], uint16(b.MessageAge))
	binary.BigEndian.PutUint16(f[29:31], uint16(b.MaxAge))
	binary.BigEndian.PutUint16(f[31:33], uint16(b.HelloTime))
	binary.BigEndian.PutUint16(f[33:35], uint16(b.ForwardDelay))
	if b.Type == TypeRST {
		f[35] = b.Version1Length
		return append(p, f[:RSTLen]...), nil
	}
	return append(p, f[:ConfigLen]...), nil
}

// UnmarshalBinary decodes a BPDU (without LLC header) following the
// validation rules of 802.1D-2004 9.3.4: trailing octets are ignored, a
// configuration BPDU whose Message Age is not below its Max Age is invalid.
func (b *BPDU) UnmarshalBinary(p []byte) error {
	if len(p) < TCNLen {
		return fmt.Errorf("stp: bpdu: %w: %d octets, need at least %d", ErrTruncated, len(p), TCNLen)
	}
	if p[0] != 0 || p[1] != 0 {
		return fmt.Errorf("stp: bpdu: %w: 0x%02x%02x", ErrBadProtocol, p[0], p[1])
	}
	*b = BPDU{Version: p[2], Type: Type(p[3])}
	need := 0
	switch b.Type {
	case TypeTCN:
		return nil
	case TypeConfig:
		need = ConfigLen
	case TypeRST:
		// 802.1D-2004 9.3.4 c) and d): RSTP needs 36 octets; MSTP
		// (version 3 and up) is recognised from 35.
		need = RSTLen
		if b.Version >= VersionMSTP {
			need = ConfigLen
		}
	default:
		return fmt.Errorf("stp: bpdu: %w: 0x%02x", ErrUnknownType, p[3])
	}
	if len(p) < need {
		return fmt.Errorf("stp: bpdu: %v: %w: %d octets, need %d", b.Type, ErrTruncated, len(p), need)
	}
	b.Flags = Flags(p[4])
	b.RootID = BridgeID(binary.BigEndian.Uint64(p[5:13]))
	b.RootPathCost = binary.BigEndian.Uint32(p[13:17])
	b.BridgeID = BridgeID(binary.BigEndian.Uint64(p[17:25]))
	b.PortID = PortID(binary.BigEndian.Uint16(p[25:27]))
	b.MessageAge = Time(binary.BigEndian.Uint16(p[27:29]))
	b.MaxAge = Time(binary.BigEndian.Uint16(p[29:31]))
	b.HelloTime = Time(binary.BigEndian.Uint16(p[31:33]))
	b.ForwardDelay = Time(binary.BigEndian.Uint16(p[33:35]))
	if b.Type == TypeRST && len(p) > ConfigLen {
		b.Version1Length = p[35]
	}
	if b.Type == TypeConfig && b.MessageAge >= b.MaxAge {
		return fmt.Errorf("stp: bpdu: %w: message age %v, max age %v", ErrMessageAge, b.MessageAge, b.MaxAge)
	}
	return nil
}

// MarshalLLC encodes the BPDU behind its 802.2 LLC header (42-42-03): the
// payload of an 802.3 frame.
func MarshalLLC(b *BPDU) ([]byte, error) {
	return b.AppendBinary([]byte{LLCSAP, LLCSAP, LLCControl})
}

// ParseLLC decodes an 802.3 payload (LLC header and BPDU, padding allowed).
func ParseLLC(p []byte) (*BPDU, error) {
	if len(p) < llcLen {
		return nil, fmt.Errorf("stp: llc: %w: %d octets", ErrTruncated, len(p))
	}
	if p[0] != LLCSAP || p[1] != LLCSAP || p[2] != LLCControl {
		return nil, fmt.Errorf("stp: llc: %w: % x", ErrBadLLC, p[:llcLen])
	}
	b := new(BPDU)
	if err := b.UnmarshalBinary(p[llcLen:]); err != nil {
		return nil, err
	}
	return b, nil
}

// MarshalFrame encodes b as an 802.3 frame from src to the Bridge Group
// Address: the length field (not an EtherType) covers LLC and BPDU, and the
// frame is padded to the Ethernet minimum.
func MarshalFrame(src net.HardwareAddr, b *BPDU) ([]byte, error) {
	if len(src) != 6 {
		return nil, fmt.Errorf("stp: frame: source address %q has %d octets, want 6", src, len(src))
	}
	payload, err := MarshalLLC(b)
	if err != nil {
		return nil, err
	}
	f := ethernet.Frame{
		Destination: GroupAddress,
		Source:      src,
		EtherType:   ethernet.EtherType(len(payload)),
		Payload:     payload,
	}
	return f.MarshalBinary()
}

// maxLength is the largest 802.3 length field value; 0x0600 and above are EtherTypes.
const maxLength = 1500

// ParseFrame decodes an Ethernet frame carrying a BPDU and returns the
// BPDU and the sender's MAC address. The frame must be addressed to the
// Bridge Group Address and be an 802.3 frame whose length field fits.
func ParseFrame(frame []byte) (*BPDU, net.HardwareAddr, error) {
	var f ethernet.Frame
	if err := f.UnmarshalBinary(frame); err != nil {
		kind := ErrNotBPDU // e.g. a malformed VLAN tag
		if errors.Is(err, io.ErrUnexpectedEOF) {
			kind = ErrTruncated
		}
		return nil, nil, fmt.Errorf("stp: frame: %w: %v", kind, err)
	}
	if string(f.Destination) != string(GroupAddress) {
		return nil, nil, fmt.Errorf("stp: frame: %w: destination %s", ErrNotBPDU, f.Destination)
	}
	l := int(f.EtherType)
	switch {
	case l >= 0x0600:
		return nil, nil, fmt.Errorf("stp: frame: %w: EtherType 0x%04x, want an 802.3 length", ErrNotBPDU, l)
	case l > maxLength:
		return nil, nil, fmt.Errorf("stp: frame: %w: 0x%04x", ErrBadLengthType, l)
	case l > len(f.Payload):
		return nil, nil, fmt.Errorf("stp: frame: %w: length field %d, payload %d octets", ErrTruncated, l, len(f.Payload))
	}
	b, err := ParseLLC(f.Payload[:l])
	if err != nil {
		return nil, nil, err
	}
	return b, f.Source, nil
}
