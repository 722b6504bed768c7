package oam

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"

	"github.com/mdlayher/ethernet"
)

// EtherType is the Slow Protocols EtherType.
const EtherType ethernet.EtherType = 0x8809

// Subtype is the Slow Protocols subtype of OAM.
const Subtype = 0x03

// SlowProtocolsAddr is the Slow Protocols multicast address
// (01-80-C2-00-00-02) every OAMPDU is sent to.
var SlowProtocolsAddr = net.HardwareAddr{0x01, 0x80, 0xc2, 0x00, 0x00, 0x02}

// Sizes on the wire, without FCS.
const (
	headerLen = 14 + 1 + 2 + 1 // Ethernet header, subtype, flags, code
	// MaxDataLen is the largest OAMPDU data field (1518-byte frame).
	MaxDataLen = 1496
	// MinFrameLen is the shortest OAMPDU without FCS.
	MinFrameLen = 60
)

// Errors returned (wrapped) by the codec.
var (
	ErrTruncated   = errors.New("truncated OAMPDU")
	ErrNotOAM      = errors.New("not an OAMPDU")
	ErrUnknownCode = errors.New("unknown OAMPDU code")
	ErrBadLength   = errors.New("bad OAM TLV length")
	ErrBadValue    = errors.New("bad OAM field value")
	ErrTooLong     = errors.New("OAMPDU too long")
	ErrBadAddress  = errors.New("bad MAC address")
)

// Flags is the OAMPDU flags field.
type Flags uint16

// OAMPDU flags (802.3 57.4.2.1).
const (
	FlagLinkFault        Flags = 1 << 0
	FlagDyingGasp        Flags = 1 << 1
	FlagCriticalEvent    Flags = 1 << 2
	FlagLocalEvaluating  Flags = 1 << 3
	FlagLocalStable      Flags = 1 << 4
	FlagRemoteEvaluating Flags = 1 << 5
	FlagRemoteStable     Flags = 1 << 6
)

// Code is the OAMPDU code.
type Code uint8

// OAMPDU codes (802.3 table 57-4).
const (
	CodeInformation          Code = 0x00
	CodeEventNotification    Code = 0x01
	CodeVariableRequest      Code = 0x02
	CodeVariableResponse     Code = 0x03
	CodeLoopbackControl      Code = 0x04
	CodeOrganizationSpecific Code = 0xfe
)

func (c Code) String() string {
	switch c {
	case CodeInformation:
		return "Information"
	case CodeEventNotification:
		return "Event Notification"
	case CodeVariableRequest:
		return "Variable Request"
	case CodeVariableResponse:
		return "Variable Response"
	case CodeLoopbackControl:
		return "Loopback Control"
	case CodeOrganizationSpecific:
		return "Organization Specific"
	}
	return fmt.Sprintf("Code(%#02x)", uint8(c))
}

// Payload is the code-specific data of an OAMPDU.
type Payload interface {
	Code() Code
	appendTo(b []byte) ([]byte, error)
	parse(b []byte) error
}

// PDU is one OAMPDU in its Ethernet frame.
type PDU struct {
	Destination net.HardwareAddr
	Source      net.HardwareAddr
	Flags       Flags
	Payload     Payload
}

// MarshalBinary returns the Ethernet frame (no FCS), padded to 60 bytes.
func (p *PDU) MarshalBinary() ([]byte, error) {
	if p.Payload == nil {
		return nil, fmt.Errorf("oam: marshal: no payload")
	}
	if len(p.Destination) != 6 || len(p.Source) != 6 {
		return nil, fmt.Errorf("oam: marshal %v: %w", p.Payload.Code(), ErrBadAddress)
	}
	b := make([]byte, 4, 64)
	b[0] = Subtype
	binary.BigEndian.PutUint16(b[1:], uint16(p.Flags))
	b[3] = byte(p.Payload.Code())
	b, err := p.Payload.appendTo(b)
	if err != nil {
		return nil, fmt.Errorf("oam: marshal %v: %w", p.Payload.Code(), err)
	}
	if len(b)-4 > MaxDataLen {
		return nil, fmt.Errorf("oam: marshal %v: %d data bytes, at most %d: %w", p.Payload.Code(), len(b)-4, MaxDataLen, ErrTooLong)
	}
	ef := ethernet.Frame{Destination: p.Destination, Source: p.Source, EtherType: EtherType, Payload: b}
	return ef.MarshalBinary()
}

