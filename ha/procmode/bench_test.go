package procmode

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// lastState is the HA state in hanode's last "state <unit> <state>" line.
func lastState(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		if f := strings.Fields(lines[i]); len(f) == 3 && f[0] == "state" {
			return f[2]
		}
	}
	return ""
}

// lastAnswerer returns the slot that answered most recently, if answers
// have been steady (every answer of the last window from that slot).
func lastAnswerer(p *Prober, window time.Duration) (uint8, bool) {
	as := p.Answers()
	if len(as) == 0 || time.Since(as[len(as)-1].At) > 20*time.Millisecond {
		return 0, false
	}
	slot := as[len(as)-1].Slot
	for i := len(as) - 1; i >= 0 && time.Since(as[i].At) < window; i-- {
		if as[i].Slot != slot {
			return 0, false
		}
	}
	return slot, true
}

func waitSteady(t *testing.T, p *Prober, limit time.Duration) uint8 {
	t.Helper()
	start := time.Now()
	for time.Since(start) < limit {
		if slot, ok := lastAnswerer(p, 100*time.Millisecond); ok {
			return slot
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no steady answers within %v", limit)
	return 0
}

// measure kills the answering unit kills times and returns the outages.
func measure(t *testing.T, p *Prober, kills int, settle time.Duration, kill func(uint8), restart func(uint8), other func(uint8) uint8, explain func(uint8, time.Time, time.Duration)) []time.Duration {
	var gaps []time.Duration
	for i := 0; i < kills; i++ {
		active := waitSteady(t, p, 20*time.Second)
		killed := time.Now()
		kill(active)
		first := waitAnswers(t, p, other(active), 30*time.Second)
		end := first.Add(20 * time.Millisecond)
		time.Sleep(time.Until(end) + 5*time.Millisecond)
		gap, err := Gap(p.Answers(), killed, end)
		if err != nil {
			t.Fatal(err)
		}
		gaps = append(gaps, gap)
		if explain != nil && gap > 60*time.Millisecond {
			explain(other(active), killed, gap)
		}
		restart(active)
		time.Sleep(settle)
	}
	return gaps
}

// TestBenchFailover is the failover bench (make bench-failover), not a
// test: it runs only with CGOA_BENCH_FAILOVER=<output json path>. The
// outage is the largest gap in 1 ms probes around a kill.
//
//   - process: hanode processes for slots 1 (witness), 3 and 4 (mgmt 2N)
//     in namespaces; kill -9 of the active (CGOA_FAILOVER_KILLS, default
//     100), restart it, wait until it is standby, repeat.
//   - keepalived: a VRRPv3 pair in the same backplane (hub 1), advert at
//     the default 1 s and at 0.05 s; a kill is kill -9 of the master's
//     keepalived and its link cut (the blade pulled).
func TestBenchFailover(t *testing.T) {
	out := os.Getenv("CGOA_BENCH_FAILOVER")
	if out == "" {
		t.Skip("bench: set CGOA_BENCH_FAILOVER=build/bench/failover.json to run")
	}
	Require(t)
	kills := envInt("CGOA_FAILOVER_KILLS", 100)
	kaDefaultKills := envInt("CGOA_FAILOVER_KA_DEFAULT_KILLS", 5)
	ka50Kills := envInt("CGOA_FAILOVER_KA_50MS_KILLS", 20)

	bin := Build(t, t.TempDir())
	s := New(t, bin, []uint8{1, 3, 4}, mgmtGroups)
	for _, slot := range []uint8{1, 3, 4} {
		s.Start(slot)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := s.NewProber(3, 4)
	go p.Run(ctx, time.Millisecond)
	procGaps := measure(t, p, kills, 50*time.Millisecond,
		func(slot uint8) { s.Kill(slot) },
		func(slot uint8) {
			pr := s.Start(slot)
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) {
				if lastState(pr.Lines()) == "standby" {
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
			t.Fatalf("restarted slot %d not standby within 10s: %v", slot, pr.Lines())
		},
		func(slot uint8) uint8 { return 7 - slot },
		func(successor uint8, killed time.Time, gap time.Duration) {
			// Show what the successor and the witness saw around a long gap.
			t.Logf("gap %v after kill at %d:", gap, killed.UnixNano())
			for _, slot := range []uint8{1, successor} {
				if pr := s.Proc(slot); pr != nil {
					for _, l := range pr.Lines() {
						var ns int64
						if _, err := fmt.Sscanf(l, "event %d", &ns); err == nil && ns > killed.Add(-50*time.Millisecond).UnixNano() && ns < killed.Add(gap+50*time.Millisecond).UnixNano() {
							t.Logf("  slot %d +%v %s", slot, time.Duration(ns-killed.UnixNano()), l[strings.Index(l[6:], " ")+7:])
						}
					}
				}
			}
		})
	t.Logf("process: %d kills p50 %.1f ms p99 %.1f ms", len(procGaps), Percentile(procGaps, 50), Percentile(procGaps, 99))

	vip := netip.MustParseAddrPort(fmt.Sprintf("%s:%d", VIP, Probe))
	kaRun := func(advert string, ids [2]int, n int, settle time.Duration) []time.Duration {
		k, err := s.NewKeepalived(advert, ids)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			if err := k.Start(id); err != nil {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("keepalived logs:\n%s", k.Logs())
			}
		})
		// Both start as BACKUP; let the election settle before measuring.
		time.Sleep(2 * settle)
		kp := s.NewProberTo(vip)
		kctx, kcancel := context.WithCancel(ctx)
		go kp.Run(kctx, time.Millisecond)
		gaps := measure(t, kp, n, settle,
			func(id uint8) { k.Kill(int(id)) },
			func(id uint8) {
				if err := k.Start(int(id)); err != nil {
					t.Fatal(err)
				}
			},
			func(id uint8) uint8 { return uint8(ids[0] + ids[1] - int(id)) }, nil)
		kcancel()
		k.stopAll()
		t.Logf("keepalived advert %s: %d kills p50 %.1f ms p99 %.1f ms", advert, len(gaps), Percentile(gaps, 50), Percentile(gaps, 99))
		return gaps
	}
	ka50 := kaRun("0.05", [2]int{23, 24}, ka50Kills, 500*time.Millisecond)
	kaDef := kaRun("1", [2]int{21, 22}, kaDefaultKills, 4*time.Second)

	peer50 := "keepalived VRRPv3 advert 0.05 s"
	r := Report{Bench: "failover", Machine: Machine(), Results: []Result{
		{Metric: "process.p50", Unit: "ms", Value: Percentile(procGaps, 50), Samples: len(procGaps), Peer: &Peer{peer50, Percentile(ka50, 50)}},
		{Metric: "process.p99", Unit: "ms", Value: Percentile(procGaps, 99), Samples: len(procGaps), Peer: &Peer{peer50, Percentile(ka50, 99)}},
		{Metric: "keepalived.default.p99", Unit: "ms", Value: Percentile(kaDef, 99), Samples: len(kaDef)},
		{Metric: "keepalived.default.p50", Unit: "ms", Value: Percentile(kaDef, 50), Samples: len(kaDef)},
		{Metric: "keepalived.50ms.p99", Unit: "ms", Value: Percentile(ka50, 99), Samples: len(ka50)},
		{Metric: "keepalived.50ms.p50", Unit: "ms", Value: Percentile(ka50, 50), Samples: len(ka50)},
		{Metric: "process.max", Unit: "ms", Value: Percentile(procGaps, 100), Samples: len(procGaps)},
	}}
	if err := WriteReport(out, r); err != nil {
		t.Fatal(err)
	}
}
