package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	bshelf "github.com/cgoa/cgoa/blades/shelf"
	"github.com/cgoa/cgoa/qemu/farend"
	"github.com/cgoa/cgoa/qemu/shelf"
	"github.com/cgoa/cgoa/qemu/topology"
	"github.com/cgoa/cgoa/qemu/vm"
)

// benchFailover pulls the active mgmt blade of the default shelf kills times. Each outage is
// the largest gap in 1 ms probes, sent from the core network (behind hub 1's uplink) to the
// management address, around the kill; the pulled blade is reinserted and must rejoin as
// standby before the next kill. The results are merged into the file at out, beside the
// process-mode figures and the keepalived peers that `make bench-failover` measured first.
func benchFailover(a vm.Artifacts, kills int, haTimers, out string, verbose bool) (Report, error) {
	rep := Report{Bench: "failover"}
	if b, err := os.ReadFile(out); err == nil {
		_ = json.Unmarshal(b, &rep)
	}
	run, err := os.MkdirTemp("", "bench-failover-")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(run)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(kills+2)*2*time.Minute)
	defer cancel()
	s, err := shelf.New(shelf.Options{Topology: topology.Default(), Artifacts: a, RunDir: run, HATimers: haTimers})
	if err != nil {
		return rep, err
	}
	defer s.Close()
	if err := s.Start(ctx); err != nil {
		return rep, err
	}
	if err := s.WaitUp(ctx); err != nil {
		return rep, err
	}
	up, ok := s.Uplink("uplink-s1")
	if !ok {
		return rep, fmt.Errorf("no uplink-s1")
	}
	p := farend.NewProber(up, net.HardwareAddr{0x02, 0xc0, 0, 0, 0, 0xfa}, netip.MustParseAddr("169.254.3.250"),
		netip.AddrPortFrom(bshelf.MgmtService.Addr(), bshelf.ProbePort))
	pctx, pcancel := context.WithCancel(ctx)
	defer pcancel()
	go p.Run(pctx, time.Millisecond)
	answerFrom := func(slot int, after time.Time) error {
		want := fmt.Sprintf("active %d", slot)
		for ctx.Err() == nil {
			if a := p.Last(); a.At.After(after) && (slot == 0 || a.Text == want) {
				return nil
			}
			time.Sleep(20 * time.Millisecond)
		}
		return fmt.Errorf("no probe answer from slot %d: %w", slot, ctx.Err())
	}
	standbyReady := func(slot int) error {
		for ctx.Err() == nil {
			out, err := s.Exec(ctx, slot, "show ha json")
			var v struct {
				InQuorum bool `json:"in_quorum"`
				Groups   []struct {
					Name  string `json:"name"`
					Units []struct {
						Node  int    `json:"node"`
						State string `json:"state"`
						Oper  string `json:"oper"`
					} `json:"units"`
				} `json:"groups"`
			}
			if err == nil && json.Unmarshal([]byte(out), &v) == nil && v.InQuorum {
				for _, g := range v.Groups {
					for _, u := range g.Units {
						// Ready too: its checkpoint replica in sync (the readiness gate), else a
						// kill is a double failure and the takeover waits for the replica.
						if g.Name == "mgmt" && u.Node == slot && u.State == "standby" && u.Oper == "in-service" {
							return nil
						}
					}
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
		return fmt.Errorf("slot %d did not rejoin as standby: %w", slot, ctx.Err())
	}
	if err := answerFrom(0, time.Time{}); err != nil {
		return rep, err
	}
	var gaps []time.Duration
	for i := 0; i < kills; i++ {
		var active int
		fmt.Sscanf(p.Last().Text, "active %d", &active)
		if active != 3 && active != 4 {
			return rep, fmt.Errorf("kill %d: answer %q", i, p.Last().Text)
		}
		other := 7 - active
		if err := standbyReady(other); err != nil {
			return rep, err
		}
		// The console reads of -v come first: a serial console is slow under emulation, and
		// the blades must not be busy with it at the pull.
		var off map[int]time.Duration
		if verbose {
			out, _ := s.Exec(ctx, other, "show ckpt")
			fmt.Fprintf(os.Stderr, "standby %d before kill %d:\n%s\n", other, i+1, out)
			off = clockOffsets(ctx, s, 1, 2, other)
		}
		time.Sleep(300 * time.Millisecond) // steady probes before the kill
		killed := time.Now()
		if err := s.Kill(ctx, active); err != nil {
			return rep, err
		}
		if err := answerFrom(other, killed); err != nil {
			return rep, err
		}
		time.Sleep(100 * time.Millisecond)
		gap, err := farend.Gap(p.Answers(), killed.Add(-200*time.Millisecond), p.Last().At.Add(-50*time.Millisecond))
		if err != nil {
			return rep, err
		}
		gaps = append(gaps, gap)
		// The new active's own view: from the last claim it heard to holding the assignment.
		inside := "?"
		if out, err := s.Exec(ctx, other, "show ha json"); err == nil {
			var v struct {
				Last *struct {
					Duration time.Duration `json:"duration_ns"`
				} `json:"last_failover"`
			}
			if json.Unmarshal([]byte(out), &v) == nil && v.Last != nil {
				inside = v.Last.Duration.Round(time.Millisecond).String()
			}
		}
		fmt.Fprintf(os.Stderr, "kill %d: slot %d -> %d, outage %v (blade: last claim heard to active %s)\n", i+1, active, other, gap.Round(time.Millisecond), inside)
		if verbose {
			fmt.Fprintf(os.Stderr, "  %s\n", pullTimeline(ctx, s, off, killed, active, other, p.Answers()))
			out, _ := s.Exec(ctx, other, "show log 30")
			fmt.Fprintf(os.Stderr, "new active %d, log (kill at %s):\n%s\n", other, killed.Format("15:04:05.000"), out)
		}
		rejoin := time.Now()
		if err := s.Restart(ctx, active); err != nil {
			return rep, err
		}
		// The pulled blade's return must not disturb the service: the longest gap while it
		// boots and rejoins as the standby.
		if err := standbyReady(active); err != nil {
			return rep, err
		}
		if g, err := farend.Gap(p.Answers(), rejoin, time.Now().Add(-50*time.Millisecond)); err == nil {
			fmt.Fprintf(os.Stderr, "  slot %d back as standby after %v; longest gap meanwhile %v\n", active, time.Since(rejoin).Round(100*time.Millisecond), g.Round(time.Millisecond))
			if verbose {
				// Which blades were not scheduled: the HA loop's late wake-ups so far.
				var late []string
				for _, b := range s.Topology().Blades {
					out, err := s.Exec(ctx, b.Slot, "show ha json")
					var v struct {
						N     uint64        `json:"late_wakeups"`
						Worst time.Duration `json:"worst_late_ns"`
					}
					if err == nil && json.Unmarshal([]byte(out), &v) == nil {
						late = append(late, fmt.Sprintf("slot %d: %d (worst %v)", b.Slot, v.N, v.Worst.Round(time.Millisecond)))
					}
				}
				fmt.Fprintf(os.Stderr, "  HA loop late wake-ups since each blade's boot: %s\n", strings.Join(late, ", "))
			}
			if at, d := longestGap(p.Answers(), rejoin); verbose && d > 300*time.Millisecond {
				out, _ := s.Exec(ctx, other, "show log 40")
				fmt.Fprintf(os.Stderr, "  gap %s..%s; active %d, log:\n%s\n", at.Format("15:04:05.000"), at.Add(d).Format("15:04:05.000"), other, out)
				for _, b := range s.Topology().Blades {
					if b.Slot != other {
						out, _ := s.Exec(ctx, b.Slot, "show log 25")
						fmt.Fprintf(os.Stderr, "  slot %d log:\n%s\n", b.Slot, out)
					}
				}
			}
		}
	}
	ms := func(q float64) float64 {
		d := slices.Clone(gaps)
		slices.Sort(d)
		i := min(len(d)-1, max(0, int(q*float64(len(d))+0.999999)-1))
		return round(float64(d[i].Microseconds())/1000, 1)
	}
	var peer *Peer
	for _, r := range rep.Results {
		if r.Metric == "keepalived.50ms.p99" {
			peer = &Peer{Name: "keepalived VRRPv3 advert 0.05 s (process mode, same make bench-failover run)", Value: r.Value}
		}
	}
	rep.Results = slices.DeleteFunc(rep.Results, func(r Result) bool { return strings.HasPrefix(r.Metric, "qemu.") })
	rep.Results = append(rep.Results,
		Result{Metric: "qemu.p50", Unit: "ms", Value: ms(0.5), Samples: len(gaps), Peer: peer},
		Result{Metric: "qemu.p99", Unit: "ms", Value: ms(0.99), Samples: len(gaps), Peer: peer})
	return rep, nil
}

// longestGap is where the longest gap between answers after from starts, and its length.
func longestGap(answers []farend.Answer, from time.Time) (time.Time, time.Duration) {
	var at time.Time
	var gap time.Duration
	last := from
	for _, a := range answers {
		if a.At.Before(from) {
			continue
		}
		if d := a.At.Sub(last); d > gap {
			at, gap = last, d
		}
		last = a.At
	}
	return at, gap
}
