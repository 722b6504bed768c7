package mpcp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"net"
	"time"

	"github.com/mdlayher/ethernet"
)

// EtherType is the MAC Control EtherType that carries MPCPDUs.
const EtherType ethernet.EtherType = 0x8808

// MACControlAddr is the MAC Control multicast address MPCPDUs are sent to
// (01-80-C2-00-00-01).
var MACControlAddr = net.HardwareAddr{0x01, 0x80, 0xc2, 0x00, 0x00, 0x01}

// Quantum is the MPCP time quantum: every MPCP time is counted in 16 ns.
const Quantum = 16 * time.Nanosecond

// Quanta converts a duration to whole time quanta (truncating), modulo 2^32
// as the MPCP timestamp counter wraps.
func Quanta(d time.Duration) uint32 { return uint32(int64(d) / int64(Quantum)) }

// Duration converts time quanta to a duration.
func Duration(q uint32) time.Duration { return time.Duration(q) * Quantum }

// Sizes of the MPCPDU on the wire.
const (
	// FrameLen is the MPCPDU length without the FCS (64 with it).
	FrameLen = 60
	// headerLen is DA, SA, Length/Type.
	headerLen = 14
	// dataLen is the room for opcode-specific fields after opcode and
	// timestamp.
	dataLen = FrameLen - headerLen - 2 - 4
)

// Errors returned (wrapped) by UnmarshalBinary and MarshalBinary.
var (
	ErrTruncated     = errors.New("truncated MPCPDU")
	ErrNotMPCP       = errors.New("not a MAC Control frame")
	ErrUnknownOpcode = errors.New("unknown MPCP opcode")
	ErrBadLength     = errors.New("bad MPCP field length or count")
	ErrBadFlags      = errors.New("bad MPCP flags")
	ErrBadAddress    = errors.New("bad MAC address")
)

// Opcode is the MAC Control opcode.
type Opcode uint16

// MPCP opcodes (802.3 table 31A-1).
const (
	OpGate        Opcode = 0x0002
	OpReport      Opcode = 0x0003
	OpRegisterReq Opcode = 0x0004
	OpRegister    Opcode = 0x0005
	OpRegisterAck Opcode = 0x0006
)

func (o Opcode) String() string {
	switch o {
	case OpGate:
		return "GATE"
	case OpReport:
		return "REPORT"
	case OpRegisterReq:
		return "REGISTER_REQ"
	case OpRegister:
		return "REGISTER"
	case OpRegisterAck:
		return "REGISTER_ACK"
	}
	return fmt.Sprintf("Opcode(%#04x)", uint16(o))
}

// Message is the opcode-specific body of an MPCPDU.
type Message interface {
	Opcode() Opcode
	// put writes the body into b (dataLen bytes, zeroed).
	put(b []byte) error
	// parse reads the body from b (at least dataLen bytes).
	parse(b []byte) error
}

// Frame is one MPCPDU inside its Ethernet frame.
type Frame struct {
	Destination net.HardwareAddr
	Source      net.HardwareAddr
	// Timestamp is the sender's local time in 16 ns quanta.
	Timestamp uint32
	Message   Message
}

// MarshalBinary returns the 60-byte Ethernet frame (FCS not included).
// It builds the frame in one allocation: the OLT encodes a GATE per
// REPORT, so this is on the blade's hot path (cpu.6x32).
func (f *Frame) MarshalBinary() ([]byte, error) {
	if f.Message == nil {
		return nil, fmt.Errorf("mpcp: marshal: no message")
	}
	if len(f.Destination) != 6 || len(f.Source) != 6 {
		return nil, fmt.Errorf("mpcp: marshal %v: %w", f.Message.Opcode(), ErrBadAddress)
	}
	b := make([]byte, FrameLen)
	copy(b[0:6], f.Destination)
	copy(b[6:12], f.Source)
	binary.BigEndian.PutUint16(b[12:14], uint16(EtherType))
	binary.BigEndian.PutUint16(b[14:16], uint16(f.Message.Opcode()))
	binary.BigEndian.PutUint32(b[16:20], f.Timestamp)
	if err := f.Message.put(b[headerLen+6:]); err != nil {
		return nil, fmt.Errorf("mpcp: marshal %v: %w", f.Message.Opcode(), err)
	}
	return b, nil
}

