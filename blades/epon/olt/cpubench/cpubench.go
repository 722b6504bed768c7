// Package cpubench measures the OLT's control-plane CPU cost: the
// cpu.6x32 figure (percent of one core for 6 PON ports of 32 ONUs each at
// 2 ms polling cycles). A Rig registers the ONUs through the OLT's own
// protocol path (discovery GATE, REGISTER_REQ, REGISTER, REGISTER_ACK)
// and then, per cycle, hands every OLT one REPORT per ONU as a wire frame
// and ticks it, as the blade's PON driver does. What is measured is
// blades/epon/olt's code: MPCP decoding, the DBA (Poller and CGOA),
// GATE encoding, counters, timers and OAM keep-alives. Not measured: the
// socket or driver I/O around it and the data path.
//
//	r, err := cpubench.NewRig(6, 32, 2*time.Millisecond)
//	r.Cycle() // one 2 ms cycle of all ports
//
// Measure prints the figure with the process's CPU time.
package cpubench

import (
	"encoding/binary"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/cgoa/cgoa/blades/epon/olt"
	"github.com/cgoa/cgoa/netstack/mpcp"
	"github.com/cgoa/cgoa/netstack/ponlink"
)

type clock struct{ t int64 }

func (c *clock) Now() int64 { return c.t }

// port captures frames while the rig registers ONUs and only counts them
// afterwards.
type port struct {
	capture bool
	frames  []sent
	n       uint64
}

type sent struct {
	llid  uint16
	frame []byte
}

func (p *port) Send(llid uint16, _ bool, frame []byte) error {
	p.n++
	if p.capture {
		p.frames = append(p.frames, sent{llid, frame})
	}
	return nil
}

type pon struct {
	olt     *olt.OLT
	port    *port
	llid    []uint16
	rtt     []int64
	reports [][]byte
}

// Rig is a set of OLT ports with registered ONUs.
type Rig struct {
	clock  *clock
	pons   []*pon
	onus   int
	cycle  int64 // quanta
	cycles int
}

func mac(p, i int) net.HardwareAddr {
	return net.HardwareAddr{0x02, 0xcc, byte(p), 0, byte(i >> 8), byte(i)}
}

// NewRig makes pons OLT ports (DBA cgoa, defaults otherwise) with onus
// ONUs registered on each at 0..20 km, polled every cycle.
func NewRig(pons, onus int, cycle time.Duration) (*Rig, error) {
	if pons < 1 || onus < 1 || onus > 64 {
		return nil, fmt.Errorf("cpubench: %d ports of %d ONUs, want >= 1 of 1..64", pons, onus)
	}
	r := &Rig{clock: &clock{t: 1 << 20}, onus: onus, cycle: int64(cycle / mpcp.Quantum)}
	for p := range pons {
		pp := &port{capture: true}
		o, err := olt.New(olt.Config{Name: fmt.Sprintf("pon%d", p), MAC: mac(p, 0xfff), MaxONUs: max(32, onus)}, r.clock, pp)
		if err != nil {
			return nil, err
		}
		x := &pon{olt: o, port: pp}
		if err := r.register(p, x); err != nil {
			return nil, err
		}
		pp.capture = false
		pp.frames = nil
		r.pons = append(r.pons, x)
	}
	return r, nil
}

