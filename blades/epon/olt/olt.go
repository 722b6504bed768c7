package olt

import (
	"encoding/binary"
	"fmt"
	"net"
	"sync"

	"github.com/cgoa/cgoa/blades/epon/dba"
	onupkg "github.com/cgoa/cgoa/blades/epon/onu"
	"github.com/cgoa/cgoa/netstack/mpcp"
	"github.com/cgoa/cgoa/netstack/oam"
	"github.com/cgoa/cgoa/netstack/ponlink"
)

// Clock is the OLT's MPCP clock in 16 ns time quanta. The OLT reads time
// only from it: virtual in tests and the simulator, the blade's monotonic
// clock in production.
type Clock interface{ Now() int64 }

// Port sends downstream frames on the PON: an Ethernet frame (no FCS) on
// an LLID, mode set for the broadcast channel. It must not call back into
// the OLT.
type Port interface {
	Send(llid uint16, mode bool, frame []byte) error
}

// Quanta per second and the time light takes per km of fibre (5 µs).
const (
	QuantaPerSecond = int64(1e9 / 16)
	quantaPerKm     = 5000.0 / 16
)

// Config sets up the OLT side of one PON port. Zero fields take the
// defaults noted.
type Config struct {
	// Name of the PON port ("pon0").
	Name string
	// MAC is the OLT port's address.
	MAC net.HardwareAddr
	// LineRate in bit/s (1e9).
	LineRate int64
	// MaxONUs the port registers (32); LLIDs are LLIDBase+0..MaxONUs-1.
	MaxONUs int
	// LLIDBase is the first LLID assigned (1).
	LLIDBase uint16
	// DBA names the algorithm (blades/epon/dba; "cgoa").
	DBA string
	// MaxCycle in quanta (125000, 2 ms).
	MaxCycle int64
	// MaxWindow in bytes (0: derived from MaxCycle and MaxONUs).
	MaxWindow int
	// Guard between bursts, quanta (62, about 1 µs).
	Guard int64
	// GateLead is the least time from sending a GATE to its window's
	// start at the ONU, quanta (100): the OLT's processing and, on an
	// emulated link, the socket's latency.
	GateLead int64
	// DiscoveryPeriod between discovery GATEs, quanta (100 ms).
	DiscoveryPeriod int64
	// DiscoveryWindow is the span unregistered ONUs spread their
	// REGISTER_REQs over, quanta (8192, 131 µs).
	DiscoveryWindow int64
	// MaxRTT is the longest round trip ranged, quanta (20 km: 12500 plus
	// a margin); REGISTER_REQs from farther are refused. An emulated PON
	// over sockets needs room for the socket latency.
	MaxRTT int64
	// SyncTime the OLT's receiver needs at a burst's start, quanta (32).
	SyncTime uint16
	// MPCPTimeout without a REPORT deregisters an ONU, quanta (1 s).
	MPCPTimeout int64
	// RepollAfter a window's end without its REPORT, the ONU is granted
	// again, quanta (MaxCycle).
	RepollAfter int64
	// IdlePoll delays the next GATE to an ONU that reported an empty
	// queue, quanta (62500, 1 ms), so idle ONUs are not polled every few
	// microseconds.
	IdlePoll int64
	// IdleGrid, if set, puts idle polls on a grid of this many quanta: an
	// idle ONU's next GATE goes at the first grid instant at least
	// IdlePoll after its REPORT, so it is polled every IdlePoll to
	// IdlePoll+IdleGrid. The idle ONUs of a PON are then polled together
	// (their REPORTs come back together as well), one wake-up for all of
	// them instead of one each: what an idle PON costs a blade is mostly
	// wake-ups, not frames.
	IdleGrid int64
	// OUI goes into the OLT's OAM Local Information TLV.
	OUI oam.OUI
}

