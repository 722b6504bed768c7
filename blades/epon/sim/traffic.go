package sim

import (
	"container/heap"
	"math"
	"math/rand/v2"
)

// Frame sizes of the trimodal Ethernet mix (bytes, FCS included) and the
// share of frames of each size, as used in the EPON DBA literature.
var (
	FrameSizes   = [3]int{64, 594, 1518}
	FrameWeights = [3]float64{0.62, 0.10, 0.28}
)

// MeanFrameBytes is the mean frame size of the mix.
func MeanFrameBytes() float64 {
	var m float64
	for i, s := range FrameSizes {
		m += float64(s) * FrameWeights[i]
	}
	return m
}

// Pareto shapes of ON and OFF periods: H = (3 - alpha)/2 = 0.8.
const (
	AlphaOn  = 1.4
	AlphaOff = 1.4
)

// Truncation of the Pareto periods at paretoSpan times their minimum.
// Untruncated, alpha 1.4 converges so slowly that a run of seconds offers
// a load 20-30% off its nominal value; truncated at 1000x, ON/OFF periods
// still span 10 µs to 10 s, far beyond the cycle times a DBA sees.
const paretoSpan = 1000

// pareto draws from a Pareto distribution with minimum xm and shape
// alpha, truncated at paretoSpan*xm (inverse CDF).
func pareto(r *rand.Rand, xm, alpha float64) float64 {
	u := r.Float64() // [0, 1)
	tail := math.Pow(1.0/paretoSpan, alpha)
	return xm / math.Pow(1-u*(1-tail), 1/alpha)
}

// paretoMean is the mean of pareto(_, xm, alpha).
func paretoMean(xm, alpha float64) float64 {
	h := paretoSpan * xm
	return alpha * math.Pow(xm, alpha) / (1 - math.Pow(xm/h, alpha)) *
		(math.Pow(xm, 1-alpha) - math.Pow(h, 1-alpha)) / (alpha - 1)
}

// residualBytes is the mean line time (bytes) the last frame of an ON
// period runs past its end: size-biased, E[s^2]/(2E[s]).
func residualBytes() float64 {
	var m1, m2 float64
	for i, s := range FrameSizes {
		b := float64(s + 20)
		m1 += FrameWeights[i] * b
		m2 += FrameWeights[i] * b * b
	}
	return m2 / (2 * m1)
}

func frameSize(r *rand.Rand) int {
	u := r.Float64()
	for i, w := range FrameWeights {
		if u < w {
			return FrameSizes[i]
		}
		u -= w
	}
	return FrameSizes[len(FrameSizes)-1]
}

// source is one Pareto ON/OFF packet train: during ON it emits frames back
// to back at its peak rate, then stays silent for OFF.
type source struct {
	r      *rand.Rand
	next   float64 // ns: arrival time of the next frame
	size   int
	onEnd  float64
	nsPerB float64 // ns per byte at peak rate
	xmOn   float64 // ns
	xmOff  float64 // ns
}

func (s *source) draw() {
	s.size = frameSize(s.r)
}

// advance moves to the next frame after the current one.
func (s *source) advance() {
	t := s.next + float64(s.size+20)*s.nsPerB
	if t >= s.onEnd {
		t = s.onEnd + pareto(s.r, s.xmOff, AlphaOff)
		s.onEnd = t + pareto(s.r, s.xmOn, AlphaOn)
	}
	s.next = t
	s.draw()
}

type sourceHeap []*source

func (h sourceHeap) Len() int           { return len(h) }
func (h sourceHeap) Less(i, j int) bool { return h[i].next < h[j].next }
func (h sourceHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *sourceHeap) Push(x any)        { *h = append(*h, x.(*source)) }
func (h *sourceHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	*h = old[:len(old)-1]
	return s
}

// arrivals is one ONU's aggregate of sources: a time-ordered frame stream.
type arrivals struct {
	h sourceHeap
}

// newArrivals builds n sources whose aggregate mean rate is rate bit/s
// (frame overhead included), each with peak rate peak bit/s.
func newArrivals(seed uint64, onu, n int, rate, peak float64) *arrivals {
	a := &arrivals{}
	if rate <= 0 {
		return a
	}
	per := rate / float64(n)
	if peak < 2*per {
		peak = 2 * per
	}
	nsPerB := 8e9 / peak
	// Minimum ON: about two mean frames at peak rate. A period sends
	// frames starting within ON, so it sends ON plus the last frame's
	// overrun; OFF is sized for the duty cycle per/peak.
	meanFrame := MeanFrameBytes() + 20
	xmOn := 2 * meanFrame * nsPerB
	meanOn := paretoMean(xmOn, AlphaOn)
	sent := meanOn + residualBytes()*nsPerB
	meanOff := sent*peak/per - meanOn
	xmOff := meanOff / paretoMean(1, AlphaOff)
	for i := range n {
		r := rand.New(rand.NewPCG(seed, uint64(onu)<<20|uint64(i)))
		s := &source{r: r, nsPerB: nsPerB, xmOn: xmOn, xmOff: xmOff}
		// Start at a random phase of an OFF period so sources are not
		// synchronised at time zero.
		s.next = r.Float64() * pareto(r, xmOff, AlphaOff)
		s.onEnd = s.next + pareto(r, xmOn, AlphaOn)
		s.draw()
		a.h = append(a.h, s)
	}
	heap.Init(&a.h)
	return a
}

// peek returns the next frame's arrival time (ns) and size, ok false when
// the ONU has no sources.
func (a *arrivals) peek() (t float64, size int, ok bool) {
	if len(a.h) == 0 {
		return 0, 0, false
	}
	return a.h[0].next, a.h[0].size, true
}

// pop consumes the next frame.
func (a *arrivals) pop() {
	a.h[0].advance()
	heap.Fix(&a.h, 0)
}
