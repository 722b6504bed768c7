package sim

import (
	"container/heap"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/cgoa/cgoa/blades/epon/dba"
)

// Config is one simulation run (one load point).
type Config struct {
	ONUs     int
	LineRate int64   // bit/s
	Load     float64 // offered load as a fraction of the line rate (frame overhead included)
	// Weights, when set (len ONUs), split the load unevenly: ONU i gets
	// Load*Weights[i]/sum(Weights).
	Weights   []float64
	DBA       string
	MaxCycle  time.Duration
	MaxWindow int // bytes; 0 derives it from MaxCycle
	Guard     time.Duration
	// Distances in km per ONU; nil draws them uniformly in
	// [0, MaxDistance] from the seed.
	Distances   []float64
	MaxDistance float64
	// Duration of traffic generation in virtual time; statistics cover
	// frames arriving in [Warmup, Duration).
	Duration time.Duration
	Warmup   time.Duration
	Seed     uint64
	// Sources per ONU and their peak rate (bit/s).
	Sources    int
	SourcePeak int64
	// Drain keeps the simulation running after Duration until every frame
	// is delivered (or DrainLimit more virtual time passes).
	Drain      bool
	DrainLimit time.Duration
	// Tune, when set, is called with the algorithm before the run (to set
	// CGOA's Gain, say).
	Tune func(dba.Algorithm)

	// OnBurst, when set, sees every window with the burst the ONU sent in
	// it, for invariant checks.
	OnBurst func(Burst)
	// OnFrame, when set, sees every delivered frame.
	OnFrame func(onu int, seq uint64, arrival, start time.Duration)
}

// Burst is one upstream window and what the ONU sent in it.
type Burst struct {
	Window dba.Window
	// First and Last are the OLT times (ns) the burst's first bit
	// arrives and its last bit (end of the REPORT) arrives.
	First, Last float64
	// GateArrival is when the GATE for the window reached the ONU, and
	// OnuStart when the ONU began to send (both ns, global time).
	GateArrival, OnuStart float64
	Sent                  int // data bytes, frame overhead included
}

// Result is one load point.
type Result struct {
	DBA  string  `json:"dba"`
	Load float64 `json:"load"`
	// Offered is the load the sources actually generated in the
	// measurement interval, as a fraction of the line rate.
	Offered    float64 `json:"offered"`
	Throughput float64 `json:"throughput"`
	// DelayMean, DelayP99, DelayMax: queueing delay (arrival at the ONU
	// to start of upstream transmission), µs.
	DelayMean float64 `json:"delay_mean_us"`
	DelayP99  float64 `json:"delay_p99_us"`
	DelayMax  float64 `json:"delay_max_us"`
	// Utilisation is the fraction of granted data time (window minus
	// guard and REPORT) that carried frames.
	Utilisation float64 `json:"utilisation"`
	// Busy is the fraction of line time carrying frames.
	Busy float64 `json:"busy"`
	// Jain is Jain's fairness index over per-ONU carried/offered;
	// JainDelay over per-ONU mean delays.
	Jain      float64 `json:"jain"`
	JainDelay float64 `json:"jain_delay"`
	CycleMean float64 `json:"cycle_mean_us"`
	CycleMax  float64 `json:"cycle_max_us"`
	Frames    int64   `json:"frames"`
	Delivered int64   `json:"delivered"`
	Pending   int64   `json:"pending"`
}

// Defaults for zero fields, the IPACT paper's set-up.
func (c *Config) defaults() {
	if c.ONUs == 0 {
		c.ONUs = 16
	}
	if c.LineRate == 0 {
		c.LineRate = 1e9
	}
	if c.DBA == "" {
		c.DBA = "limited"
	}
	if c.MaxCycle == 0 {
		c.MaxCycle = 2 * time.Millisecond
	}
	if c.Guard == 0 {
		c.Guard = time.Microsecond
	}
	if c.MaxDistance == 0 {
		c.MaxDistance = 20
	}
	if c.Duration == 0 {
		c.Duration = time.Second
	}
	if c.Sources == 0 {
		c.Sources = 32
	}
	if c.SourcePeak == 0 {
		c.SourcePeak = 100e6
	}
	if c.DrainLimit == 0 {
		c.DrainLimit = 10 * time.Second
	}
}