// UnmarshalBinary decodes an OAMPDU from a whole Ethernet frame without FCS
// (trailing zero pad is fine; a frame with FCS must have it removed first,
// since an Organization Specific payload cannot tell it from data).
func (p *PDU) UnmarshalBinary(b []byte) error {
	var ef ethernet.Frame
	if err := ef.UnmarshalBinary(b); err != nil {
		return fmt.Errorf("oam: ethernet header: %w: %v", ErrTruncated, err)
	}
	if ef.VLAN != nil || ef.EtherType != EtherType {
		return fmt.Errorf("oam: ethertype %#04x: %w", uint16(ef.EtherType), ErrNotOAM)
	}
	d := ef.Payload
	if len(d) < 4 {
		return fmt.Errorf("oam: %d-byte frame: %w", len(b), ErrTruncated)
	}
	if d[0] != Subtype {
		return fmt.Errorf("oam: slow protocol subtype %d: %w", d[0], ErrNotOAM)
	}
	if len(d)-4 > MaxDataLen {
		return fmt.Errorf("oam: %d data bytes, at most %d: %w", len(d)-4, MaxDataLen, ErrTooLong)
	}
	code := Code(d[3])
	var pl Payload
	switch code {
	case CodeInformation:
		pl = new(Information)
	case CodeEventNotification:
		pl = new(EventNotification)
	case CodeVariableRequest:
		pl = new(VariableRequest)
	case CodeVariableResponse:
		pl = new(VariableResponse)
	case CodeLoopbackControl:
		pl = new(LoopbackControl)
	case CodeOrganizationSpecific:
		pl = new(OrganizationSpecific)
	default:
		return fmt.Errorf("oam: %v: %w", code, ErrUnknownCode)
	}
	if err := pl.parse(d[4:]); err != nil {
		return fmt.Errorf("oam: %v: %w", code, err)
	}
	p.Destination = ef.Destination
	p.Source = ef.Source
	p.Flags = Flags(binary.BigEndian.Uint16(d[1:]))
	p.Payload = pl
	return nil
}

// OUI is an IEEE organizationally unique identifier.
type OUI [3]byte

// Information TLV types (802.3 table 57-6).
const (
	tlvEnd        = 0x00
	tlvLocalInfo  = 0x01
	tlvRemoteInfo = 0x02
	tlvOrgInfo    = 0xfe
	infoTLVLen    = 16
)

// InfoTLV is a Local or Remote Information TLV: one end's OAM
// configuration as exchanged during OAM discovery.
type InfoTLV struct {
	Version  uint8
	Revision uint16
	// State holds the parser action (bits 1:0) and multiplexer action
	// (bit 2).
	State uint8
	// Config holds mode (bit 0: active), unidirectional, remote loopback,
	// link events and variable retrieval support.
	Config uint8
	// MaxPDUSize is the OAMPDU configuration field: the largest OAMPDU
	// this end supports (11 bits).
	MaxPDUSize uint16
	OUI        OUI
	VendorInfo uint32
}

func (t *InfoTLV) appendTo(b []byte, typ byte) []byte {
	b = append(b, typ, infoTLVLen, t.Version)
	b = binary.BigEndian.AppendUint16(b, t.Revision)
	b = append(b, t.State, t.Config)
	b = binary.BigEndian.AppendUint16(b, t.MaxPDUSize)
	b = append(b, t.OUI[:]...)
	return binary.BigEndian.AppendUint32(b, t.VendorInfo)
}

func parseInfoTLV(v []byte) *InfoTLV {
	t := &InfoTLV{
		Version:    v[0],
		Revision:   binary.BigEndian.Uint16(v[1:]),
		State:      v[3],
		Config:     v[4],
		MaxPDUSize: binary.BigEndian.Uint16(v[5:]),
		VendorInfo: binary.BigEndian.Uint32(v[10:]),
	}
	copy(t.OUI[:], v[7:10])
	return t
}

// OrgTLV is an Organization Specific TLV (in Information or Event
// Notification): an OUI and the organization's bytes, passed through.
type OrgTLV struct {
	OUI  OUI
	Data []byte
}

func appendOrgTLV(b []byte, o OrgTLV) ([]byte, error) {
	n := 2 + 3 + len(o.Data)
	if n > 255 {
		return nil, fmt.Errorf("organization TLV of %d bytes: %w", n, ErrBadLength)
	}
	b = append(b, tlvOrgInfo, byte(n))
	b = append(b, o.OUI[:]...)
	return append(b, o.Data...), nil
}

