package sim

import (
	"errors"
	"math"
	"testing"
	"time"
)

func small(dba string, load float64) Config {
	return Config{
		ONUs: 8, LineRate: 1e9, Load: load, DBA: dba,
		MaxCycle: time.Millisecond, MaxWindow: 15000, Guard: time.Microsecond,
		Duration: 150 * time.Millisecond, Warmup: 20 * time.Millisecond, Seed: 7, Sources: 8,
	}
}

func TestDeterministic(t *testing.T) {
	for _, name := range []string{"limited", "cgoa"} {
		a, err := Run(small(name, 0.6))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := Run(small(name, 0.6))
		if a != b {
			t.Errorf("%s: Run twice with one seed = %+v and %+v", name, a, b)
		}
		c := small(name, 0.6)
		c.Seed = 8
		if r, _ := Run(c); r == a {
			t.Errorf("%s: different seeds gave identical results %+v", name, r)
		}
	}
}

// TestNoCollisions checks every burst arrives inside its window, windows
// never overlap (guard time kept), and no ONU sends before its GATE
// reached it, for every algorithm.
func TestNoCollisions(t *testing.T) {
	for _, name := range []string{"fixed", "gated", "limited", "cgoa"} {
		for _, load := range []float64{0.3, 0.95} {
			cfg := small(name, load)
			guardNs := float64(cfg.Guard.Nanoseconds())
			var prevEnd float64 = -1
			n := 0
			var failed bool
			cfg.OnBurst = func(b Burst) {
				n++
				if failed {
					return
				}
				ws, we := float64(b.Window.Start)*16, float64(b.Window.End())*16
				switch {
				case prevEnd >= 0 && ws < prevEnd+guardNs-1e-6:
					t.Errorf("%s@%.2f: window at %.0f ns starts before previous end %.0f + guard", name, load, ws, prevEnd)
				case b.First < ws-1e-6 || b.Last > we+1e-6:
					t.Errorf("%s@%.2f: burst [%.0f, %.0f] outside window [%.0f, %.0f]", name, load, b.First, b.Last, ws, we)
				case b.GateArrival > b.OnuStart+1e-6:
					t.Errorf("%s@%.2f: ONU %d starts at %.0f before its GATE arrives at %.0f", name, load, b.Window.ONU, b.OnuStart, b.GateArrival)
				default:
					prevEnd = we
					return
				}
				failed = true
			}
			if _, err := Run(cfg); err != nil {
				t.Fatal(err)
			}
			if n < 100 {
				t.Errorf("%s@%.2f: only %d bursts", name, load, n)
			}
		}
	}
}