// UnmarshalBinary decodes an MPCPDU from a whole Ethernet frame (with or
// without FCS: bytes past the 60-byte MPCPDU are ignored as they are pad or
// FCS). The addresses are copied; nothing aliases b.
func (f *Frame) UnmarshalBinary(b []byte) error {
	if len(b) < headerLen {
		return fmt.Errorf("mpcp: ethernet header: %d bytes: %w", len(b), ErrTruncated)
	}
	// A VLAN tag (0x8100) is not MPCP either: MAC Control frames are
	// never tagged.
	if et := binary.BigEndian.Uint16(b[12:14]); et != uint16(EtherType) {
		return fmt.Errorf("mpcp: ethertype %#04x: %w", et, ErrNotMPCP)
	}
	if len(b) < FrameLen {
		return fmt.Errorf("mpcp: %d-byte frame, want %d: %w", len(b), FrameLen, ErrTruncated)
	}
	p := b[headerLen:FrameLen]
	op := Opcode(binary.BigEndian.Uint16(p[0:2]))
	var m Message
	switch op {
	case OpGate:
		m = new(Gate)
	case OpReport:
		m = new(Report)
	case OpRegisterReq:
		m = new(RegisterReq)
	case OpRegister:
		m = new(Register)
	case OpRegisterAck:
		m = new(RegisterAck)
	default:
		return fmt.Errorf("mpcp: %v: %w", op, ErrUnknownOpcode)
	}
	if err := m.parse(p[6:]); err != nil {
		return fmt.Errorf("mpcp: %v: %w", op, err)
	}
	addrs := make([]byte, 12)
	copy(addrs, b[:12])
	f.Destination = net.HardwareAddr(addrs[0:6:6])
	f.Source = net.HardwareAddr(addrs[6:12:12])
	f.Timestamp = binary.BigEndian.Uint32(p[2:6])
	f.Message = m
	return nil
}

// Grant is one upstream transmission window in a GATE.
type Grant struct {
	// Start is the ONU-local time (quanta) the window opens.
	Start uint32
	// Length is the window length in quanta, including laser on/off,
	// synchronisation and any REPORT the ONU sends in it.
	Length uint16
	// ForceReport asks the ONU to send a REPORT in this window.
	ForceReport bool
}

// MaxGrants is the most grants one GATE carries.
const MaxGrants = 4

// Gate grants upstream windows. A discovery GATE (Discovery set) opens a
// discovery window: one grant, and SyncTime tells unregistered ONUs how long
// the OLT needs to lock on a burst.
type Gate struct {
	Discovery bool
	Grants    []Grant
	// SyncTime (quanta) is present only in a discovery GATE.
	SyncTime uint16
}

// Opcode implements Message.
func (*Gate) Opcode() Opcode { return OpGate }

func (g *Gate) put(b []byte) error {
	n := len(g.Grants)
	if n > MaxGrants {
		return fmt.Errorf("%d grants, at most %d: %w", n, MaxGrants, ErrBadLength)
	}
	if g.Discovery && n != 1 {
		return fmt.Errorf("discovery GATE with %d grants, want 1: %w", n, ErrBadLength)
	}
	if !g.Discovery && g.SyncTime != 0 {
		return fmt.Errorf("sync time in a normal GATE: %w", ErrBadFlags)
	}
	flags := byte(n)
	if g.Discovery {
		flags |= 0x08
	}
	off := 1
	for i, gr := range g.Grants {
		if gr.ForceReport {
			flags |= 0x10 << i
		}
		binary.BigEndian.PutUint32(b[off:], gr.Start)
		binary.BigEndian.PutUint16(b[off+4:], gr.Length)
		off += 6
	}
	b[0] = flags
	if g.Discovery {
		binary.BigEndian.PutUint16(b[off:], g.SyncTime)
	}
	return nil
}

