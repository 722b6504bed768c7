package statefeed

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/cgoa/cgoa/ha/transport"
	"github.com/cgoa/cgoa/stp"
)

// FrameType is the HA transport frame type of the feed (mgmt's checkpoint stream is
// transport.TypeUser+9).
const FrameType = transport.TypeUser + 12

// Version is the wire format version this package speaks.
const Version = 1

// Bounds of a publication.
const (
	HeaderLen = 10
	// PartLen is the body octets one frame carries.
	PartLen  = transport.MaxPayload - HeaderLen
	MaxParts = 64
	MaxBody  = MaxParts * PartLen
	MaxPorts = 1024 // bridge ports in an STP snapshot
	MaxPONs  = 64   // PON ports of one EPON blade
	MaxONUs  = 1024 // ONUs (LLIDs) of one EPON blade
	MaxName  = 64   // octets of a port or PON name
)

// Kind says what a publication carries.
type Kind uint8

// Kinds of publication.
const (
	KindSTP       Kind = 1 // STPState
	KindSTPEvent  Kind = 2 // Event (NewRoot, TopologyChange)
	KindEPON      Kind = 3 // EPONState
	KindEPONEvent Kind = 4 // Event (ONU registered, deregistered, lost)
)

func (k Kind) String() string {
	switch k {
	case KindSTP:
		return "stp"
	case KindSTPEvent:
		return "stp-event"
	case KindEPON:
		return "epon"
	case KindEPONEvent:
		return "epon-event"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Errors of Decode and DecodeBody.
var (
	ErrShort   = errors.New("statefeed: truncated")
	ErrVersion = errors.New("statefeed: unsupported version")
	ErrKind    = errors.New("statefeed: unknown kind")
	ErrParts   = errors.New("statefeed: bad part index or count")
	ErrBounds  = errors.New("statefeed: exceeds a bound")
	ErrTrail   = errors.New("statefeed: trailing octets")
)

// Part is one frame's payload, decoded.
type Part struct {
	Kind         Kind
	Generation   uint32
	Index, Count uint16
	Data         []byte // aliases the payload
}

// Decode reads one frame payload. It never does I/O and never panics.
func Decode(p []byte) (Part, error) {
	if len(p) < HeaderLen {
		return Part{}, ErrShort
	}
	if p[0] != Version {
		return Part{}, fmt.Errorf("%w %d", ErrVersion, p[0])
	}
	pt := Part{Kind: Kind(p[1]), Generation: binary.BigEndian.Uint32(p[2:]),
		Index: binary.BigEndian.Uint16(p[6:]), Count: binary.BigEndian.Uint16(p[8:]), Data: p[HeaderLen:]}
	if pt.Kind < KindSTP || pt.Kind > KindEPONEvent {
		return Part{}, fmt.Errorf("%w %d", ErrKind, p[1])
	}
	if pt.Count == 0 || pt.Count > MaxParts || pt.Index >= pt.Count || len(pt.Data) > PartLen {
		return Part{}, fmt.Errorf("%w: part %d of %d, %d octets", ErrParts, pt.Index, pt.Count, len(pt.Data))
	}
	if (pt.Kind == KindSTPEvent || pt.Kind == KindEPONEvent) && pt.Count != 1 {
		return Part{}, fmt.Errorf("%w: an event in %d parts", ErrParts, pt.Count)
	}
	return pt, nil
}

// Split cuts an encoded body into frame payloads.
func Split(kind Kind, gen uint32, body []byte) ([][]byte, error) {
	if len(body) > MaxBody {
		return nil, fmt.Errorf("%w: body of %d octets, at most %d", ErrBounds, len(body), MaxBody)
	}
	n := max(1, (len(body)+PartLen-1)/PartLen)
	out := make([][]byte, 0, n)
	for i := 0; i < n; i++ {
		chunk := body[i*PartLen : min(len(body), (i+1)*PartLen)]
		p := make([]byte, HeaderLen, HeaderLen+len(chunk))
		p[0], p[1] = Version, byte(kind)
		binary.BigEndian.PutUint32(p[2:], gen)
		binary.BigEndian.PutUint16(p[6:], uint16(i))
		binary.BigEndian.PutUint16(p[8:], uint16(n))
		out = append(out, append(p, chunk...))
	}
	return out, nil
}

// STPState is a switch blade's publication.
type STPState struct {
	// Active says the publisher holds the active switch assignment: the mgmt blade serves
	// that bridge.
	Active   bool
	Snapshot stp.Snapshot
}

// EPONState is an EPON blade's publication: its PON ports and their ONUs.
type EPONState struct {
	PONs []PON
}

// PON is one PON port of an EPON blade: the OLT interface of DOT3-EPON-MIB.
type PON struct {
	Name  string
	MAC   [6]byte
	Index uint8 // the port's number on the blade (pon0 is 0)
	Stats MPCPStats
	ONUs  []ONU
}

// RegState is dot3MpcpRegistrationState.
type RegState uint8

// Registration states (RFC 4837 values).
const (
	Unregistered RegState = 1
	Registering  RegState = 2
	Registered   RegState = 3
)

// ONU is one LLID (virtual link) of a PON port.
type ONU struct {
	LLID  uint16
	MAC   [6]byte
	State RegState
	// RTT is dot3MpcpRoundTripTime, in 16 ns time quanta.
	RTT           uint32
	PendingGrants uint8
	// OAMStatus is the OLT's OAM discovery state with the ONU as DOT3-OAM-MIB (RFC 4878)
	// dot3OamOperStatus says it (1..10; operational(9) once discovery completed).
	OAMStatus uint8
	Stats     MPCPStats
}

// MPCPStats are dot3MpcpStatTable counters (RFC 4837 names without the dot3Mpcp prefix).
type MPCPStats struct {
	MACCtrlFramesTransmitted, MACCtrlFramesReceived uint64
	DiscoveryWindowsSent, DiscoveryTimeout          uint64
	RxRegRequest, RxRegAck, RxReport                uint64
	TxGate, TxRegister                              uint64
}

func (s *MPCPStats) fields() []*uint64 {
	return []*uint64{&s.MACCtrlFramesTransmitted, &s.MACCtrlFramesReceived, &s.DiscoveryWindowsSent,
		&s.DiscoveryTimeout, &s.RxRegRequest, &s.RxRegAck, &s.RxReport, &s.TxGate, &s.TxRegister}
}

// EventKind says what an Event reports.
type EventKind uint8

// Event kinds.
const (
	NewRoot         EventKind = 1 // the publishing bridge became the root (RFC 4188 newRoot)
	TopologyChange  EventKind = 2 // a topology change (RFC 4188 topologyChange)
	ONURegistered   EventKind = 3
	ONUDeregistered EventKind = 4 // deregistered by the OLT or the operator
	ONULost         EventKind = 5 // MPCP timeout or OAM link lost
)

func (k EventKind) String() string {
	switch k {
	case NewRoot:
		return "new-root"
	case TopologyChange:
		return "topology-change"
	case ONURegistered:
		return "onu-registered"
	case ONUDeregistered:
		return "onu-deregistered"
	case ONULost:
		return "onu-lost"
	}
	return fmt.Sprintf("event(%d)", uint8(k))
}

// Event is a state change a publisher reports at once. From is filled in by the receiver
// (the publisher's slot).
type Event struct {
	Kind EventKind
	From uint8
	// STP: the bridge and the root it sees, the topology change count.
	Bridge, Root    stp.BridgeID
	TopologyChanges uint64
	// EPON: the PON port and the ONU.
	PON      string
	PONIndex uint8
	LLID     uint16
	MAC      [6]byte
	RTT      uint32
}

// writer appends big-endian fields.
type writer struct{ b []byte }

func (w *writer) u8(v uint8)   { w.b = append(w.b, v) }
func (w *writer) u16(v uint16) { w.b = binary.BigEndian.AppendUint16(w.b, v) }
func (w *writer) u32(v uint32) { w.b = binary.BigEndian.AppendUint32(w.b, v) }
func (w *writer) u64(v uint64) { w.b = binary.BigEndian.AppendUint64(w.b, v) }
func (w *writer) dur(d time.Duration) {
	w.u64(uint64(max(d, 0)))
}
func (w *writer) bool(v bool) {
	if v {
		w.u8(1)
	} else {
		w.u8(0)
	}
}
func (w *writer) str(s string) {
	if len(s) > MaxName {
		s = s[:MaxName]
	}
	w.u8(uint8(len(s)))
	w.b = append(w.b, s...)
}

// reader consumes big-endian fields; the first error sticks and later reads return zero.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.err = ErrShort
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}
func (r *reader) u8() uint8 {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}
func (r *reader) u16() uint16 {
	if b := r.take(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}
func (r *reader) u32() uint32 {
	if b := r.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}
func (r *reader) u64() uint64 {
	if b := r.take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}
func (r *reader) dur() time.Duration {
	v := r.u64()
	if v > math.MaxInt64 {
		r.fail(fmt.Errorf("%w: duration %d", ErrBounds, v))
		return 0
	}
	return time.Duration(v)
}
func (r *reader) bool() bool { return r.u8() != 0 }
func (r *reader) str() string {
	n := int(r.u8())
	if n > MaxName {
		r.fail(fmt.Errorf("%w: name of %d octets", ErrBounds, n))
		return ""
	}
	return string(r.take(n))
}
func (r *reader) mac() (m [6]byte) {
	copy(m[:], r.take(6))
	return m
}
func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}
func (r *reader) count(max int, what string) int {
	n := int(r.u16())
	if n > max {
		r.fail(fmt.Errorf("%w: %d %s, at most %d", ErrBounds, n, what, max))
		return 0
	}
	return n
}
func (r *reader) done() error {
	if r.err == nil && len(r.b) != 0 {
		return fmt.Errorf("%w: %d", ErrTrail, len(r.b))
	}
	return r.err
}

// EncodeSTP encodes a switch blade's publication body.
func EncodeSTP(st STPState) ([]byte, error) {
	s := st.Snapshot
	if len(s.Ports) > MaxPorts {
		return nil, fmt.Errorf("%w: %d bridge ports", ErrBounds, len(s.Ports))
	}
	w := &writer{b: make([]byte, 0, 160+len(s.Ports)*150)}
	w.bool(st.Active)
	w.u64(uint64(s.ID))
	w.u16(s.Priority)
	w.u64(uint64(s.Root))
	w.bool(s.IsRoot)
	w.u16(s.RootPort)
	w.str(s.RootPortName)
	w.u32(s.RootPathCost)
	for _, d := range []time.Duration{s.MaxAge, s.HelloTime, s.ForwardDelay, s.HoldTime, s.BridgeMaxAge,
		s.BridgeHelloTime, s.BridgeForwardDelay, s.AgeingTime, s.AgeingInUse, s.SinceTopologyChange} {
		w.dur(d)
	}
	w.bool(s.TopologyChange)
	w.bool(s.TopologyChangeDetected)
	w.u64(s.TopologyChanges)
	w.u64(s.FDBErrors)
	w.u16(uint16(len(s.Ports)))
	for _, p := range s.Ports {
		w.u16(p.Number)
		w.str(p.Name)
		w.u16(uint16(p.ID))
		w.u8(p.Priority)
		w.bool(p.Enabled)
		w.u8(uint8(p.Role))
		w.u8(uint8(p.State))
		w.u32(p.PathCost)
		w.u64(uint64(p.DesignatedRoot))
		w.u32(p.DesignatedCost)
		w.u64(uint64(p.DesignatedBridge))
		w.u16(uint16(p.DesignatedPort))
		w.dur(p.MessageAge)
		w.dur(p.ForwardDelayTimer)
		c := p.PortCounters
		for _, v := range []uint64{c.ForwardTransitions, c.ConfigIn, c.TCNIn, c.RSTIn, c.BadIn, c.IgnoredIn,
			c.ConfigOut, c.TCNOut, c.TxErrors, c.StateErrors} {
			w.u64(v)
		}
	}
	if len(w.b) > MaxBody {
		return nil, fmt.Errorf("%w: STP body of %d octets", ErrBounds, len(w.b))
	}
	return w.b, nil
}

// DecodeSTP decodes a switch blade's publication body.
func DecodeSTP(b []byte) (STPState, error) {
	r := &reader{b: b}
	var st STPState
	s := &st.Snapshot
	st.Active = r.bool()
	s.ID = stp.BridgeID(r.u64())
	s.Priority = r.u16()
	s.Root = stp.BridgeID(r.u64())
	s.IsRoot = r.bool()
	s.RootPort = r.u16()
	s.RootPortName = r.str()
	s.RootPathCost = r.u32()
	for _, d := range []*time.Duration{&s.MaxAge, &s.HelloTime, &s.ForwardDelay, &s.HoldTime, &s.BridgeMaxAge,
		&s.BridgeHelloTime, &s.BridgeForwardDelay, &s.AgeingTime, &s.AgeingInUse, &s.SinceTopologyChange} {
		*d = r.dur()
	}
	s.TopologyChange = r.bool()
	s.TopologyChangeDetected = r.bool()
	s.TopologyChanges = r.u64()
	s.FDBErrors = r.u64()
	n := r.count(MaxPorts, "bridge ports")
	for i := 0; i < n && r.err == nil; i++ {
		var p stp.PortSnapshot
		p.Number = r.u16()
		p.Name = r.str()
		p.ID = stp.PortID(r.u16())
		p.Priority = r.u8()
		p.Enabled = r.bool()
		p.Role = stp.PortRole(r.u8())
		p.State = stp.PortState(r.u8())
		p.PathCost = r.u32()
		p.DesignatedRoot = stp.BridgeID(r.u64())
		p.DesignatedCost = r.u32()
		p.DesignatedBridge = stp.BridgeID(r.u64())
		p.DesignatedPort = stp.PortID(r.u16())
		p.MessageAge = r.dur()
		p.ForwardDelayTimer = r.dur()
		c := &p.PortCounters
		for _, v := range []*uint64{&c.ForwardTransitions, &c.ConfigIn, &c.TCNIn, &c.RSTIn, &c.BadIn, &c.IgnoredIn,
			&c.ConfigOut, &c.TCNOut, &c.TxErrors, &c.StateErrors} {
			*v = r.u64()
		}
		s.Ports = append(s.Ports, p)
	}
	if err := r.done(); err != nil {
		return STPState{}, fmt.Errorf("statefeed: stp: %w", err)
	}
	return st, nil
}

// EncodeEPON encodes an EPON blade's publication body.
func EncodeEPON(st EPONState) ([]byte, error) {
	if len(st.PONs) > MaxPONs {
		return nil, fmt.Errorf("%w: %d PON ports", ErrBounds, len(st.PONs))
	}
	onus := 0
	for _, p := range st.PONs {
		onus += len(p.ONUs)
	}
	if onus > MaxONUs {
		return nil, fmt.Errorf("%w: %d ONUs", ErrBounds, onus)
	}
	w := &writer{b: make([]byte, 0, 16+len(st.PONs)*100+onus*100)}
	w.u16(uint16(len(st.PONs)))
	for _, p := range st.PONs {
		w.str(p.Name)
		w.b = append(w.b, p.MAC[:]...)
		w.u8(p.Index)
		for _, v := range p.Stats.fields() {
			w.u64(*v)
		}
		w.u16(uint16(len(p.ONUs)))
		for _, u := range p.ONUs {
			w.u16(u.LLID)
			w.b = append(w.b, u.MAC[:]...)
			w.u8(uint8(u.State))
			w.u32(u.RTT)
			w.u8(u.PendingGrants)
			w.u8(u.OAMStatus)
			for _, v := range u.Stats.fields() {
				w.u64(*v)
			}
		}
	}
	if len(w.b) > MaxBody {
		return nil, fmt.Errorf("%w: EPON body of %d octets", ErrBounds, len(w.b))
	}
	return w.b, nil
}

// DecodeEPON decodes an EPON blade's publication body.
func DecodeEPON(b []byte) (EPONState, error) {
	r := &reader{b: b}
	var st EPONState
	n := r.count(MaxPONs, "PON ports")
	onus := 0
	for i := 0; i < n && r.err == nil; i++ {
		var p PON
		p.Name = r.str()
		p.MAC = r.mac()
		p.Index = r.u8()
		for _, v := range p.Stats.fields() {
			*v = r.u64()
		}
		m := r.count(MaxONUs-onus, "ONUs")
		onus += m
		for j := 0; j < m && r.err == nil; j++ {
			var u ONU
			u.LLID = r.u16()
			u.MAC = r.mac()
			u.State = RegState(r.u8())
			if u.State < Unregistered || u.State > Registered {
				r.fail(fmt.Errorf("%w: registration state %d", ErrBounds, u.State))
			}
			u.RTT = r.u32()
			u.PendingGrants = r.u8()
			u.OAMStatus = r.u8()
			if u.OAMStatus < 1 || u.OAMStatus > 10 {
				r.fail(fmt.Errorf("%w: OAM status %d", ErrBounds, u.OAMStatus))
			}
			for _, v := range u.Stats.fields() {
				*v = r.u64()
			}
			p.ONUs = append(p.ONUs, u)
		}
		st.PONs = append(st.PONs, p)
	}
	if err := r.done(); err != nil {
		return EPONState{}, fmt.Errorf("statefeed: epon: %w", err)
	}
	return st, nil
}

// EncodeEvent encodes an event body (one frame).
func EncodeEvent(e Event) []byte {
	w := &writer{b: make([]byte, 0, 64)}
	w.u8(uint8(e.Kind))
	w.u64(uint64(e.Bridge))
	w.u64(uint64(e.Root))
	w.u64(e.TopologyChanges)
	w.str(e.PON)
	w.u8(e.PONIndex)
	w.u16(e.LLID)
	w.b = append(w.b, e.MAC[:]...)
	w.u32(e.RTT)
	return w.b
}

// DecodeEvent decodes an event body.
func DecodeEvent(b []byte) (Event, error) {
	r := &reader{b: b}
	var e Event
	e.Kind = EventKind(r.u8())
	if e.Kind < NewRoot || e.Kind > ONULost {
		r.fail(fmt.Errorf("%w: event kind %d", ErrKind, e.Kind))
	}
	e.Bridge = stp.BridgeID(r.u64())
	e.Root = stp.BridgeID(r.u64())
	e.TopologyChanges = r.u64()
	e.PON = r.str()
	e.PONIndex = r.u8()
	e.LLID = r.u16()
	e.MAC = r.mac()
	e.RTT = r.u32()
	if err := r.done(); err != nil {
		return Event{}, fmt.Errorf("statefeed: event: %w", err)
	}
	return e, nil
}