// PON returns the DBA configuration the simulation uses.
func (c Config) PON() dba.Config {
	c.defaults()
	return dba.Config{
		ONUs: c.ONUs, LineRate: c.LineRate,
		Guard:     int64((c.Guard + dba.Quantum - 1) / dba.Quantum), // at least the guard asked for
		MaxCycle:  int64(c.MaxCycle / dba.Quantum),
		MaxWindow: c.MaxWindow,
	}
}

// ErrConfig is wrapped by Run for an invalid configuration.
var ErrConfig = errors.New("sim: bad configuration")

type frame struct {
	t    float64 // arrival, ns
	size int
	seq  uint64
}

type onu struct {
	arr      *arrivals
	q        []frame
	head     int
	queued   int // bytes with frame overhead
	dUp      float64
	rtt      int64 // quanta
	seq      uint64
	lastWin  int64
	offered  float64 // bytes arriving in the measurement interval
	carried  float64 // of those, bytes delivered
	delaySum float64
	delayN   int64
}

type event struct {
	t      int64 // quanta
	onu    int
	report dba.Report
}

type eventHeap []event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if h[i].t != h[j].t {
		return h[i].t < h[j].t
	}
	return h[i].onu < h[j].onu
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(event)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// Run simulates one load point. Same Config, same Result: all randomness
// comes from Seed.
func Run(cfg Config) (Result, error) {
	cfg.defaults()
	pon := cfg.PON()
	if err := pon.Validate(); err != nil { // also fills a zero MaxWindow
		return Result{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	alg, err := dba.New(cfg.DBA, pon)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	switch {
	case cfg.Load < 0 || cfg.Load > 2:
		return Result{}, fmt.Errorf("%w: load %g, want 0..2", ErrConfig, cfg.Load)
	case cfg.Weights != nil && len(cfg.Weights) != cfg.ONUs:
		return Result{}, fmt.Errorf("%w: %d weights for %d ONUs", ErrConfig, len(cfg.Weights), cfg.ONUs)
	case cfg.Distances != nil && len(cfg.Distances) != cfg.ONUs:
		return Result{}, fmt.Errorf("%w: %d distances for %d ONUs", ErrConfig, len(cfg.Distances), cfg.ONUs)
	case cfg.Warmup < 0 || cfg.Warmup >= cfg.Duration:
		return Result{}, fmt.Errorf("%w: warm-up %v not within duration %v", ErrConfig, cfg.Warmup, cfg.Duration)
	case cfg.Sources < 1:
		return Result{}, fmt.Errorf("%w: %d sources per ONU", ErrConfig, cfg.Sources)
	}
	if cfg.Tune != nil {
		cfg.Tune(alg)
	}
	poller := dba.NewPoller(pon, alg)

	nsPerByte := 8e9 / float64(cfg.LineRate)
	weights := cfg.Weights
	if weights == nil {
		weights = make([]float64, cfg.ONUs)
		for i := range weights {
			weights[i] = 1
		}
	}
	var wsum float64
	for _, w := range weights {
		if w < 0 || math.IsNaN(w) || math.IsInf(w, 0) {
			return Result{}, fmt.Errorf("%w: weight %g", ErrConfig, w)
		}
		wsum += w
	}
	if wsum == 0 {
		return Result{}, fmt.Errorf("%w: all weights zero", ErrConfig)
	}
	dr := rand.New(rand.NewPCG(cfg.Seed, 0xd157a9ce))
	onus := make([]*onu, cfg.ONUs)
	for i := range onus {
		km := dr.Float64() * cfg.MaxDistance
		if cfg.Distances != nil {
			km = cfg.Distances[i]
		}
		if km < 0 || km > 100 || math.IsNaN(km) {
			return Result{}, fmt.Errorf("%w: ONU %d at %g km", ErrConfig, i, km)
		}
		dUp := km * 5000 // light in fibre: 5 µs/km
		rate := cfg.Load * float64(cfg.LineRate) * weights[i] / wsum
		onus[i] = &onu{
			arr:     newArrivals(cfg.Seed, i, cfg.Sources, rate, float64(cfg.SourcePeak)),
			dUp:     dUp,
			rtt:     int64(math.Ceil(2 * dUp / float64(dba.Quantum))),
			lastWin: -1,
		}
	}

	horizon := float64(cfg.Duration.Nanoseconds())
	warm := float64(cfg.Warmup.Nanoseconds())
	stop := horizon
	if cfg.Drain {
		stop += float64(cfg.DrainLimit.Nanoseconds())
	}
	reportNs := float64(dba.ReportBytes) * nsPerByte
	quantumNs := float64(dba.Quantum.Nanoseconds())

	var (
		res                          = Result{DBA: alg.Name(), Load: cfg.Load}
		delays                       []float64
		sentBytes, grantedBytes      float64
		busyBytes                    float64
		cycleSum, cycleMax           float64
		cycleN                       int64
		frames, delivered            int64
		measureStart, measureEnd     = warm, horizon
		carriedInWindow, offeredMeas float64
	)

	// fill moves frames that arrived by t (and before the horizon) into
	// the ONU's queue.
	fill := func(o *onu, t float64) {
		for {
			at, size, ok := o.arr.peek()
			if !ok || at > t || at >= horizon {
				return
			}
			o.arr.pop()
			o.q = append(o.q, frame{t: at, size: size, seq: o.seq})
			o.seq++
			o.queued += size + dba.FrameOverhead
			frames++
			if at >= warm {
				o.offered += float64(size + dba.FrameOverhead)
				offeredMeas += float64(size + dba.FrameOverhead)
			}
		}
	}

	events := &eventHeap{}
	for i := range onus {
		heap.Push(events, event{t: 0, onu: i, report: dba.Report{ONU: i}})
	}
	for events.Len() > 0 {
		ev := heap.Pop(events).(event)
		now := float64(ev.t) * quantumNs
		if now > stop {
			break
		}
		o := onus[ev.onu]
		if cfg.Drain && now > horizon && allIdle(onus, horizon) {
			break
		}
		w := poller.Next(ev.report, o.rtt)
		if o.lastWin >= 0 {
			c := float64(w.Start-o.lastWin) * quantumNs
			if now > warm && now < horizon {
				cycleSum += c
				cycleN++
				cycleMax = max(cycleMax, c)
			}
		}
		o.lastWin = w.Start

		start := float64(w.Start)*quantumNs - o.dUp
		end := float64(w.End())*quantumNs - o.dUp
		dataEnd := end - reportNs
		t := start
		sent := 0
		first := -1.0
		for {
			if o.head == len(o.q) {
				fill(o, dataEnd)
				if o.head == len(o.q) {
					break
				}
			}
			f := o.q[o.head]
			st := max(t, f.t)
			ft := float64(f.size+dba.FrameOverhead) * nsPerByte
			if st+ft > dataEnd+1e-6 {
				break
			}
			if first < 0 {
				first = st
			}
			o.head++
			o.queued -= f.size + dba.FrameOverhead
			sent += f.size + dba.FrameOverhead
			t = st + ft
			delivered++
			if f.t >= warm && f.t < horizon {
				d := st - f.t
				delays = append(delays, d)
				o.delaySum += d
				o.delayN++
				o.carried += float64(f.size + dba.FrameOverhead)
			}
			if st >= measureStart && st < measureEnd {
				carriedInWindow += float64(f.size + dba.FrameOverhead)
			}
			if cfg.OnFrame != nil {
				cfg.OnFrame(ev.onu, f.seq, time.Duration(f.t), time.Duration(st))
			}
		}
		if o.head > 4096 && o.head*2 > len(o.q) {
			o.q = append(o.q[:0], o.q[o.head:]...)
			o.head = 0
		}
		// The REPORT leaves at the end of the window with the queue as it
		// is then, plus the frame-aligned queue set up to MaxWindow.
		fill(o, dataEnd)
		aligned := 0
		for k := o.head; k < len(o.q); k++ {
			b := o.q[k].size + dba.FrameOverhead
			if aligned+b > pon.MaxWindow {
				break
			}
			aligned += b
		}
		if start >= warm && start < horizon {
			sentBytes += float64(sent)
			grantedBytes += float64(w.Data)
			busyBytes += float64(sent)
		}
		if cfg.OnBurst != nil {
			if first < 0 {
				first = dataEnd
			}
			cfg.OnBurst(Burst{Window: w, First: first + o.dUp, Last: dataEnd + reportNs + o.dUp,
				GateArrival: now + (float64(o.rtt)*quantumNs - o.dUp), OnuStart: first, Sent: sent})
		}
		heap.Push(events, event{t: w.End(), onu: ev.onu, report: dba.Report{
			ONU: ev.onu, Now: w.End(), Queued: o.queued, Aligned: aligned, Received: sent, Granted: w.Data,
		}})
	}

	span := (measureEnd - measureStart) / nsPerByte // line bytes in the interval
	res.Offered = offeredMeas / span
	res.Throughput = carriedInWindow / span
	res.Busy = busyBytes / span
	if grantedBytes > 0 {
		res.Utilisation = sentBytes / grantedBytes
	}
	if cycleN > 0 {
		res.CycleMean = cycleSum / float64(cycleN) / 1e3
		res.CycleMax = cycleMax / 1e3
	}
	if len(delays) > 0 {
		var s float64
		for _, d := range delays {
			s += d
		}
		res.DelayMean = s / float64(len(delays)) / 1e3
		slices.Sort(delays)
		res.DelayP99 = delays[min(len(delays)-1, int(math.Ceil(0.99*float64(len(delays))))-1)] / 1e3
		res.DelayMax = delays[len(delays)-1] / 1e3
	}
	var ratios, means []float64
	for _, o := range onus {
		if o.offered > 0 {
			ratios = append(ratios, o.carried/o.offered)
		}
		if o.delayN > 0 {
			means = append(means, o.delaySum/float64(o.delayN))
		}
		res.Pending += int64(len(o.q) - o.head)
	}
	res.Jain = Jain(ratios)
	res.JainDelay = Jain(means)
	res.Frames, res.Delivered = frames, delivered
	return res, nil
}

// allIdle reports whether every ONU has an empty queue and no more
// arrivals before the horizon.
func allIdle(onus []*onu, horizon float64) bool {
	for _, o := range onus {
		if o.head != len(o.q) {
			return false
		}
		if t, _, ok := o.arr.peek(); ok && t < horizon {
			return false
		}
	}
	return true
}

// Jain is Jain's fairness index (sum x)^2 / (n sum x^2): 1 when all equal,
// 1/n when one takes everything. Empty or all-zero input gives 1.
func Jain(x []float64) float64 {
	var s, s2 float64
	for _, v := range x {
		s += v
		s2 += v * v
	}
	if s2 == 0 {
		return 1
	}
	return s * s / (float64(len(x)) * s2)
}

// WithGain returns a Tune function setting CGOA's prediction gain (other
// algorithms are left alone).
func WithGain(g float64) func(dba.Algorithm) {
	return func(a dba.Algorithm) {
		if c, ok := a.(*dba.CGOA); ok {
			c.Gain = g
		}
	}
}