func (g *Gate) parse(b []byte) error {
	flags := b[0]
	n := int(flags & 0x07)
	if n > MaxGrants {
		return fmt.Errorf("%d grants, at most %d: %w", n, MaxGrants, ErrBadLength)
	}
	g.Discovery = flags&0x08 != 0
	if g.Discovery && n != 1 {
		return fmt.Errorf("discovery GATE with %d grants, want 1: %w", n, ErrBadLength)
	}
	// Force-report bits for grants that are not there make the frame
	// ambiguous; reject them rather than guess.
	if flags>>4>>n != 0 {
		return fmt.Errorf("force-report flag %#x beyond %d grants: %w", flags>>4, n, ErrBadFlags)
	}
	g.Grants = nil
	if n > 0 {
		g.Grants = make([]Grant, n)
	}
	off := 1
	for i := range g.Grants {
		g.Grants[i] = Grant{
			Start:       binary.BigEndian.Uint32(b[off:]),
			Length:      binary.BigEndian.Uint16(b[off+4:]),
			ForceReport: flags&(0x10<<i) != 0,
		}
		off += 6
	}
	g.SyncTime = 0
	if g.Discovery {
		g.SyncTime = binary.BigEndian.Uint16(b[off:])
	}
	return nil
}

// QueueSet is one set of queue reports in a REPORT: Bitmap bit i says queue
// i is reported, and Lengths[i] is its occupancy in time quanta. Lengths of
// queues not in Bitmap are not sent and decode as zero.
type QueueSet struct {
	Bitmap  uint8
	Lengths [8]uint16
}

// Report tells the OLT the ONU's queue occupancy, one or more queue sets
// (each with its own threshold in the ONU's policy).
type Report struct {
	QueueSets []QueueSet
}

// Opcode implements Message.
func (*Report) Opcode() Opcode { return OpReport }

func (r *Report) put(b []byte) error {
	need := 1
	for _, qs := range r.QueueSets {
		need += 1 + 2*bits.OnesCount8(qs.Bitmap)
	}
	if len(r.QueueSets) > 255 || need > len(b) {
		return fmt.Errorf("%d queue sets need %d bytes, room for %d: %w", len(r.QueueSets), need, len(b), ErrBadLength)
	}
	b[0] = byte(len(r.QueueSets))
	off := 1
	for _, qs := range r.QueueSets {
		b[off] = qs.Bitmap
		off++
		for q := 0; q < 8; q++ {
			if qs.Bitmap&(1<<q) != 0 {
				binary.BigEndian.PutUint16(b[off:], qs.Lengths[q])
				off += 2
			}
		}
	}
	return nil
}

func (r *Report) parse(b []byte) error {
	n := int(b[0])
	off := 1
	r.QueueSets = nil
	if n > 0 {
		// Each set takes at least its bitmap byte; bound the allocation.
		if n > len(b)-off {
			return fmt.Errorf("%d queue sets in %d bytes: %w", n, len(b)-off, ErrBadLength)
		}
		r.QueueSets = make([]QueueSet, n)
	}
	for i := range r.QueueSets {
		if off >= len(b) {
			return fmt.Errorf("queue set %d of %d past the MPCPDU: %w", i, n, ErrBadLength)
		}
		qs := &r.QueueSets[i]
		qs.Bitmap = b[off]
		off++
		for q := 0; q < 8; q++ {
			if qs.Bitmap&(1<<q) == 0 {
				continue
			}
			if off+2 > len(b) {
				return fmt.Errorf("queue set %d queue %d past the MPCPDU: %w", i, q, ErrBadLength)
			}
			qs.Lengths[q] = binary.BigEndian.Uint16(b[off:])
			off += 2
		}
	}
	return nil
}

// RegisterReqFlag is the flags field of REGISTER_REQ.
type RegisterReqFlag uint8

// REGISTER_REQ flags.
const (
	ReqRegister   RegisterReqFlag = 1
	ReqDeregister RegisterReqFlag = 3
)

// RegisterReq is an ONU's request to register (sent in a discovery window)
// or to deregister.
type RegisterReq struct {
	Flags RegisterReqFlag
	// PendingGrants is how many grants the ONU can queue.
	PendingGrants uint8
}

