// Command dbasim runs the EPON upstream DBA simulator over a range of
// loads and prints mean/p99 queueing delay, throughput, utilisation and
// fairness per load point.
//
//	go run ./blades/epon/cmd/dbasim -dba cgoa,limited -loads 0.1,0.5,0.9 -json
//	go run ./blades/epon/cmd/dbasim -bench build/bench/dba.json -seeds 3 -duration 5s
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cgoa/cgoa/blades/epon/sim"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "dbasim:", err)
		os.Exit(2)
	}
}

func parseFloats(s string) ([]float64, error) {
	if s == "" {
		return nil, nil
	}
	var out []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", f, err)
		}
		out = append(out, v)
	}
	return out, nil
}

func run(args []string) error {
	fs := flag.NewFlagSet("dbasim", flag.ContinueOnError)
	var (
		onus      = fs.Int("onus", 16, "number of ONUs")
		rate      = fs.Float64("rate", 1e9, "line rate, bit/s")
		dbas      = fs.String("dba", "limited,cgoa", "comma-separated DBAs: fixed, gated, limited, cgoa")
		loads     = fs.String("loads", "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,0.95", "comma-separated offered loads (fraction of line rate)")
		cycle     = fs.Duration("cycle", 2*time.Millisecond, "maximum cycle")
		window    = fs.Int("window", 15000, "maximum window, bytes (0: from the cycle)")
		guard     = fs.Duration("guard", time.Microsecond, "guard time")
		dist      = fs.String("distances", "", "comma-separated ONU distances, km (default: uniform 0..-maxdist)")
		maxDist   = fs.Float64("maxdist", 20, "maximum ONU distance, km, when -distances is not given")
		dur       = fs.Duration("duration", 2*time.Second, "virtual time of traffic per load point")
		warm      = fs.Duration("warmup", 200*time.Millisecond, "virtual warm-up excluded from statistics")
		seed      = fs.Uint64("seed", 1, "random seed")
		sources   = fs.Int("sources", 32, "Pareto ON/OFF sources per ONU")
		gain      = fs.Float64("gain", -1, "cgoa prediction gain (negative: default)")
		asJSON    = fs.Bool("json", false, "print JSON")
		weightArg = fs.String("weights", "", "comma-separated per-ONU load weights (default equal)")
		bench     = fs.String("bench", "", "run the IPACT-paper benchmark (limited vs cgoa) and write bench JSON to this file")
		seeds     = fs.Int("seeds", 3, "seeds per load point with -bench")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *bench != "" {
		if *seeds < 1 {
			return fmt.Errorf("-seeds %d, want >= 1", *seeds)
		}
		return runBench(*bench, *seeds, *dur)
	}
	ls, err := parseFloats(*loads)
	if err != nil {
		return fmt.Errorf("-loads: %w", err)
	}
	ds, err := parseFloats(*dist)
	if err != nil {
		return fmt.Errorf("-distances: %w", err)
	}
	ws, err := parseFloats(*weightArg)
	if err != nil {
		return fmt.Errorf("-weights: %w", err)
	}
	if *rate < 1e6 || *rate > 1e12 {
		return fmt.Errorf("-rate %g out of range", *rate)
	}
	var results []sim.Result
	for _, name := range strings.Split(*dbas, ",") {
		for _, l := range ls {
			cfg := sim.Config{
				ONUs: *onus, LineRate: int64(*rate), Load: l, Weights: ws, DBA: strings.TrimSpace(name),
				MaxCycle: *cycle, MaxWindow: *window, Guard: *guard, Distances: ds, MaxDistance: *maxDist,
				Duration: *dur, Warmup: *warm, Seed: *seed, Sources: *sources,
			}
			if *gain >= 0 {
				cfg.Tune = sim.WithGain(*gain)
			}
			r, err := sim.Run(cfg)
			if err != nil {
				return err
			}
			results = append(results, r)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "dba\tload\toffered\tthroughput\tmean µs\tp99 µs\tmax µs\tutil\tbusy\tjain\tjain(delay)\tcycle µs\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%.2f\t%.3f\t%.3f\t%.1f\t%.1f\t%.0f\t%.4f\t%.3f\t%.4f\t%.4f\t%.0f\t\n",
			r.DBA, r.Load, r.Offered, r.Throughput, r.DelayMean, r.DelayP99, r.DelayMax, r.Utilisation, r.Busy, r.Jain, r.JainDelay, r.CycleMean)
	}
	return tw.Flush()
}