func (c *Config) defaults() {
	if c.Name == "" {
		c.Name = "pon0"
	}
	if c.LineRate == 0 {
		c.LineRate = 1e9
	}
	if c.MaxONUs == 0 {
		c.MaxONUs = 32
	}
	if c.LLIDBase == 0 {
		c.LLIDBase = 1
	}
	if c.DBA == "" {
		c.DBA = "cgoa"
	}
	if c.MaxCycle == 0 {
		c.MaxCycle = 125000
	}
	if c.Guard == 0 {
		c.Guard = 62
	}
	if c.GateLead == 0 {
		c.GateLead = 100
	}
	if c.DiscoveryPeriod == 0 {
		c.DiscoveryPeriod = QuantaPerSecond / 10
	}
	if c.DiscoveryWindow == 0 {
		c.DiscoveryWindow = 8192
	}
	if c.MaxRTT == 0 {
		c.MaxRTT = 12500 + 500
	}
	if c.SyncTime == 0 {
		c.SyncTime = 32
	}
	if c.MPCPTimeout == 0 {
		c.MPCPTimeout = QuantaPerSecond
	}
	if c.RepollAfter == 0 {
		c.RepollAfter = c.MaxCycle
	}
	if c.IdlePoll == 0 {
		c.IdlePoll = QuantaPerSecond / 1000
	}
}

// regState is an ONU's registration state at the OLT.
type regState int

const (
	unregistered regState = iota
	ackPending
	registered
)

func (s regState) String() string {
	return [...]string{"deregistered", "registering", "registered"}[s]
}

// onu is what the OLT knows of one ONU (by MAC; kept after
// deregistration so show onu lists it and its counters).
type onu struct {
	mac     net.HardwareAddr
	key     string
	slot    int // -1 when not registered
	llid    uint16
	state   regState
	rtt     int64
	pending uint8

	lastReport int64 // OLT time of the last REPORT (or registration)
	win        dba.Window
	winOpen    bool // a GATE is out and its REPORT not back
	received   int  // data line bytes since the last REPORT
	deferred   bool // idle: the next GATE waits until deferAt
	deferAt    int64
	deferRep   dba.Report

	sla    dba.SLA
	slaErr string

	// nextSeq is the next sequence number expected of each stream of
	// numbered test frames (blades/epon/onu.NumberedFrame) from the ONU.
	nextSeq map[uint32]uint64

	oam   oamLink
	stats ONUStats
}

// OLT is the MPCP and OAM control of one PON port. Its methods are safe
// for concurrent use; callbacks run without its lock held.
type OLT struct {
	mu     sync.Mutex
	cfg    Config
	pon    dba.Config
	clock  Clock
	port   Port
	alg    dba.Algorithm
	poller *dba.Poller
	slas   interface{ SetSLA(int, dba.SLA) error }

	slots []*onu
	known map[string]*onu

	nextDiscovery int64
	// due is no later than the earliest deadline of any timer: Tick
	// scans the ONUs only from then on. Whatever sets a timer calls wake.
	due int64

	gate      mpcp.Gate
	grant     [1]mpcp.Grant
	discStart int64
	discEnd   int64
	free      int
	stats     PONStats
	alarms    []Alarm
	buf       []byte

	// OnAlarm gets alarms and registration events.
	OnAlarm func(Alarm)
	// OnData gets upstream data frames (not MPCP or OAM) from registered
	// ONUs, with their LLID and arrival time. The frame is only valid
	// during the call.
	OnData func(llid uint16, frame []byte, arrival int64)
}

// New returns the OLT for one PON port; it starts discovery at its first
// Tick.
func New(cfg Config, clock Clock, port Port) (*OLT, error) {
	cfg.defaults()
	if len(cfg.MAC) != 6 {
		return nil, fmt.Errorf("olt: %s: MAC %v: want 6 bytes", cfg.Name, cfg.MAC)
	}
	if cfg.MaxONUs < 1 || int(cfg.LLIDBase)+cfg.MaxONUs > int(ponlink.BroadcastLLID) {
		return nil, fmt.Errorf("olt: %s: %d ONUs from LLID %d do not fit below the broadcast LLID", cfg.Name, cfg.MaxONUs, cfg.LLIDBase)
	}
	if cfg.DiscoveryWindow < 64 || cfg.DiscoveryWindow > 0xffff {
		return nil, fmt.Errorf("olt: %s: discovery window %d quanta, want 64..65535", cfg.Name, cfg.DiscoveryWindow)
	}
	if cfg.IdleGrid < 0 || cfg.IdleGrid > cfg.MPCPTimeout/4 {
		return nil, fmt.Errorf("olt: %s: idle grid %d quanta, want 0..%d (a quarter of the MPCP timeout)", cfg.Name, cfg.IdleGrid, cfg.MPCPTimeout/4)
	}
	pon := dba.Config{ONUs: cfg.MaxONUs, LineRate: cfg.LineRate, Guard: cfg.Guard, MaxCycle: cfg.MaxCycle, MaxWindow: cfg.MaxWindow}
	alg, err := dba.New(cfg.DBA, pon)
	if err != nil {
		return nil, fmt.Errorf("olt: %s: %w", cfg.Name, err)
	}
	if err := pon.Validate(); err != nil {
		return nil, fmt.Errorf("olt: %s: %w", cfg.Name, err)
	}
	cfg.MAC = append(net.HardwareAddr(nil), cfg.MAC...)
	o := &OLT{
		cfg: cfg, pon: pon, clock: clock, port: port, alg: alg,
		poller: dba.NewPoller(pon, alg),
		slots:  make([]*onu, cfg.MaxONUs), known: map[string]*onu{},
		free: cfg.MaxONUs, nextDiscovery: clock.Now(),
	}
	o.poller.Proc = cfg.GateLead
	o.slas, _ = alg.(interface{ SetSLA(int, dba.SLA) error })
	for i := range o.slots {
		o.releaseSlot(i)
	}
	return o, nil
}