// register runs discovery for all ONUs of x through the OLT's wire path.
func (r *Rig) register(p int, x *pon) error {
	x.olt.Tick()
	var start int64 = -1
	for _, s := range x.port.frames {
		var f mpcp.Frame
		if f.UnmarshalBinary(s.frame) == nil {
			if g, ok := f.Message.(*mpcp.Gate); ok && g.Discovery {
				start = int64(g.Grants[0].Start)
			}
		}
	}
	if start < 0 {
		return fmt.Errorf("cpubench: %s sent no discovery GATE", x.olt.Name())
	}
	x.rtt = make([]int64, r.onus)
	x.llid = make([]uint16, r.onus)
	for i := range r.onus {
		x.rtt[i] = int64(625 * (i % 21)) // 0..20 km
		ts := start + int64(50*i)
		r.clock.t = ts + x.rtt[i]
		b, err := (&mpcp.Frame{Destination: mpcp.MACControlAddr, Source: mac(p, i), Timestamp: uint32(ts),
			Message: &mpcp.RegisterReq{Flags: mpcp.ReqRegister, PendingGrants: 4}}).MarshalBinary()
		if err != nil {
			return err
		}
		x.olt.Receive(ponlink.BroadcastLLID, b, r.clock.t)
		x.olt.Tick()
	}
	for _, s := range x.port.frames {
		var f mpcp.Frame
		if f.UnmarshalBinary(s.frame) != nil {
			continue
		}
		if reg, ok := f.Message.(*mpcp.Register); ok && reg.Flags == mpcp.RegAck {
			x.llid[int(f.Destination[4])<<8|int(f.Destination[5])] = reg.AssignedPort
		}
	}
	r.clock.t += 20000
	for i := range r.onus {
		r.clock.t += 100
		b, err := (&mpcp.Frame{Destination: mpcp.MACControlAddr, Source: mac(p, i), Timestamp: uint32(r.clock.t - x.rtt[i]),
			Message: &mpcp.RegisterAck{Flags: mpcp.AckAck, EchoedAssignedPort: x.llid[i], EchoedSyncTime: 32}}).MarshalBinary()
		if err != nil {
			return err
		}
		x.olt.Receive(x.llid[i], b, r.clock.t)
		x.olt.Tick()
		rep, err := (&mpcp.Frame{Destination: mpcp.MACControlAddr, Source: mac(p, i),
			Message: &mpcp.Report{QueueSets: []mpcp.QueueSet{{Bitmap: 1}}}}).MarshalBinary()
		if err != nil {
			return err
		}
		x.reports = append(x.reports, rep)
	}
	if n := x.olt.ShowPON().Registered; n != r.onus {
		return fmt.Errorf("cpubench: %s registered %d of %d ONUs", x.olt.Name(), n, r.onus)
	}
	return nil
}

// REPORT frame offsets: timestamp and queue set 0's queue 0 length.
const (
	offTimestamp = 14 + 2
	offQueue0    = 14 + 2 + 4 + 1 + 1
)

// Cycle runs one polling cycle: every ONU of every port reports once,
// spread over the cycle, and each OLT is ticked after each REPORT.
func (r *Rig) Cycle() {
	step := r.cycle / int64(r.onus*len(r.pons))
	for i := range r.onus {
		for _, x := range r.pons {
			r.clock.t += step
			b := x.reports[i]
			binary.BigEndian.PutUint32(b[offTimestamp:], uint32(r.clock.t-x.rtt[i]))
			// Mostly backlogged, now and then idle.
			q := uint16((i*997 + r.cycles*131) % 12000)
			if (i+r.cycles)%8 == 0 {
				q = 0
			}
			binary.BigEndian.PutUint16(b[offQueue0:], q)
			x.olt.Receive(x.llid[i], b, r.clock.t)
			x.olt.Tick()
		}
	}
	r.cycles++
}

// Registered is the ONUs registered over all ports (all, unless an OLT
// timed some out: then the rig is not measuring what it should).
func (r *Rig) Registered() int {
	n := 0
	for _, x := range r.pons {
		n += x.olt.ShowPON().Registered
	}
	return n
}

// Result is one measurement.
type Result struct {
	Cycles int
	// Simulated is the PON time the cycles cover.
	Simulated time.Duration
	// CPU is the process's user+system time spent, Wall the elapsed time.
	CPU, Wall time.Duration
	// Percent is CPU time per simulated second, in percent of one core.
	Percent float64
	// GATEs is how many GATEs the OLTs sent.
	GATEs uint64
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Measure runs cycles after a warm-up of a tenth as many and returns the
// CPU cost per simulated second.
func (r *Rig) Measure(cycles int) (Result, error) {
	for range max(1, cycles/10) {
		r.Cycle()
	}
	var g0 uint64
	for _, x := range r.pons {
		g0 += x.olt.Stats().TxGate
	}
	c0, w0 := cpuTime(), time.Now()
	for range cycles {
		r.Cycle()
	}
	cpu, wall := cpuTime()-c0, time.Since(w0)
	res := Result{Cycles: cycles, Simulated: time.Duration(int64(cycles) * r.cycle * int64(mpcp.Quantum)), CPU: cpu, Wall: wall}
	for _, x := range r.pons {
		res.GATEs += x.olt.Stats().TxGate
	}
	res.GATEs -= g0
	res.Percent = 100 * cpu.Seconds() / res.Simulated.Seconds()
	if n, want := r.Registered(), r.onus*len(r.pons); n != want {
		return res, fmt.Errorf("cpubench: %d of %d ONUs still registered after the run", n, want)
	}
	return res, nil
}