func parseOrgTLV(v []byte) (OrgTLV, error) {
	if len(v) < 3 {
		return OrgTLV{}, fmt.Errorf("organization TLV of %d bytes: %w", len(v)+2, ErrBadLength)
	}
	o := OrgTLV{Data: append([]byte(nil), v[3:]...)}
	copy(o.OUI[:], v[:3])
	if len(o.Data) == 0 {
		o.Data = nil
	}
	return o, nil
}

// nextTLV splits the TLV at the start of b. It returns ok false at an End
// TLV (or pad, which is zero) or the end of data.
func nextTLV(b []byte) (typ byte, val, rest []byte, ok bool, err error) {
	if len(b) == 0 || b[0] == tlvEnd {
		return 0, nil, nil, false, nil
	}
	if len(b) < 2 {
		return 0, nil, nil, false, fmt.Errorf("TLV type %#x without length: %w", b[0], ErrBadLength)
	}
	n := int(b[1])
	if n < 2 || n > len(b) {
		return 0, nil, nil, false, fmt.Errorf("TLV type %#x length %d with %d bytes left: %w", b[0], n, len(b), ErrBadLength)
	}
	return b[0], b[2:n], b[n:], true, nil
}

// Information carries the Local and Remote Information TLVs (OAM
// discovery, and the keep-alive every second).
type Information struct {
	Local  *InfoTLV
	Remote *InfoTLV
	Org    []OrgTLV
}

// Code implements Payload.
func (*Information) Code() Code { return CodeInformation }

func (in *Information) appendTo(b []byte) ([]byte, error) {
	if in.Local != nil {
		b = in.Local.appendTo(b, tlvLocalInfo)
	}
	if in.Remote != nil {
		b = in.Remote.appendTo(b, tlvRemoteInfo)
	}
	for _, o := range in.Org {
		var err error
		if b, err = appendOrgTLV(b, o); err != nil {
			return nil, err
		}
	}
	return append(b, tlvEnd, 0), nil
}

func (in *Information) parse(b []byte) error {
	*in = Information{}
	for {
		typ, v, rest, ok, err := nextTLV(b)
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		b = rest
		switch typ {
		case tlvLocalInfo, tlvRemoteInfo:
			if len(v)+2 != infoTLVLen {
				return fmt.Errorf("information TLV %d length %d, want %d: %w", typ, len(v)+2, infoTLVLen, ErrBadLength)
			}
			t := parseInfoTLV(v)
			dst := &in.Local
			if typ == tlvRemoteInfo {
				dst = &in.Remote
			}
			if *dst != nil {
				return fmt.Errorf("information TLV %d twice: %w", typ, ErrBadValue)
			}
			*dst = t
		case tlvOrgInfo:
			o, err := parseOrgTLV(v)
			if err != nil {
				return err
			}
			in.Org = append(in.Org, o)
		default:
			return fmt.Errorf("information TLV type %#x: %w", typ, ErrBadValue)
		}
	}
}

// EventType is a link event TLV type (802.3 table 57-12).
type EventType uint8

// Link event TLV types.
const (
	EventErroredSymbolPeriod        EventType = 0x01
	EventErroredFrame               EventType = 0x02
	EventErroredFramePeriod         EventType = 0x03
	EventErroredFrameSecondsSummary EventType = 0x04
	EventOrganizationSpecific       EventType = 0xfe
)

// eventLayout gives the field widths (bytes) of window, threshold, errors,
// error running total and event running total, per event type.
var eventLayout = map[EventType][5]int{
	EventErroredSymbolPeriod:        {8, 8, 8, 8, 4},
	EventErroredFrame:               {2, 4, 4, 8, 4},
	EventErroredFramePeriod:         {4, 4, 4, 8, 4},
	EventErroredFrameSecondsSummary: {2, 2, 2, 4, 4},
}

func eventLen(w [5]int) int { return 2 + 2 + w[0] + w[1] + w[2] + w[3] + w[4] }

// Event is one link event TLV. For the four standard types the numeric
// fields apply (each truncated to its width on the wire: check with
// Validate); for EventOrganizationSpecific only Org applies.
type Event struct {
	Type EventType
	// Timestamp in 100 ms units since the sender's reset.
	Timestamp         uint16
	Window            uint64
	Threshold         uint64
	Errors            uint64
	ErrorRunningTotal uint64
	EventRunningTotal uint32
	Org               OrgTLV
}

func fits(v uint64, width int) bool { return width >= 8 || v>>(8*width) == 0 }