// releaseSlot tells the DBA slot i is empty: nothing queued, so the
// guaranteed window it keeps is excess the loaded ONUs share (CGOA's
// redistribution); with few ONUs on the PON that is what fills the line.
func (o *OLT) releaseSlot(i int) {
	if o.slas != nil {
		if err := o.slas.SetSLA(i, dba.SLA{}); err != nil {
			// The others' guarantees took its share.
			_ = o.slas.SetSLA(i, dba.SLA{Guaranteed: 1})
		}
	}
	o.alg.Size(dba.Report{ONU: i, Now: o.clock.Now()}, 0)
}

// DBAConfig is the DBA configuration the OLT runs (MaxWindow filled).
func (o *OLT) DBAConfig() dba.Config { return o.pon }

// deliver runs queued alarm callbacks; call without the lock.
func (o *OLT) deliver(alarms []Alarm) {
	if o.OnAlarm == nil {
		return
	}
	for _, a := range alarms {
		o.OnAlarm(a)
	}
}

func (o *OLT) unlock() {
	a := o.alarms
	o.alarms = nil
	o.mu.Unlock()
	o.deliver(a)
}

func (o *OLT) raise(kind AlarmKind, u *onu, text string) {
	a := Alarm{Kind: kind, Severity: kind.Severity(), PON: o.cfg.Name, Time: o.clock.Now(), Text: text}
	if u != nil {
		a.LLID, a.MAC = u.llid, u.mac.String()
	}
	o.alarms = append(o.alarms, a)
}

func (o *OLT) send(llid uint16, mode bool, frame []byte, u *onu) {
	if err := o.port.Send(llid, mode, frame); err != nil {
		o.stats.TxErrors++
		return
	}
	o.stats.TxFrames++
	if u != nil {
		u.stats.TxFrames++
	}
}

func (o *OLT) sendMPCP(dst net.HardwareAddr, llid uint16, mode bool, m mpcp.Message, u *onu) {
	f := mpcp.Frame{Destination: dst, Source: o.cfg.MAC, Timestamp: uint32(o.clock.Now()), Message: m}
	b, err := f.MarshalBinary()
	if err != nil {
		o.stats.TxErrors++
		return
	}
	o.stats.MACCtrlFramesTransmitted++
	if u != nil {
		u.stats.MACCtrlFramesTransmitted++
	}
	switch m.(type) {
	case *mpcp.Gate:
		o.stats.TxGate++
		if u != nil {
			u.stats.TxGate++
		}
	case *mpcp.Register:
		o.stats.TxRegister++
		if u != nil {
			u.stats.TxRegister++
		}
	}
	o.send(llid, mode, b, u)
}

// Receive handles an upstream frame (Ethernet, no FCS) on llid whose
// first bit arrived at arrival (OLT quanta). Bad frames are counted and
// dropped.
func (o *OLT) Receive(llid uint16, frame []byte, arrival int64) {
	o.mu.Lock()
	o.stats.RxFrames++
	if len(frame) < 14 {
		o.stats.RxErrors++
		o.unlock()
		return
	}
	var u *onu
	if s := int(llid) - int(o.cfg.LLIDBase); s >= 0 && s < len(o.slots) {
		u = o.slots[s]
	}
	switch binary.BigEndian.Uint16(frame[12:14]) {
	case uint16(mpcp.EtherType):
		o.receiveMPCP(llid, u, frame, arrival)
	case uint16(oam.EtherType):
		if u == nil || u.state != registered {
			o.stats.RxUnknownLLID++
			break
		}
		o.receiveOAM(u, frame)
	default:
		if u == nil || u.state != registered {
			o.stats.RxUnknownLLID++
			break
		}
		u.stats.RxDataFrames++
		u.stats.RxDataBytes += uint64(len(frame))
		u.countNumbered(frame)
		u.received += len(frame) + 4 + dba.FrameOverhead
		o.stats.RxDataFrames++
		if h := o.OnData; h != nil {
			o.unlock()
			h(llid, frame, arrival)
			return
		}
	}
	o.unlock()
}

