package ponlink

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Header layout constants.
const (
	HeaderLen = 12
	Version   = 1
	magic0    = 0x50
	magic1    = 0x4c
	flagT     = 0x01
	// MinFrame is the shortest Ethernet frame carried (its header).
	MinFrame = 14
	// MaxFrame is the longest Ethernet frame carried (a jumbo frame;
	// EPON itself carries at most 2000 bytes).
	MaxFrame = 9216
	// MaxDatagram is the longest datagram of this encapsulation.
	MaxDatagram = HeaderLen + MaxFrame
)

// LLIDs with a meaning of their own.
const (
	// BroadcastLLID is the broadcast LLID: downstream with Mode set it is
	// the single-copy broadcast channel; upstream it is what an
	// unregistered ONU sends its REGISTER_REQ on.
	BroadcastLLID uint16 = 0x7fff
	// MaxLLID is the largest LLID the 15-bit field carries.
	MaxLLID uint16 = 0x7fff
)

// Errors returned (wrapped) by UnmarshalBinary and MarshalBinary.
var (
	ErrTruncated = errors.New("ponlink: truncated datagram")
	ErrMagic     = errors.New("ponlink: not a ponlink datagram")
	ErrVersion   = errors.New("ponlink: unsupported version")
	ErrReserved  = errors.New("ponlink: reserved bits set")
	ErrFrameSize = errors.New("ponlink: bad Ethernet frame size")
	ErrLLID      = errors.New("ponlink: LLID out of range")
)

// Frame is one datagram: an Ethernet frame with its LLID.
type Frame struct {
	// Mode is the preamble's mode bit (set for downstream broadcast).
	Mode bool
	// LLID is the logical link ID, 0..0x7fff.
	LLID uint16
	// HasTimestamp says Timestamp is valid.
	HasTimestamp bool
	// Timestamp in 16 ns quanta, the sender's MPCP local time when the
	// frame left it.
	Timestamp uint32
	// Payload is the Ethernet frame without FCS. After UnmarshalBinary it
	// aliases the datagram.
	Payload []byte
}

// AppendBinary appends the datagram to b.
func (f *Frame) AppendBinary(b []byte) ([]byte, error) {
	if f.LLID > MaxLLID {
		return nil, fmt.Errorf("ponlink: marshal LLID %#x: %w", f.LLID, ErrLLID)
	}
	if n := len(f.Payload); n < MinFrame || n > MaxFrame {
		return nil, fmt.Errorf("ponlink: marshal %d-byte frame (want %d..%d): %w", n, MinFrame, MaxFrame, ErrFrameSize)
	}
	var flags byte
	if f.HasTimestamp {
		flags |= flagT
	}
	ml := f.LLID
	if f.Mode {
		ml |= 0x8000
	}
	b = append(b, magic0, magic1, Version, flags)
	b = binary.BigEndian.AppendUint16(b, ml)
	b = append(b, 0, 0)
	ts := uint32(0)
	if f.HasTimestamp {
		ts = f.Timestamp
	}
	b = binary.BigEndian.AppendUint32(b, ts)
	return append(b, f.Payload...), nil
}

// MarshalBinary returns the datagram.
func (f *Frame) MarshalBinary() ([]byte, error) {
	return f.AppendBinary(make([]byte, 0, HeaderLen+len(f.Payload)))
}

// UnmarshalBinary decodes a datagram. Payload aliases b.
func (f *Frame) UnmarshalBinary(b []byte) error {
	if len(b) < HeaderLen {
		return fmt.Errorf("%d bytes, header is %d: %w", len(b), HeaderLen, ErrTruncated)
	}
	if b[0] != magic0 || b[1] != magic1 {
		return fmt.Errorf("magic %#02x%02x: %w", b[0], b[1], ErrMagic)
	}
	if b[2] != Version {
		return fmt.Errorf("version %d, want %d: %w", b[2], Version, ErrVersion)
	}
	if b[3]&^flagT != 0 || b[6] != 0 || b[7] != 0 {
		return fmt.Errorf("flags %#02x, reserved %#02x%02x: %w", b[3], b[6], b[7], ErrReserved)
	}
	if n := len(b) - HeaderLen; n < MinFrame || n > MaxFrame {
		return fmt.Errorf("%d-byte frame (want %d..%d): %w", n, MinFrame, MaxFrame, ErrFrameSize)
	}
	ml := binary.BigEndian.Uint16(b[4:6])
	*f = Frame{
		Mode:         ml&0x8000 != 0,
		LLID:         ml & 0x7fff,
		HasTimestamp: b[3]&flagT != 0,
		Payload:      b[HeaderLen:],
	}
	if f.HasTimestamp {
		f.Timestamp = binary.BigEndian.Uint32(b[8:12])
	} else if binary.BigEndian.Uint32(b[8:12]) != 0 {
		return fmt.Errorf("timestamp without the T flag: %w", ErrReserved)
	}
	return nil
}