func putN(b []byte, v uint64, width int) []byte {
	for i := width - 1; i >= 0; i-- {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

func getN(b []byte, width int) uint64 {
	var v uint64
	for _, c := range b[:width] {
		v = v<<8 | uint64(c)
	}
	return v
}

func (e *Event) appendTo(b []byte) ([]byte, error) {
	if e.Type == EventOrganizationSpecific {
		return appendOrgTLV(b, e.Org)
	}
	w, ok := eventLayout[e.Type]
	if !ok {
		return nil, fmt.Errorf("event type %#x: %w", e.Type, ErrBadValue)
	}
	vals := [5]uint64{e.Window, e.Threshold, e.Errors, e.ErrorRunningTotal, uint64(e.EventRunningTotal)}
	for i, v := range vals {
		if !fits(v, w[i]) {
			return nil, fmt.Errorf("event type %#x field %d value %d exceeds %d bytes: %w", e.Type, i, v, w[i], ErrBadValue)
		}
	}
	b = append(b, byte(e.Type), byte(eventLen(w)))
	b = binary.BigEndian.AppendUint16(b, e.Timestamp)
	for i, v := range vals {
		b = putN(b, v, w[i])
	}
	return b, nil
}

// EventNotification reports link events (errored symbols/frames over a
// window); Sequence lets the receiver drop duplicates.
type EventNotification struct {
	Sequence uint16
	Events   []Event
}

// Code implements Payload.
func (*EventNotification) Code() Code { return CodeEventNotification }

func (en *EventNotification) appendTo(b []byte) ([]byte, error) {
	b = binary.BigEndian.AppendUint16(b, en.Sequence)
	for i := range en.Events {
		var err error
		if b, err = en.Events[i].appendTo(b); err != nil {
			return nil, err
		}
	}
	return append(b, tlvEnd, 0), nil
}

func (en *EventNotification) parse(b []byte) error {
	*en = EventNotification{}
	if len(b) < 2 {
		return fmt.Errorf("sequence number: %w", ErrTruncated)
	}
	en.Sequence = binary.BigEndian.Uint16(b)
	b = b[2:]
	for {
		typ, v, rest, ok, err := nextTLV(b)
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		b = rest
		e := Event{Type: EventType(typ)}
		if e.Type == EventOrganizationSpecific {
			if e.Org, err = parseOrgTLV(v); err != nil {
				return err
			}
			en.Events = append(en.Events, e)
			continue
		}
		w, known := eventLayout[e.Type]
		if !known {
			return fmt.Errorf("event TLV type %#x: %w", typ, ErrBadValue)
		}
		if len(v)+2 != eventLen(w) {
			return fmt.Errorf("event TLV type %#x length %d, want %d: %w", typ, len(v)+2, eventLen(w), ErrBadLength)
		}
		e.Timestamp = binary.BigEndian.Uint16(v)
		off := 2
		var vals [5]uint64
		for i := range vals {
			vals[i] = getN(v[off:], w[i])
			off += w[i]
		}
		e.Window, e.Threshold, e.Errors, e.ErrorRunningTotal, e.EventRunningTotal = vals[0], vals[1], vals[2], vals[3], uint32(vals[4])
		en.Events = append(en.Events, e)
	}
}

// Variable branches (802.3 57.6.3 / clause 30): attribute, object, package.
const (
	BranchObject    = 0x03
	BranchPackage   = 0x04
	BranchAttribute = 0x07
)

// Descriptor names one MIB variable (branch, leaf).
type Descriptor struct {
	Branch uint8
	Leaf   uint16
}

// VariableRequest asks the peer for MIB variables.
type VariableRequest struct {
	Descriptors []Descriptor
}

// Code implements Payload.
func (*VariableRequest) Code() Code { return CodeVariableRequest }

func (vr *VariableRequest) appendTo(b []byte) ([]byte, error) {
	for _, d := range vr.Descriptors {
		if d.Branch == 0 {
			return nil, fmt.Errorf("descriptor branch 0 would end the list: %w", ErrBadValue)
		}
		b = append(b, d.Branch)
		b = binary.BigEndian.AppendUint16(b, d.Leaf)
	}
	return append(b, 0), nil
}

func (vr *VariableRequest) parse(b []byte) error {
	*vr = VariableRequest{}
	for len(b) > 0 && b[0] != 0 {
		if len(b) < 3 {
			return fmt.Errorf("descriptor of %d bytes: %w", len(b), ErrBadLength)
		}
		vr.Descriptors = append(vr.Descriptors, Descriptor{Branch: b[0], Leaf: binary.BigEndian.Uint16(b[1:])})
		b = b[3:]
	}
	return nil
}

// Container is one variable in a Variable Response: either Value (1 to 128
// bytes) or, when Indication is non-zero, a variable indication (an error
// code in 7 bits) with no value.
type Container struct {
	Branch     uint8
	Leaf       uint16
	Value      []byte
	Indication uint8
}

// VariableResponse returns the requested MIB variables.
type VariableResponse struct {
	Containers []Container
}

// Code implements Payload.
func (*VariableResponse) Code() Code { return CodeVariableResponse }

func (vr *VariableResponse) appendTo(b []byte) ([]byte, error) {
	for _, c := range vr.Containers {
		if c.Branch == 0 {
			return nil, fmt.Errorf("container branch 0 would end the list: %w", ErrBadValue)
		}
		b = append(b, c.Branch)
		b = binary.BigEndian.AppendUint16(b, c.Leaf)
		switch {
		case c.Indication != 0:
			if c.Indication > 0x7f || len(c.Value) != 0 {
				return nil, fmt.Errorf("indication %#x with %d value bytes: %w", c.Indication, len(c.Value), ErrBadValue)
			}
			b = append(b, 0x80|c.Indication)
		case len(c.Value) >= 1 && len(c.Value) <= 128:
			// A width of 0 means 128.
			b = append(b, byte(len(c.Value)&0x7f))
			b = append(b, c.Value...)
		default:
			return nil, fmt.Errorf("container value of %d bytes, want 1..128: %w", len(c.Value), ErrBadLength)
		}
	}
	return append(b, 0), nil
}

func (vr *VariableResponse) parse(b []byte) error {
	*vr = VariableResponse{}
	for len(b) > 0 && b[0] != 0 {
		if len(b) < 4 {
			return fmt.Errorf("container of %d bytes: %w", len(b), ErrBadLength)
		}
		c := Container{Branch: b[0], Leaf: binary.BigEndian.Uint16(b[1:])}
		w := b[3]
		b = b[4:]
		if w&0x80 != 0 {
			c.Indication = w & 0x7f
			if c.Indication == 0 {
				return fmt.Errorf("indication 0: %w", ErrBadValue)
			}
		} else {
			n := int(w)
			if n == 0 {
				n = 128
			}
			if n > len(b) {
				return fmt.Errorf("container width %d with %d bytes left: %w", n, len(b), ErrBadLength)
			}
			c.Value = append([]byte(nil), b[:n]...)
			b = b[n:]
		}
		vr.Containers = append(vr.Containers, c)
	}
	return nil
}

// LoopbackCommand is the Remote Loopback command.
type LoopbackCommand uint8

// Remote loopback commands.
const (
	LoopbackEnable  LoopbackCommand = 0x01
	LoopbackDisable LoopbackCommand = 0x02
)

// LoopbackControl enables or disables remote loopback on the peer.
type LoopbackControl struct {
	Command LoopbackCommand
}

// Code implements Payload.
func (*LoopbackControl) Code() Code { return CodeLoopbackControl }

func (lc *LoopbackControl) appendTo(b []byte) ([]byte, error) {
	if lc.Command != LoopbackEnable && lc.Command != LoopbackDisable {
		return nil, fmt.Errorf("loopback command %d: %w", lc.Command, ErrBadValue)
	}
	return append(b, byte(lc.Command)), nil
}

func (lc *LoopbackControl) parse(b []byte) error {
	if len(b) < 1 {
		return fmt.Errorf("loopback command: %w", ErrTruncated)
	}
	lc.Command = LoopbackCommand(b[0])
	if lc.Command != LoopbackEnable && lc.Command != LoopbackDisable {
		return fmt.Errorf("loopback command %d: %w", lc.Command, ErrBadValue)
	}
	return nil
}

// OrganizationSpecific is an Organization Specific OAMPDU, passed through:
// the OUI and the rest of the data field (including any pad, which the
// codec cannot tell from data).
type OrganizationSpecific struct {
	OUI  OUI
	Data []byte
}

// Code implements Payload.
func (*OrganizationSpecific) Code() Code { return CodeOrganizationSpecific }

func (o *OrganizationSpecific) appendTo(b []byte) ([]byte, error) {
	b = append(b, o.OUI[:]...)
	return append(b, o.Data...), nil
}

func (o *OrganizationSpecific) parse(b []byte) error {
	if len(b) < 3 {
		return fmt.Errorf("OUI: %w", ErrTruncated)
	}
	copy(o.OUI[:], b)
	o.Data = append([]byte(nil), b[3:]...)
	return nil
}