// countNumbered counts a numbered test frame and the gaps in its
// stream's sequence (frames lost between the ONU's queue and here); EPON
// keeps order, so a number already passed is counted out of order.
func (u *onu) countNumbered(frame []byte) {
	stream, seq, ok := onupkg.ParseNumbered(frame)
	if !ok {
		return
	}
	u.stats.RxTestFrames++
	if u.nextSeq == nil {
		u.nextSeq = map[uint32]uint64{}
	}
	next, known := u.nextSeq[stream]
	switch {
	case !known || seq == next:
	case seq > next:
		u.stats.RxDataLost += seq - next
	default:
		u.stats.RxDataOutOfOrder++
		return
	}
	u.nextSeq[stream] = seq + 1
}

// rttOf is the round trip from a timestamp the ONU stamped and the OLT
// time it arrived (802.3 64.2.2.4), or -1 when it is out of range.
func (o *OLT) rttOf(ts uint32, arrival int64) int64 {
	rtt := int64(int32(uint32(arrival) - ts))
	if rtt < 0 || rtt > o.cfg.MaxRTT {
		return -1
	}
	return rtt
}

func (o *OLT) receiveMPCP(llid uint16, u *onu, frame []byte, arrival int64) {
	var f mpcp.Frame
	if err := f.UnmarshalBinary(frame); err != nil {
		o.stats.RxErrors++
		return
	}
	o.stats.MACCtrlFramesReceived++
	now := o.clock.Now()
	switch m := f.Message.(type) {
	case *mpcp.RegisterReq:
		o.stats.RxRegRequest++
		if m.Flags == mpcp.ReqDeregister {
			if u != nil && u.state != unregistered && string(u.mac) == string(f.Source) {
				o.deregister(u, "ONU asked to deregister", false)
			}
			return
		}
		if llid != ponlink.BroadcastLLID {
			o.stats.RxErrors++
			return
		}
		if arrival < o.discStart || arrival > o.discEnd {
			o.stats.OutOfWindow++
			return
		}
		o.register(f.Source, m, o.rttOf(f.Timestamp, arrival), now)
	case *mpcp.RegisterAck:
		if u == nil || string(u.mac) != string(f.Source) {
			o.stats.RxUnknownLLID++
			return
		}
		o.stats.RxRegAck++
		u.stats.RxRegAck++
		u.stats.MACCtrlFramesReceived++
		if u.state != ackPending {
			return
		}
		if m.Flags != mpcp.AckAck || m.EchoedAssignedPort != u.llid {
			o.deregister(u, "REGISTER_ACK refused", false)
			return
		}
		if rtt := o.rttOf(f.Timestamp, arrival); rtt >= 0 {
			u.rtt = rtt
		}
		u.state = registered
		u.lastReport = now
		u.winOpen = false
		o.stats.Registrations++
		u.stats.Registrations++
		o.raise(AlarmRegistered, u, fmt.Sprintf("registered, RTT %d TQ", u.rtt))
		o.oamStart(u, now)
		o.poll(u, dba.Report{ONU: u.slot, Now: now})
	case *mpcp.Report:
		if u == nil || u.state != registered || string(u.mac) != string(f.Source) {
			o.stats.RxUnknownLLID++
			return
		}
		o.stats.RxReport++
		u.stats.RxReport++
		u.stats.MACCtrlFramesReceived++
		if rtt := o.rttOf(f.Timestamp, arrival); rtt >= 0 {
			u.rtt = rtt
		}
		u.lastReport = now
		queued, aligned := 0, 0
		for i, qs := range m.QueueSets {
			q := o.pon.QuantaToBytes(int64(qs.Lengths[0]))
			queued = max(queued, q)
			if i == 0 || q < aligned {
				aligned = q
			}
		}
		if len(m.QueueSets) < 2 {
			aligned = 0
		}
		r := dba.Report{ONU: u.slot, Now: now, Queued: queued, Aligned: aligned, Received: u.received}
		if u.winOpen {
			r.Granted = u.win.Data
		}
		u.received = 0
		u.winOpen = false
		if queued == 0 {
			// Idle: poll again after IdlePoll, not at once.
			at := now + o.cfg.IdlePoll
			if g := o.cfg.IdleGrid; g > 0 {
				at = (at + g - 1) / g * g
			}
			u.deferred, u.deferAt, u.deferRep = true, at, r
			o.wake(u.deferAt)
			return
		}
		if at := o.poller.NotBefore(r, u.rtt); at > now {
			// At its peak rate: poll when it may send again.
			o.stats.PacedPolls++
			u.deferred, u.deferAt, u.deferRep = true, at, r
			o.wake(at)
			return
		}
		o.poll(u, r)
	default:
		// GATE and REGISTER only travel downstream.
		o.stats.RxErrors++
	}
}

