package onu

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"

	"github.com/cgoa/cgoa/blades/epon/dba"
	"github.com/cgoa/cgoa/netstack/mpcp"
	"github.com/cgoa/cgoa/netstack/oam"
	"github.com/cgoa/cgoa/netstack/ponlink"
)

// Clock is the ONU's free-running oscillator, in 16 ns time quanta. The
// ONU's MPCP local time is this plus the offset it learns from the OLT's
// timestamps.
type Clock interface{ Now() int64 }

// Transmitter puts upstream frames on the fibre.
type Transmitter interface {
	// Transmit sends an Ethernet frame (no FCS) on llid; its first bit
	// leaves the ONU at at (the ONU's raw clock, quanta, at or after
	// now: a burst is handed over whole when its grant opens).
	Transmit(llid uint16, frame []byte, at int64)
}

// State is the ONU's MPCP registration state.
type State int

// MPCP states of the ONU.
const (
	// Off: powered down, deaf and mute.
	Off State = iota
	// Discovery: waiting for a discovery GATE to register in.
	Discovery
	// Registering: REGISTER_REQ sent, waiting for REGISTER.
	Registering
	// AckPending: REGISTER received, waiting for the GATE that carries
	// the REGISTER_ACK.
	AckPending
	// Registered: polled by the OLT.
	Registered
)

