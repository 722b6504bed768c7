package amf

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cgoa/cgoa/ha/clm"
	"github.com/cgoa/cgoa/ha/quorum"
)

// Payload codecs of the frames the AMF node exchanges. The sender's slot
// and incarnation come from the authenticated frame header, never from
// the payload, so a member cannot speak for another.

var errWire = errors.New("amf: malformed payload")

type writer struct{ b []byte }

func (w *writer) u8(v uint8)   { w.b = append(w.b, v) }
func (w *writer) u64(v uint64) { w.b = binary.BigEndian.AppendUint64(w.b, v) }
func (w *writer) str(s string) {
	if len(s) > 255 {
		s = s[:255]
	}
	w.u8(uint8(len(s)))
	w.b = append(w.b, s...)
}
func (w *writer) count(n int) uint8 {
	if n > 255 {
		n = 255
	}
	w.u8(uint8(n))
	return uint8(n)
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) u8() uint8 {
	if r.err != nil || len(r.b) < 1 {
		r.err = errWire
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) u64() uint64 {
	if r.err != nil || len(r.b) < 8 {
		r.err = errWire
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) bool() bool {
	v := r.u8()
	if v > 1 {
		r.err = errWire
	}
	return v == 1
}

func (r *reader) str() string {
	n := int(r.u8())
	if r.err != nil || len(r.b) < n {
		r.err = errWire
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *reader) done(what string) error {
	if r.err == nil && len(r.b) != 0 {
		r.err = errWire
	}
	if r.err != nil {
		return fmt.Errorf("amf: decode %s: %w", what, r.err)
	}
	return nil
}

// UnitReport is a unit's state as its node announces it in heartbeats.
type UnitReport struct {
	Name      string
	Ready     bool
	State     HAState
	Instances []string
}

// Heartbeat is the payload of a heartbeat frame.
type Heartbeat struct {
	Hear  []clm.Peer
	Held  []string // lease keys the sender holds now
	Units []UnitReport
}

// MarshalHeartbeat encodes hb.
func MarshalHeartbeat(hb Heartbeat) []byte {
	var w writer
	n := w.count(len(hb.Hear))
	for _, p := range hb.Hear[:n] {
		w.u8(p.Slot)
		w.u64(p.Inc)
	}
	n = w.count(len(hb.Held))
	for _, k := range hb.Held[:n] {
		w.str(k)
	}
	n = w.count(len(hb.Units))
	for _, u := range hb.Units[:n] {
		w.str(u.Name)
		ready := uint8(0)
		if u.Ready {
			ready = 1
		}
		w.u8(ready)
		w.u8(uint8(u.State))
		m := w.count(len(u.Instances))
		for _, si := range u.Instances[:m] {
			w.str(si)
		}
	}
	return w.b
}

// UnmarshalHeartbeat decodes a heartbeat payload.
func UnmarshalHeartbeat(b []byte) (Heartbeat, error) {
	r := reader{b: b}
	var hb Heartbeat
	for i, n := 0, int(r.u8()); i < n && r.err == nil; i++ {
		hb.Hear = append(hb.Hear, clm.Peer{Slot: r.u8(), Inc: r.u64()})
	}
	for i, n := 0, int(r.u8()); i < n && r.err == nil; i++ {
		hb.Held = append(hb.Held, r.str())
	}
	for i, n := 0, int(r.u8()); i < n && r.err == nil; i++ {
		u := UnitReport{Name: r.str(), Ready: r.bool(), State: HAState(r.u8())}
		if u.State > Quiesced {
			r.err = errWire
		}
		for j, m := 0, int(r.u8()); j < m && r.err == nil; j++ {
			u.Instances = append(u.Instances, r.str())
		}
		hb.Units = append(hb.Units, u)
	}
	return hb, r.done("heartbeat")
}

// LeaseMsg is the payload of a lease frame: requests and releases of the
// sender, and its replies as a voter.
type LeaseMsg struct {
	Requests []quorum.Request
	Replies  []quorum.Reply
	Releases []quorum.Release
}

// MarshalLease encodes m. From and Inc fields are not encoded: the
// receiver takes them from the frame header.
func MarshalLease(m LeaseMsg) []byte {
	var w writer
	n := w.count(len(m.Requests))
	for _, q := range m.Requests[:n] {
		w.str(q.Key)
		w.u64(q.Seq)
		h := uint8(0)
		if q.Holding {
			h |= 1
		}
		if q.InQuorum {
			h |= 2
		}
		w.u8(h)
	}
	n = w.count(len(m.Replies))
	for _, p := range m.Replies[:n] {
		w.str(p.Key)
		w.u8(p.To)
		w.u64(p.Inc)
		w.u64(p.Seq)
		g := uint8(0)
		if p.Granted {
			g = 1
		}
		w.u8(g)
	}
	n = w.count(len(m.Releases))
	for _, l := range m.Releases[:n] {
		w.str(l.Key)
		w.u64(l.UpTo)
	}
	return w.b
}

// UnmarshalLease decodes a lease payload sent by slot from, incarnation inc.
func UnmarshalLease(b []byte, from uint8, inc uint64) (LeaseMsg, error) {
	r := reader{b: b}
	var m LeaseMsg
	for i, n := 0, int(r.u8()); i < n && r.err == nil; i++ {
		q := quorum.Request{Key: r.str(), From: from, Inc: inc, Seq: r.u64()}
		flags := r.u8()
		if flags > 3 {
			r.err = errWire
		}
		q.Holding, q.InQuorum = flags&1 != 0, flags&2 != 0
		m.Requests = append(m.Requests, q)
	}
	for i, n := 0, int(r.u8()); i < n && r.err == nil; i++ {
		m.Replies = append(m.Replies, quorum.Reply{Key: r.str(), From: from, To: r.u8(), Inc: r.u64(), Seq: r.u64(), Granted: r.bool()})
	}
	for i, n := 0, int(r.u8()); i < n && r.err == nil; i++ {
		m.Releases = append(m.Releases, quorum.Release{Key: r.str(), From: from, Inc: inc, UpTo: r.u64()})
	}
	return m, r.done("lease")
}

// MarshalBeat encodes the payload of a beat frame (transport.TypeBeat):
// a heartbeat and the sender's lease message of the same interval, so that
// a member sends one frame per interval instead of two or three. Layout:
// the heartbeat's length (2 bytes), the heartbeat, the lease message.
func MarshalBeat(hb Heartbeat, m LeaseMsg) []byte {
	h := MarshalHeartbeat(hb)
	b := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(h)+64), uint16(len(h)))
	return append(append(b, h...), MarshalLease(m)...)
}

// UnmarshalBeat decodes a beat payload sent by slot from, incarnation inc.
func UnmarshalBeat(b []byte, from uint8, inc uint64) (Heartbeat, LeaseMsg, error) {
	if len(b) < 2 || len(b)-2 < int(binary.BigEndian.Uint16(b)) {
		return Heartbeat{}, LeaseMsg{}, fmt.Errorf("amf: decode beat: %w", errWire)
	}
	n := 2 + int(binary.BigEndian.Uint16(b))
	hb, err := UnmarshalHeartbeat(b[2:n])
	if err != nil {
		return Heartbeat{}, LeaseMsg{}, fmt.Errorf("amf: decode beat: %w", err)
	}
	m, err := UnmarshalLease(b[n:], from, inc)
	if err != nil {
		return Heartbeat{}, LeaseMsg{}, fmt.Errorf("amf: decode beat: %w", err)
	}
	return hb, m, nil
}

// empty reports whether m carries nothing.
func (m LeaseMsg) empty() bool { return len(m.Requests)+len(m.Replies)+len(m.Releases) == 0 }

// MarshalLinks encodes a member's carrier report (transport.TypeLinks):
// the slots whose channel to the sender has no carrier, ascending.
func MarshalLinks(down []uint8) []byte {
	var w writer
	n := w.count(len(down))
	for _, s := range down[:n] {
		w.u8(s)
	}
	return w.b
}

// UnmarshalLinks decodes a carrier report. Slots must be ascending,
// without 0, 255 or repeats.
func UnmarshalLinks(b []byte) ([]uint8, error) {
	r := reader{b: b}
	var down []uint8
	for i, n := 0, int(r.u8()); i < n && r.err == nil; i++ {
		s := r.u8()
		if s == 0 || s == 0xff || (len(down) > 0 && s <= down[len(down)-1]) {
			r.err = errWire
		}
		down = append(down, s)
	}
	if err := r.done("links"); err != nil {
		return nil, err
	}
	return down, nil
}

// AdminOp is an administrative operation.
type AdminOp uint8

// Admin operations.
const (
	OpSwitchover AdminOp = iota + 1 // target: service group
	OpLock                          // target: service unit
	OpUnlock                        // target: service unit
	OpRepair                        // target: service unit
)

func (o AdminOp) String() string {
	switch o {
	case OpSwitchover:
		return "switchover"
	case OpLock:
		return "lock"
	case OpUnlock:
		return "unlock"
	case OpRepair:
		return "repair"
	}
	return fmt.Sprintf("AdminOp(%d)", uint8(o))
}

// Admin is an administrative operation as the nodes exchange it.
type Admin struct {
	Op     AdminOp
	Target string
	// Units, for a switchover, are the group's units the requester saw
	// active: only they hand over. The frame reaches the nodes at
	// different instants; a unit that took the group since (on this very
	// switchover, from a node the frame reached first) keeps it instead of
	// handing it back. Empty: every active unit of the group (a frame from
	// a member older than the field).
	Units []string
}

// MarshalAdmin encodes an admin operation: the op and its target, then,
// only if there are any, the units (a count and the names; a frame
// without them is the older form, which every member decodes).
func MarshalAdmin(a Admin) []byte {
	var w writer
	w.u8(uint8(a.Op))
	w.str(a.Target)
	if len(a.Units) > 0 {
		for _, u := range a.Units[:w.count(len(a.Units))] {
			w.str(u)
		}
	}
	return w.b
}

// UnmarshalAdmin decodes an admin operation.
func UnmarshalAdmin(b []byte) (Admin, error) {
	r := reader{b: b}
	a := Admin{Op: AdminOp(r.u8()), Target: r.str()}
	if r.err == nil && (a.Op < OpSwitchover || a.Op > OpRepair) {
		r.err = errWire
	}
	if r.err == nil && len(r.b) > 0 {
		n := int(r.u8())
		if n == 0 {
			r.err = errWire // the units are left out, never sent as none
		}
		for range n {
			a.Units = append(a.Units, r.str())
		}
	}
	return a, r.done("admin")
}