// poll grants u its next window through the DBA and sends the GATE.
func (o *OLT) poll(u *onu, r dba.Report) {
	u.deferred = false
	w := o.poller.Next(r, u.rtt)
	u.win, u.winOpen = w, true
	o.wake(w.End() + o.cfg.RepollAfter)
	// One GATE per REPORT: reuse the message (MarshalBinary keeps none).
	o.grant[0] = mpcp.Grant{Start: uint32(w.Start - u.rtt), Length: uint16(w.Length), ForceReport: true}
	o.gate = mpcp.Gate{Grants: o.grant[:]}
	o.sendMPCP(u.mac, u.llid, false, &o.gate, u)
}

func (o *OLT) register(mac net.HardwareAddr, m *mpcp.RegisterReq, rtt int64, now int64) {
	key := string(mac)
	u := o.known[key]
	if u != nil && u.state != unregistered {
		// The ONU lost its registration (a reboot) before we timed it out.
		o.deregister(u, "re-registering", true)
	}
	if rtt < 0 {
		o.stats.RangeErrors++
		o.sendMPCP(mac, ponlink.BroadcastLLID, true, &mpcp.Register{Flags: mpcp.RegNack, SyncTime: o.cfg.SyncTime}, u)
		return
	}
	if u == nil {
		u = &onu{mac: append(net.HardwareAddr(nil), mac...), key: key, slot: -1}
		o.known[key] = u
	}
	// Keep an ONU's LLID across registrations when its slot is free.
	slot := -1
	if u.llid != 0 {
		if s := int(u.llid - o.cfg.LLIDBase); s < len(o.slots) && o.slots[s] == nil {
			slot = s
		}
	}
	for i := 0; slot < 0 && i < len(o.slots); i++ {
		if o.slots[i] == nil {
			slot = i
		}
	}
	if slot < 0 {
		o.stats.RegisterNacks++
		o.sendMPCP(mac, ponlink.BroadcastLLID, true, &mpcp.Register{Flags: mpcp.RegNack, SyncTime: o.cfg.SyncTime}, u)
		return
	}
	o.slots[slot] = u
	o.free--
	u.slot, u.llid, u.state, u.rtt, u.pending = slot, o.cfg.LLIDBase+uint16(slot), ackPending, rtt, m.PendingGrants
	u.lastReport, u.received, u.deferred, u.winOpen = now, 0, false, false
	o.wake(now + o.cfg.MPCPTimeout)
	u.stats.RxRegRequest++
	u.stats.MACCtrlFramesReceived++
	u.stats.RTT = rtt
	o.applySLA(u)
	o.sendMPCP(mac, ponlink.BroadcastLLID, true, &mpcp.Register{
		AssignedPort: u.llid, Flags: mpcp.RegAck, SyncTime: o.cfg.SyncTime, EchoedPendingGrants: m.PendingGrants}, u)
	// The ONU answers REGISTER_ACK in its first grant.
	o.poll(u, dba.Report{ONU: slot, Now: now})
}