func (s State) String() string {
	switch s {
	case Off:
		return "off"
	case Discovery:
		return "discovery"
	case Registering:
		return "registering"
	case AckPending:
		return "ack-pending"
	case Registered:
		return "registered"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Defaults.
const (
	// DefaultMPCPTimeout is 802.3's mpcp_timeout, 1 s: a registered ONU
	// that hears no GATE for this long deregisters itself.
	DefaultMPCPTimeout = int64(1e9 / 16)
	// DefaultQueueLimit is the upstream queue, bytes of line time.
	DefaultQueueLimit = 4 << 20
	// OAMPeriod is the OAM pdu_timer: one Information a second at least.
	OAMPeriod = int64(1e9 / 16)
)

// Config sets an ONU up.
type Config struct {
	MAC net.HardwareAddr
	// LineRate in bit/s (1e9 when zero).
	LineRate int64
	// PendingGrants the ONU can hold (4 when zero).
	PendingGrants uint8
	// QueueLimit is the upstream queue size in bytes of line time
	// (DefaultQueueLimit when zero).
	QueueLimit int
	// Threshold, when not zero, adds a REPORT queue set with the whole
	// frames at the head of the queue up to this many bytes (the OLT's
	// maximum window), so a capped grant can be filled exactly.
	Threshold int
	// MPCPTimeout in quanta (DefaultMPCPTimeout when zero).
	MPCPTimeout int64
	// MaxBackoff is the most discovery windows a failed REGISTER_REQ
	// makes the ONU skip (16 when zero): binary exponential back-off.
	MaxBackoff int
	// Seed makes the random back-off deterministic.
	Seed uint64
	// VendorOUI goes into the ONU's OAM Local Information TLV.
	VendorOUI oam.OUI
}

// Stats are an ONU's counters.
type Stats struct {
	TxRegisterReq    uint64 `json:"tx_register_req"`
	RxRegister       uint64 `json:"rx_register"`
	TxRegisterAck    uint64 `json:"tx_register_ack"`
	RxGate           uint64 `json:"rx_gate"`
	RxDiscoveryGate  uint64 `json:"rx_discovery_gate"`
	TxReport         uint64 `json:"tx_report"`
	Registrations    uint64 `json:"registrations"`
	Deregistrations  uint64 `json:"deregistrations"`
	Timeouts         uint64 `json:"timeouts"`
	Backoffs         uint64 `json:"backoffs"`
	GrantsDropped    uint64 `json:"grants_dropped"`
	TxFrames         uint64 `json:"tx_frames"`
	TxBytes          uint64 `json:"tx_bytes"`
	RxFrames         uint64 `json:"rx_frames"`
	RxBytes          uint64 `json:"rx_bytes"`
	DropQueueFull    uint64 `json:"drop_queue_full"`
	DropUnregistered uint64 `json:"drop_unregistered"`
	RxErrors         uint64 `json:"rx_errors"`
	TxErrors         uint64 `json:"tx_errors"`
	// LoopedBack counts data frames returned in remote loopback;
	// DropLoopback the ONU's own frames discarded meanwhile.
	LoopedBack   uint64 `json:"looped_back"`
	DropLoopback uint64 `json:"drop_loopback"`
	OAMTx        uint64 `json:"oam_tx"`
	OAMRx        uint64 `json:"oam_rx"`
}

type grant struct {
	start, length int64 // local time, quanta
	force         bool
	discovery     bool
}

type queued struct {
	frame []byte
	line  int // bytes of line time
}

// ONU is one ONU's MPCP state machine with its upstream queue and its
// OAM responder. It is not safe for concurrent use; the caller
// serialises Receive, Tick and the other methods.
type ONU struct {
	cfg   Config
	clock Clock
	tx    Transmitter
	pon   dba.Config
	rng   *rand.Rand

	state    State
	llid     uint16
	offset   int64 // local = raw + offset
	synced   bool
	syncTime uint16
	grants   []grant
	lastGate int64 // raw time of the last GATE (MPCP timer)
	attempts int
	skip     int

	ctrl, data []queued
	dataHead   int
	queuedLine int // bytes in data (line time)
	ctrlLine   int

	oam oamResponder

	stats Stats
	// OnData, when set, gets downstream frames for this ONU's LLID
	// (and broadcast data frames).
	OnData func(frame []byte)
	// OnState, when set, is called on every registration state change.
	OnState func(old, new State)
}

// New returns a powered-off ONU; call PowerOn.
func New(cfg Config, clock Clock, tx Transmitter) (*ONU, error) {
	if len(cfg.MAC) != 6 {
		return nil, fmt.Errorf("onu: MAC %v: want 6 bytes", cfg.MAC)
	}
	if cfg.LineRate == 0 {
		cfg.LineRate = 1e9
	}
	if cfg.LineRate < 1e6 {
		return nil, fmt.Errorf("onu %v: line rate %d bit/s", cfg.MAC, cfg.LineRate)
	}
	if cfg.PendingGrants == 0 {
		cfg.PendingGrants = 4
	}
	if cfg.QueueLimit == 0 {
		cfg.QueueLimit = DefaultQueueLimit
	}
	if cfg.MPCPTimeout == 0 {
		cfg.MPCPTimeout = DefaultMPCPTimeout
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 16
	}
	cfg.MAC = append(net.HardwareAddr(nil), cfg.MAC...)
	seed := cfg.Seed ^ uint64(binary.BigEndian.Uint16(cfg.MAC[:2]))<<32 ^ uint64(binary.BigEndian.Uint32(cfg.MAC[2:]))
	o := &ONU{
		cfg: cfg, clock: clock, tx: tx,
		pon: dba.Config{LineRate: cfg.LineRate},
		rng: rand.New(rand.NewPCG(seed, 0x0e0a)),
	}
	o.oam.init(o)
	return o, nil
}

// MAC is the ONU's address.
func (o *ONU) MAC() net.HardwareAddr { return o.cfg.MAC }

// State is the registration state.
func (o *ONU) State() State { return o.state }

// LLID is the assigned LLID (valid when Registered or AckPending).
func (o *ONU) LLID() uint16 { return o.llid }

// Stats returns a copy of the counters.
func (o *ONU) Stats() Stats { return o.stats }

// OAMState is the OAM discovery state.
func (o *ONU) OAMState() string { return o.oam.state.String() }

// Queued is the upstream queue occupancy in bytes of line time.
func (o *ONU) Queued() int { return o.queuedLine + o.ctrlLine }

// LocalTime is the ONU's MPCP clock (quanta).
func (o *ONU) LocalTime() int64 { return o.clock.Now() + o.offset }

func (o *ONU) setState(s State) {
	if s == o.state {
		return
	}
	old := o.state
	o.state = s
	if s == Registered {
		o.stats.Registrations++
	}
	if old >= AckPending && s < AckPending && s != Off {
		o.stats.Deregistrations++
	}
	if o.OnState != nil {
		o.OnState(old, s)
	}
}

// PowerOn starts the ONU in discovery (a no-op when already on).
func (o *ONU) PowerOn() {
	if o.state != Off {
		return
	}
	o.synced = false
	o.attempts, o.skip = 0, 0
	o.setState(Discovery)
}

// PowerOff loses all state and queues, as a power cut does (use
// DyingGasp first to tell the OLT).
func (o *ONU) PowerOff() {
	o.reset()
	o.ctrl, o.data, o.dataHead, o.queuedLine, o.ctrlLine = nil, nil, 0, 0, 0
	o.setState(Off)
}

// reset drops the registration.
func (o *ONU) reset() {
	o.llid = 0
	o.grants = o.grants[:0]
	o.oam.reset()
	// Control frames belong to the old registration.
	o.ctrl, o.ctrlLine = nil, 0
}

func (o *ONU) deregister() {
	o.reset()
	o.setState(Discovery)
}

// lineBytes is the line time of an Ethernet frame without FCS: FCS,
// preamble and inter-packet gap added.
func lineBytes(n int) int { return n + 4 + dba.FrameOverhead }

// LineBytes is the upstream line time (bytes) of an n-byte frame without
// FCS: the FCS, preamble and inter-packet gap added.
func LineBytes(n int) int { return lineBytes(n) }

// ErrNotRegistered and ErrQueueFull are returned by Enqueue.
var (
	ErrNotRegistered = errors.New("onu: not registered")
	ErrQueueFull     = errors.New("onu: upstream queue full")
	ErrLoopback      = errors.New("onu: in remote loopback")
)

// Enqueue queues an upstream Ethernet frame (no FCS); frames are sent in
// order inside the ONU's grants. Frames offered while not registered, in
// remote loopback or with the queue full are dropped and counted.
func (o *ONU) Enqueue(frame []byte) error {
	if o.state != Registered {
		o.stats.DropUnregistered++
		return ErrNotRegistered
	}
	if o.oam.loopback {
		o.stats.DropLoopback++
		return ErrLoopback
	}
	return o.enqueue(frame)
}

func (o *ONU) enqueue(frame []byte) error {
	lb := lineBytes(len(frame))
	if o.queuedLine+lb > o.cfg.QueueLimit {
		o.stats.DropQueueFull++
		return ErrQueueFull
	}
	o.data = append(o.data, queued{frame: frame, line: lb})
	o.queuedLine += lb
	return nil
}

// sendCtrl queues a control frame (OAM) ahead of the data.
func (o *ONU) sendCtrl(frame []byte) {
	lb := lineBytes(len(frame))
	o.ctrl = append(o.ctrl, queued{frame: frame, line: lb})
	o.ctrlLine += lb
}

// local64 widens a 32-bit MPCP time to the local 64-bit time nearest now.
func (o *ONU) local64(t uint32) int64 {
	now := o.LocalTime()
	return now + int64(int32(t-uint32(now)))
}

// Receive handles a downstream frame on llid (mode: the preamble's
// broadcast bit) that arrived at raw time arrival.
func (o *ONU) Receive(llid uint16, mode bool, frame []byte, arrival int64) {
	if o.state == Off {
		return
	}
	bcast := mode && llid == ponlink.BroadcastLLID
	mine := o.llid != 0 && llid == o.llid && o.state >= AckPending
	if !bcast && !mine {
		return // another ONU's LLID
	}
	if len(frame) < 14 {
		o.stats.RxErrors++
		return
	}
	switch binary.BigEndian.Uint16(frame[12:14]) {
	case uint16(mpcp.EtherType):
		var f mpcp.Frame
		if err := f.UnmarshalBinary(frame); err != nil {
			o.stats.RxErrors++
			return
		}
		o.mpcp(&f, mine, arrival)
	case uint16(oam.EtherType):
		if !mine || o.state != Registered {
			return
		}
		var p oam.PDU
		if err := p.UnmarshalBinary(frame); err != nil {
			o.stats.RxErrors++
			return
		}
		o.stats.OAMRx++
		o.oam.receive(&p)
	default:
		if !mine && !bcast {
			return
		}
		o.stats.RxFrames++
		o.stats.RxBytes += uint64(len(frame))
		if o.oam.loopback && mine && o.state == Registered {
			// The frame goes back as it came (802.3 57.2.11.1).
			if o.enqueue(append([]byte(nil), frame...)) == nil {
				o.stats.LoopedBack++
			}
			return
		}
		if o.OnData != nil {
			o.OnData(frame)
		}
	}
}

func (o *ONU) mpcp(f *mpcp.Frame, mine bool, arrival int64) {
	// The ONU's local clock follows the OLT's timestamps (802.3
	// 64.2.2.4): ranging relies on it.
	o.offset = int64(f.Timestamp) - arrival
	if !o.synced {
		// First timestamp: the offset is all there is.
		o.synced = true
	}
	switch m := f.Message.(type) {
	case *mpcp.Gate:
		if m.Discovery {
			o.stats.RxDiscoveryGate++
			o.discoveryGate(m)
			return
		}
		if !mine {
			return
		}
		o.stats.RxGate++
		o.lastGate = arrival
		for _, g := range m.Grants {
			if len(o.grants) >= int(o.cfg.PendingGrants) {
				o.stats.GrantsDropped++
				continue
			}
			o.grants = append(o.grants, grant{start: o.local64(g.Start), length: int64(g.Length), force: g.ForceReport})
		}
	case *mpcp.Register:
		if !macEqual(f.Destination, o.cfg.MAC) && !mine {
			return
		}
		o.stats.RxRegister++
		switch m.Flags {
		case mpcp.RegAck:
			if o.state != Registering {
				return
			}
			o.llid = m.AssignedPort
			o.syncTime = m.SyncTime
			o.lastGate = arrival
			o.attempts = 0
			o.setState(AckPending)
		case mpcp.RegNack:
			if o.state == Registering {
				o.setState(Discovery)
			}
		case mpcp.RegDeregister, mpcp.RegReregister:
			if o.state >= AckPending {
				o.deregister()
			}
		}
	}
}

func macEqual(a, b net.HardwareAddr) bool { return string(a) == string(b) }

func (o *ONU) discoveryGate(g *mpcp.Gate) {
	switch o.state {
	case Registering:
		// The last REGISTER_REQ got no answer: it collided. Back off a
		// random number of windows, doubling the range each time.
		o.stats.Backoffs++
		o.attempts++
		n := min(1<<min(o.attempts, 16), o.cfg.MaxBackoff)
		o.skip = o.rng.IntN(n)
		o.setState(Discovery)
		// This window is one of the ones to skip when skip > 0.
		if o.skip > 0 {
			o.skip--
			return
		}
	case Discovery:
		if o.skip > 0 {
			o.skip--
			return
		}
	default:
		return
	}
	gr := g.Grants[0]
	req := o.pon.BytesToQuanta(dba.ReportBytes) // REGISTER_REQ is a 64-byte MPCPDU too
	room := int64(gr.Length) - req
	if room < 0 {
		return
	}
	off := o.rng.Int64N(room + 1)
	o.grants = append(o.grants[:0], grant{start: o.local64(gr.Start) + off, length: req, discovery: true})
	o.syncTime = g.SyncTime
	o.setState(Registering)
}

// Tick does what is due at the clock's now (bursts whose grants opened,
// timeouts, OAM keep-alives) and returns the raw time it next needs a
// Tick (quanta; a far future time when nothing is pending).
func (o *ONU) Tick() int64 {
	now := o.clock.Now()
	next := now + 1<<40
	if o.state == Off {
		return next
	}
	if o.state >= AckPending && now-o.lastGate >= o.cfg.MPCPTimeout {
		o.stats.Timeouts++
		o.deregister()
	}
	// Grants, earliest first (they arrive in order but may be granted
	// out of order by several GATEs).
	for {
		i := o.earliest()
		if i < 0 {
			break
		}
		g := o.grants[i]
		at := g.start - o.offset
		if at > now {
			next = min(next, at)
			break
		}
		o.grants = append(o.grants[:i], o.grants[i+1:]...)
		o.burst(g, at)
	}
	if o.state == Registered {
		if t := o.oam.tick(now); t < next {
			next = t
		}
	}
	if o.state >= AckPending {
		next = min(next, o.lastGate+o.cfg.MPCPTimeout)
	}
	return next
}

func (o *ONU) earliest() int {
	best := -1
	for i, g := range o.grants {
		if best < 0 || g.start < o.grants[best].start {
			best = i
		}
	}
	return best
}

// burst sends what fits in grant g, starting at raw time at.
func (o *ONU) burst(g grant, at int64) {
	local := at + o.offset
	mac := o.cfg.MAC
	if g.discovery {
		if o.state != Registering {
			return
		}
		o.stats.TxRegisterReq++
		o.sendMPCP(at, local, &mpcp.RegisterReq{Flags: mpcp.ReqRegister, PendingGrants: o.cfg.PendingGrants}, ponlink.BroadcastLLID, mac)
		return
	}
	switch o.state {
	case AckPending:
		o.stats.TxRegisterAck++
		o.sendMPCP(at, local, &mpcp.RegisterAck{Flags: mpcp.AckAck, EchoedAssignedPort: o.llid, EchoedSyncTime: o.syncTime}, o.llid, mac)
		o.setState(Registered)
		o.oam.registered(o.clock.Now())
		return
	case Registered:
	default:
		return
	}
	capacity := o.pon.QuantaToBytes(g.length) - dba.ReportBytes
	used := 0
	send := func(q queued) {
		t := at + o.pon.BytesToQuanta(used)
		o.tx.Transmit(o.llid, q.frame, t)
		o.stats.TxFrames++
		o.stats.TxBytes += uint64(len(q.frame))
		used += q.line
	}
	for len(o.ctrl) > 0 && used+o.ctrl[0].line <= capacity {
		q := o.ctrl[0]
		o.ctrl = o.ctrl[1:]
		o.ctrlLine -= q.line
		send(q)
		o.oam.sent(q.frame)
	}
	for o.dataHead < len(o.data) && used+o.data[o.dataHead].line <= capacity {
		q := o.data[o.dataHead]
		o.data[o.dataHead] = queued{}
		o.dataHead++
		o.queuedLine -= q.line
		send(q)
	}
	if o.dataHead > 1024 && o.dataHead*2 > len(o.data) {
		o.data = append(o.data[:0], o.data[o.dataHead:]...)
		o.dataHead = 0
	}
	if o.state != Registered {
		return // the burst carried a dying gasp
	}
	// The REPORT closes every window (the DBA counts it in every grant).
	t := at + o.pon.BytesToQuanta(used)
	o.stats.TxReport++
	o.sendMPCP(t, t+o.offset, o.report(), o.llid, mac)
}

// report builds the REPORT: an aligned queue set up to Threshold (when
// set) and then the whole queue, lengths in quanta (802.3 64.3.6.4: the
// sets in ascending threshold order, the last the whole queue).
func (o *ONU) report() *mpcp.Report {
	toQ := func(b int) uint16 { return uint16(min(o.pon.BytesToQuanta(b), 0xffff)) }
	total := o.queuedLine + o.ctrlLine
	r := &mpcp.Report{}
	if th := o.cfg.Threshold; th > 0 && total > th {
		aligned := o.ctrlLine
		for k := o.dataHead; k < len(o.data); k++ {
			if aligned+o.data[k].line > th {
				break
			}
			aligned += o.data[k].line
		}
		r.QueueSets = append(r.QueueSets, mpcp.QueueSet{Bitmap: 1, Lengths: [8]uint16{toQ(aligned)}})
	}
	r.QueueSets = append(r.QueueSets, mpcp.QueueSet{Bitmap: 1, Lengths: [8]uint16{toQ(total)}})
	return r
}

func (o *ONU) sendMPCP(at, local int64, m mpcp.Message, llid uint16, src net.HardwareAddr) {
	f := mpcp.Frame{Destination: mpcp.MACControlAddr, Source: src, Timestamp: uint32(local), Message: m}
	b, err := f.MarshalBinary()
	if err != nil {
		// Only the ONU's own well-formed messages get here.
		o.stats.TxErrors++
		return
	}
	o.tx.Transmit(llid, b, at)
	o.stats.TxFrames++
	o.stats.TxBytes += uint64(len(b))
}

// LocalAt is the ONU's MPCP local time at raw clock time raw.
func (o *ONU) LocalAt(raw int64) int64 { return raw + o.offset }
