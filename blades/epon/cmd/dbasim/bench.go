package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cgoa/cgoa/blades/epon/dba"
	"github.com/cgoa/cgoa/blades/epon/sim"
)

// benchFile is the DESIGN.md bench JSON format.
type benchFile struct {
	Bench   string        `json:"bench"`
	Machine string        `json:"machine"`
	Results []benchResult `json:"results"`
}

type benchPeer struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
}

type benchResult struct {
	Metric  string     `json:"metric"`
	Unit    string     `json:"unit"`
	Value   float64    `json:"value"`
	Samples int64      `json:"samples"`
	Peer    *benchPeer `json:"peer,omitempty"`
	Note    string     `json:"note,omitempty"`
}

func machine() string {
	model := "unknown cpu"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	return fmt.Sprintf("%s, %d cores", model, runtime.NumCPU())
}

// benchPoint is one (DBA, load) averaged over seeds.
type benchPoint struct {
	mean, p99, util, jain, jainDelay, thr float64
	frames                                int64
}

// runBench runs the IPACT paper's set-up (16 ONUs, 1 Gb/s, 2 ms cycle,
// 15000-byte window, 1 µs guard) for IPACT limited (the peer) and CGOA
// over loads 0.1..0.95, each point averaged over seeds, and writes the
// bench JSON to path.
func runBench(path string, seeds int, dur time.Duration) error {
	loads := []float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95}
	algs := []string{"limited", "cgoa"}
	type key struct {
		alg  string
		load float64
	}
	points := map[key]*benchPoint{}
	var mu sync.Mutex
	var firstErr error
	jobs := make(chan sim.Config)
	var wg sync.WaitGroup
	for range max(1, runtime.NumCPU()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for cfg := range jobs {
				r, err := sim.Run(cfg)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				p := points[key{cfg.DBA, cfg.Load}]
				n := float64(seeds)
				p.mean += r.DelayMean / n
				p.p99 += r.DelayP99 / n
				p.util += r.Utilisation / n
				p.jain += r.Jain / n
				p.jainDelay += r.JainDelay / n
				p.thr += r.Throughput / n
				p.frames += r.Frames
				mu.Unlock()
			}
		}()
	}
	for _, a := range algs {
		for _, l := range loads {
			points[key{a, l}] = &benchPoint{}
			for s := range seeds {
				jobs <- sim.Config{
					ONUs: 16, LineRate: 1e9, Load: l, DBA: a,
					MaxCycle: 2 * time.Millisecond, MaxWindow: 15000, Guard: time.Microsecond,
					MaxDistance: 20, Duration: dur, Warmup: dur / 10, Seed: uint64(s + 1),
				}
			}
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}

	peer := "IPACT limited service (Kramer, Mukherjee, Pesavento 2002), same run"
	out := benchFile{Bench: "dba", Machine: machine()}
	add := func(metric, unit string, pick func(*benchPoint) float64, l float64, note string) {
		c, p := points[key{"cgoa", l}], points[key{"limited", l}]
		out.Results = append(out.Results, benchResult{Metric: metric, Unit: unit, Value: round(pick(c)), Samples: c.frames,
			Peer: &benchPeer{Name: peer, Value: round(pick(p))}, Note: note})
	}
	setup := fmt.Sprintf("16 ONUs 0-20 km, 1 Gb/s, 2 ms max cycle, 15000 B max window, 1 us guard; self-similar traffic (Pareto ON/OFF, H=0.8), equal loads; mean of %d seeds x %v virtual time", seeds, dur)
	add("delay.mean.0.9", "us", func(b *benchPoint) float64 { return b.mean }, 0.9, "queueing delay, arrival at ONU to start of upstream transmission; "+setup)
	add("delay.p99.0.9", "us", func(b *benchPoint) float64 { return b.p99 }, 0.9, "")
	add("utilisation.0.9", "fraction", func(b *benchPoint) float64 { return b.util }, 0.9, "data time carried / granted data time (what guard times and MPCP REPORT overhead leave)")
	add("jain.0.9", "index", func(b *benchPoint) float64 { return b.jain }, 0.9, "Jain's index over per-ONU carried/offered, equal loads")
	add("jain.delay.0.9", "index", func(b *benchPoint) float64 { return b.jainDelay }, 0.9, "Jain's index over per-ONU mean queueing delay, equal loads (stricter than jain.0.9)")
	for _, l := range loads {
		ls := fmt.Sprintf("%g", l)
		add("curve.delay.mean."+ls, "us", func(b *benchPoint) float64 { return b.mean }, l, "")
		add("curve.delay.p99."+ls, "us", func(b *benchPoint) float64 { return b.p99 }, l, "")
		add("curve.utilisation."+ls, "fraction", func(b *benchPoint) float64 { return b.util }, l, "")
		add("curve.throughput."+ls, "fraction", func(b *benchPoint) float64 { return b.thr }, l, "")
	}

	// The DBA's own share of cpu.6x32: Poller.Next with CGOA per REPORT,
	// times the REPORT rate of 6 PONs x 32 ONUs at one REPORT per ONU per
	// 2 ms cycle. Not the whole blade path (no MPCP codec or I/O).
	nsPer := dbaNsPerReport()
	reportsPerSec := 6.0 * 32 / 0.002
	out.Results = append(out.Results, benchResult{Metric: "cpu.6x32.dba", Unit: "% of one core",
		Value: round(nsPer * reportsPerSec / 1e9 * 100), Samples: 1,
		Note: fmt.Sprintf("DBA decision only (%.0f ns per REPORT x %.0f REPORTs/s); cpu.6x32, the whole OLT code path (blades/epon/olt), is merged into this file by oltbench", nsPer, reportsPerSec)})

	// The SLA peak is a rate: a 50 Mb/s-peak ONU offered 300 Mb/s beside
	// another ONU offered 300 Mb/s (cycles far below MaxCycle).
	peakMbps, otherMbps := peakCarried(50e6, 300e6)
	out.Results = append(out.Results, benchResult{Metric: "sla.peak50.carried", Unit: "Mb/s", Value: round(peakMbps), Samples: 1,
		Note: fmt.Sprintf("line rate carried in 1 s by an ONU with a 50 Mb/s peak offered 300 Mb/s, another ONU without SLA offered 300 Mb/s carrying %.1f Mb/s; CGOA token bucket, paper set-up, Poller.NotBefore pacing as the OLT does", otherMbps)})

	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func round(v float64) float64 {
	return float64(int64(v*10000+0.5)) / 10000
}

func dbaNsPerReport() float64 {
	cfg := dba.Config{ONUs: 32, LineRate: 1e9, Guard: 62, MaxCycle: 125000}
	alg, err := dba.New("cgoa", cfg)
	if err != nil {
		return 0
	}
	_ = cfg.Validate()
	p := dba.NewPoller(cfg, alg)
	r := testing.Benchmark(func(b *testing.B) {
		now := int64(0)
		for i := 0; i < b.N; i++ {
			w := p.Next(dba.Report{ONU: i % 32, Now: now, Queued: (i * 7919) % 30000, Received: 3000, Granted: 3000}, 6250)
			now = w.End() - 1000
		}
	})
	return float64(r.T.Nanoseconds()) / float64(r.N)
}

// peakCarried polls two ONUs of the paper set-up offered load bit/s each
// (fluid arrivals) for one second of virtual time, ONU 0 with an SLA
// peak, as the OLT does (deferring paced polls), and returns the Mb/s of
// line time each carried.
func peakCarried(peak, load float64) (float64, float64) {
	cfg := dba.Config{ONUs: 16, LineRate: 1e9, Guard: 62, MaxCycle: 125000, MaxWindow: 15000}
	if err := cfg.Validate(); err != nil {
		return 0, 0
	}
	g := dba.NewCGOA(cfg)
	if err := g.SetSLA(0, dba.SLA{Peak: int64(peak)}); err != nil {
		return 0, 0
	}
	p := dba.NewPoller(cfg, g)
	const rtt = 1000
	second := int64(time.Second / dba.Quantum)
	perQ := load / 8 * dba.Quantum.Seconds() // bytes offered per quantum
	now := [2]int64{}
	var queued [2]float64
	var last [2]dba.Report
	var carried [2]int
	for now[0] < second || now[1] < second {
		i := 0
		if now[1] < now[0] {
			i = 1
		}
		r := last[i]
		r.ONU, r.Now, r.Queued = i, now[i], int(queued[i])
		if at := p.NotBefore(r, rtt); at > r.Now {
			queued[i] += float64(at-now[i]) * perQ
			now[i] = at
			continue
		}
		w := p.Next(r, rtt)
		sent := min(w.Data, int(queued[i]))
		if w.End() <= second {
			carried[i] += sent
		}
		queued[i] += float64(w.End()-now[i])*perQ - float64(sent)
		last[i] = dba.Report{Granted: w.Data, Received: sent}
		now[i] = w.End()
	}
	return float64(carried[0]) * 8 / 1e6, float64(carried[1]) * 8 / 1e6
}