// Opcode implements Message.
func (*RegisterReq) Opcode() Opcode { return OpRegisterReq }

func (r *RegisterReq) put(b []byte) error {
	if r.Flags != ReqRegister && r.Flags != ReqDeregister {
		return fmt.Errorf("REGISTER_REQ flags %d: %w", r.Flags, ErrBadFlags)
	}
	b[0] = byte(r.Flags)
	b[1] = r.PendingGrants
	return nil
}

func (r *RegisterReq) parse(b []byte) error {
	r.Flags = RegisterReqFlag(b[0])
	r.PendingGrants = b[1]
	if r.Flags != ReqRegister && r.Flags != ReqDeregister {
		return fmt.Errorf("REGISTER_REQ flags %d: %w", r.Flags, ErrBadFlags)
	}
	return nil
}

// RegisterFlag is the flags field of REGISTER.
type RegisterFlag uint8

// REGISTER flags.
const (
	RegReregister RegisterFlag = 1
	RegDeregister RegisterFlag = 2
	RegAck        RegisterFlag = 3
	RegNack       RegisterFlag = 4
)

// Register is the OLT's answer to a REGISTER_REQ: the assigned port (LLID).
type Register struct {
	AssignedPort uint16
	Flags        RegisterFlag
	// SyncTime (quanta) the OLT's receiver needs at the start of a burst.
	SyncTime            uint16
	EchoedPendingGrants uint8
}

// Opcode implements Message.
func (*Register) Opcode() Opcode { return OpRegister }

func validRegisterFlag(f RegisterFlag) bool { return f >= RegReregister && f <= RegNack }

func (r *Register) put(b []byte) error {
	if !validRegisterFlag(r.Flags) {
		return fmt.Errorf("REGISTER flags %d: %w", r.Flags, ErrBadFlags)
	}
	binary.BigEndian.PutUint16(b[0:], r.AssignedPort)
	b[2] = byte(r.Flags)
	binary.BigEndian.PutUint16(b[3:], r.SyncTime)
	b[5] = r.EchoedPendingGrants
	return nil
}

func (r *Register) parse(b []byte) error {
	r.AssignedPort = binary.BigEndian.Uint16(b[0:])
	r.Flags = RegisterFlag(b[2])
	r.SyncTime = binary.BigEndian.Uint16(b[3:])
	r.EchoedPendingGrants = b[5]
	if !validRegisterFlag(r.Flags) {
		return fmt.Errorf("REGISTER flags %d: %w", r.Flags, ErrBadFlags)
	}
	return nil
}

// RegisterAckFlag is the flags field of REGISTER_ACK.
type RegisterAckFlag uint8

// REGISTER_ACK flags.
const (
	AckNack RegisterAckFlag = 0
	AckAck  RegisterAckFlag = 1
)

// RegisterAck is the ONU's confirmation of a REGISTER.
type RegisterAck struct {
	Flags              RegisterAckFlag
	EchoedAssignedPort uint16
	EchoedSyncTime     uint16
}

// Opcode implements Message.
func (*RegisterAck) Opcode() Opcode { return OpRegisterAck }

func (r *RegisterAck) put(b []byte) error {
	if r.Flags > AckAck {
		return fmt.Errorf("REGISTER_ACK flags %d: %w", r.Flags, ErrBadFlags)
	}
	b[0] = byte(r.Flags)
	binary.BigEndian.PutUint16(b[1:], r.EchoedAssignedPort)
	binary.BigEndian.PutUint16(b[3:], r.EchoedSyncTime)
	return nil
}

func (r *RegisterAck) parse(b []byte) error {
	r.Flags = RegisterAckFlag(b[0])
	r.EchoedAssignedPort = binary.BigEndian.Uint16(b[1:])
	r.EchoedSyncTime = binary.BigEndian.Uint16(b[3:])
	if r.Flags > AckAck {
		return fmt.Errorf("REGISTER_ACK flags %d: %w", r.Flags, ErrBadFlags)
	}
	return nil
}
