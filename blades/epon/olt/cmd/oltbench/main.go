// Command oltbench measures cpu.6x32, the OLT control plane's CPU cost
// (percent of one core for 6 PON ports x 32 ONUs at 2 ms polling cycles,
// blades/epon/olt/cpubench), and merges it into a bench JSON file (the
// one dbasim -bench writes), replacing an earlier cpu.6x32 result:
//
//	go run ./blades/epon/olt/cmd/oltbench -merge build/bench/dba.json
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/cgoa/cgoa/blades/epon/olt/cpubench"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "oltbench:", err)
		os.Exit(2)
	}
}

func run(args []string) error {
	fl := flag.NewFlagSet("oltbench", flag.ContinueOnError)
	pons := fl.Int("pons", 6, "PON ports")
	onus := fl.Int("onus", 32, "ONUs per port")
	cycle := fl.Duration("cycle", 2*time.Millisecond, "polling cycle")
	sim := fl.Duration("duration", 20*time.Second, "simulated PON time to run")
	merge := fl.String("merge", "", "bench JSON file to add the cpu metric to (created when missing)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *cycle <= 0 || *sim < *cycle {
		return fmt.Errorf("-cycle %v -duration %v: want 0 < cycle <= duration", *cycle, *sim)
	}
	r, err := cpubench.NewRig(*pons, *onus, *cycle)
	if err != nil {
		return err
	}
	res, err := r.Measure(int(*sim / *cycle))
	if err != nil {
		return err
	}
	metric := fmt.Sprintf("cpu.%dx%d", *pons, *onus)
	fmt.Printf("%s: %.3f %% of one core (%v CPU for %v of PON time, %d cycles, %d GATEs, wall %v)\n",
		metric, res.Percent, res.CPU.Round(time.Millisecond), res.Simulated, res.Cycles, res.GATEs, res.Wall.Round(time.Millisecond))
	if *merge == "" {
		return nil
	}
	entry := map[string]any{
		"metric": metric, "unit": "% of one core", "value": float64(int64(res.Percent*1000+0.5)) / 1000,
		"samples": res.Cycles,
		"note": fmt.Sprintf("blades/epon/olt code path (MPCP REPORT decode, DBA cgoa Poller, GATE encode, counters, timers, OAM keep-alives) for %d PON ports x %d registered ONUs, one REPORT per ONU per %v cycle; process CPU time (user+sys, GC included) per simulated second over %v of PON time; socket I/O and data path not included",
			*pons, *onus, *cycle, res.Simulated),
	}
	return mergeInto(*merge, entry)
}

// mergeInto adds entry to the results of the bench JSON at path, keeping
// everything else as it is.
func mergeInto(path string, entry map[string]any) error {
	doc := map[string]any{}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		doc["bench"] = "dba"
		doc["machine"] = machine()
	case err != nil:
		return err
	default:
		if err := json.Unmarshal(b, &doc); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	var results []any
	if rs, ok := doc["results"].([]any); ok {
		for _, r := range rs {
			if m, ok := r.(map[string]any); ok && m["metric"] == entry["metric"] {
				continue
			}
			results = append(results, r)
		}
	} else if doc["results"] != nil {
		return fmt.Errorf("%s: results is not a list", path)
	}
	doc["results"] = append(results, entry)
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(out, '\n'), 0o644)
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