func (o *OLT) applySLA(u *onu) {
	u.slaErr = ""
	if o.slas == nil || u.slot < 0 {
		if u.sla != (dba.SLA{}) {
			u.slaErr = fmt.Sprintf("DBA %s has no SLA", o.alg.Name())
		}
		return
	}
	err := o.slas.SetSLA(u.slot, u.sla)
	if err != nil {
		// Empty slots give up their guarantee to admit this one.
		for i, v := range o.slots {
			if v == nil {
				_ = o.slas.SetSLA(i, dba.SLA{Guaranteed: 1})
			}
		}
		err = o.slas.SetSLA(u.slot, u.sla)
	}
	if err != nil {
		// Admission refused: best effort until the operator fixes it.
		u.slaErr = err.Error()
		_ = o.slas.SetSLA(u.slot, dba.SLA{Guaranteed: 1, Peak: u.sla.Peak})
	}
	// Empty slots take back what default share is left.
	for i, v := range o.slots {
		if v == nil {
			_ = o.slas.SetSLA(i, dba.SLA{})
		}
	}
}

// deregister drops u's registration; tell sends REGISTER(deregister).
func (o *OLT) deregister(u *onu, why string, quiet bool) {
	if u.state == unregistered {
		return
	}
	if !quiet {
		o.sendMPCP(u.mac, u.llid, false, &mpcp.Register{AssignedPort: u.llid, Flags: mpcp.RegDeregister, SyncTime: o.cfg.SyncTime}, u)
	}
	o.slots[u.slot] = nil
	o.free++
	o.releaseSlot(u.slot)
	u.slot, u.state, u.winOpen, u.deferred = -1, unregistered, false, false
	u.oam.reset()
	o.stats.Deregistrations++
	u.stats.Deregistrations++
	o.raise(AlarmDeregistered, u, why)
}

// Tick does what is due at the clock's now (discovery windows, deferred
// polls, re-polls, MPCP timeouts, OAM keep-alives) and returns the OLT
// time it next needs a Tick.
func (o *OLT) Tick() int64 {
	o.mu.Lock()
	defer o.unlock()
	now := o.clock.Now()
	if now < o.due {
		return o.due
	}
	next := now + o.cfg.DiscoveryPeriod
	if now >= o.nextDiscovery {
		o.nextDiscovery = now + o.cfg.DiscoveryPeriod
		if o.free > 0 {
			o.discovery(now)
		}
	}
	next = min(next, o.nextDiscovery)
	for _, u := range o.slots {
		if u == nil {
			continue
		}
		if now-u.lastReport >= o.cfg.MPCPTimeout {
			o.stats.Timeouts++
			u.stats.Timeouts++
			o.deregister(u, "MPCP timeout: no REPORT", false)
			o.raise(AlarmMPCPTimeout, u, fmt.Sprintf("no REPORT for %d TQ", now-u.lastReport))
			continue
		}
		next = min(next, u.lastReport+o.cfg.MPCPTimeout)
		switch {
		case u.deferred:
			if now >= u.deferAt {
				r := u.deferRep
				r.Now = now
				o.poll(u, r)
			} else {
				next = min(next, u.deferAt)
			}
		case u.winOpen:
			if due := u.win.End() + o.cfg.RepollAfter; now >= due {
				// The REPORT (or REGISTER_ACK) was lost: grant again.
				o.stats.Repolls++
				u.stats.Repolls++
				o.poll(u, dba.Report{ONU: u.slot, Now: now, Granted: u.win.Data, Received: u.received})
				u.received = 0
			} else {
				next = min(next, due)
			}
		}
		if u.winOpen {
			next = min(next, u.win.End()+o.cfg.RepollAfter)
		}
		if u.state == registered {
			next = min(next, o.oamTick(u, now))
		}
	}
	o.due = max(next, now+1)
	return o.due
}

// wake makes sure Tick looks at the ONUs again by t.
func (o *OLT) wake(t int64) { o.due = min(o.due, t) }

// discovery opens a discovery window: it reserves the upstream channel
// for the spread of REGISTER_REQs and the round trips, and broadcasts the
// discovery GATE.
func (o *OLT) discovery(now int64) {
	req := o.pon.BytesToQuanta(dba.ReportBytes)
	span := o.cfg.DiscoveryWindow + o.cfg.MaxRTT + req
	start := o.poller.Reserve(now+o.cfg.GateLead, span)
	o.discStart, o.discEnd = start, start+span
	o.stats.DiscoveryWindowsSent++
	o.sendMPCP(mpcp.MACControlAddr, ponlink.BroadcastLLID, true, &mpcp.Gate{
		Discovery: true, SyncTime: o.cfg.SyncTime,
		Grants: []mpcp.Grant{{Start: uint32(start), Length: uint16(o.cfg.DiscoveryWindow)}},
	}, nil)
}