// TestDeliveredOnce drains the PON below saturation and checks each frame
// is delivered once, in order, and none is left.
func TestDeliveredOnce(t *testing.T) {
	for _, name := range []string{"limited", "cgoa", "gated"} {
		cfg := small(name, 0.7)
		cfg.Drain = true
		next := make([]uint64, cfg.ONUs)
		bad := 0
		cfg.OnFrame = func(onu int, seq uint64, arrival, start time.Duration) {
			if seq != next[onu] || start < arrival {
				bad++
			}
			next[onu] = seq + 1
		}
		r, err := Run(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if bad != 0 {
			t.Errorf("%s: %d frames delivered out of order, twice or before arrival", name, bad)
		}
		var total uint64
		for _, s := range next {
			total += s
		}
		if r.Pending != 0 || r.Delivered != r.Frames || int64(total) != r.Frames || r.Frames == 0 {
			t.Errorf("%s: frames %d, delivered %d (callbacks %d), pending %d; want all delivered",
				name, r.Frames, r.Delivered, total, r.Pending)
		}
	}
}

func TestBounds(t *testing.T) {
	for _, name := range []string{"fixed", "gated", "limited", "cgoa"} {
		for _, load := range []float64{0.2, 0.9, 1.2} {
			r, err := Run(small(name, load))
			if err != nil {
				t.Fatal(err)
			}
			for what, v := range map[string]float64{"utilisation": r.Utilisation, "throughput": r.Throughput, "busy": r.Busy, "jain": r.Jain} {
				if v <= 0 || v > 1+1e-9 || math.IsNaN(v) {
					t.Errorf("%s@%.1f: %s = %g, want in (0, 1]", name, load, what, v)
				}
			}
			if r.Throughput > r.Offered+0.02 {
				t.Errorf("%s@%.1f: throughput %g above offered %g", name, load, r.Throughput, r.Offered)
			}
			if r.DelayP99 < r.DelayMean*0.5 || r.DelayMax < r.DelayP99 {
				t.Errorf("%s@%.1f: delay mean %g p99 %g max %g inconsistent", name, load, r.DelayMean, r.DelayP99, r.DelayMax)
			}
		}
	}
}

func TestOfferedLoad(t *testing.T) {
	cfg := small("limited", 0.5)
	cfg.Duration = 600 * time.Millisecond
	r, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(r.Offered-0.5) > 0.06 {
		t.Errorf("offered load = %.3f, want 0.5 +- 0.06", r.Offered)
	}
}

func TestDelayGrowsWithLoad(t *testing.T) {
	for _, name := range []string{"limited", "cgoa"} {
		prev := 0.0
		for _, load := range []float64{0.2, 0.6, 0.9} {
			r, err := Run(small(name, load))
			if err != nil {
				t.Fatal(err)
			}
			if r.DelayMean <= prev {
				t.Errorf("%s: mean delay %.1f µs at load %.1f, not above %.1f at the lower load", name, r.DelayMean, load, prev)
			}
			prev = r.DelayMean
		}
	}
}

func TestLimitedWindow(t *testing.T) {
	cfg := small("limited", 1.1)
	over, n := 0, 0
	cfg.OnBurst = func(b Burst) {
		n++
		if b.Window.Data > cfg.MaxWindow || b.Sent > b.Window.Data {
			over++
		}
	}
	if _, err := Run(cfg); err != nil {
		t.Fatal(err)
	}
	if over != 0 || n == 0 {
		t.Errorf("limited service: %d of %d windows above %d bytes or overfilled", over, n, cfg.MaxWindow)
	}
}

func TestUnevenLoadFairness(t *testing.T) {
	// Two heavy ONUs among light ones, total load 0.8: CGOA hands the
	// heavy ones the light ones' excess, so they wait less than under
	// IPACT limited.
	w := []float64{6, 6, 1, 1, 1, 1, 1, 1}
	res := map[string]Result{}
	for _, name := range []string{"limited", "cgoa"} {
		cfg := small(name, 0.8)
		cfg.Weights = w
		cfg.Duration = 300 * time.Millisecond
		r, err := Run(cfg)
		if err != nil {
			t.Fatal(err)
		}
		res[name] = r
	}
	if res["cgoa"].DelayMean >= res["limited"].DelayMean {
		t.Errorf("uneven load: cgoa mean delay %.1f µs not below limited %.1f µs", res["cgoa"].DelayMean, res["limited"].DelayMean)
	}
}

func TestConfigErrors(t *testing.T) {
	bad := []func(*Config){
		func(c *Config) { c.DBA = "nope" },
		func(c *Config) { c.Load = -1 },
		func(c *Config) { c.Weights = []float64{1} },
		func(c *Config) { c.Weights = make([]float64, 8) },
		func(c *Config) { c.Distances = []float64{1} },
		func(c *Config) { c.Distances = []float64{1, 2, 3, 4, 5, 6, 7, -1} },
		func(c *Config) { c.Warmup = c.Duration },
		func(c *Config) { c.Sources = -1 },
	}
	for i, f := range bad {
		c := small("limited", 0.5)
		f(&c)
		if _, err := Run(c); !errors.Is(err, ErrConfig) {
			t.Errorf("case %d: Run = %v, want %v", i, err, ErrConfig)
		}
	}
}

func TestJain(t *testing.T) {
	for _, tt := range []struct {
		x    []float64
		want float64
	}{{[]float64{1, 1, 1, 1}, 1}, {[]float64{1, 0, 0, 0}, 0.25}, {[]float64{2, 1}, 0.9}, {nil, 1}} {
		if got := Jain(tt.x); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("Jain(%v) = %g, want %g", tt.x, got, tt.want)
		}
	}
}

func TestTruncatedPareto(t *testing.T) {
	// paretoMean must match the sampler it calibrates the load with.
	r := newArrivals(1, 0, 1, 1e6, 1e8).h[0].r
	var s float64
	const n = 400000
	for range n {
		s += pareto(r, 1, AlphaOn)
	}
	if got, want := s/n, paretoMean(1, AlphaOn); math.Abs(got-want)/want > 0.05 {
		t.Errorf("sample mean of truncated Pareto = %.3f, want %.3f", got, want)
	}
}
