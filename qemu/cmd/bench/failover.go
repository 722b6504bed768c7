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
	// The probes enter through the active hub's uplink: the core network reaches the shelf
	// through the hub that carries its traffic. Through the other hub, every probe and answer
	// would also cross the inter-hub link and a second emulated hub, and which hub came up
	// active would change the figure from one boot of the shelf to the next.
	hub, err := activeHub(ctx, s)
	if err != nil {
		return rep, err
	}
	up, ok := s.Uplink(fmt.Sprintf("uplink-s%d", hub))
	if !ok {
		return rep, fmt.Errorf("no uplink-s%d", hub)
	}
	fmt.Fprintf(os.Stderr, "probing through hub %d's uplink (the active hub)\n", hub)
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
			v, err := haView(ctx, s, slot)
			if err == nil && v.InQuorum {
				// Ready too: its checkpoint replica in sync (the readiness gate), else a
				// kill is a double failure and the takeover waits for the replica.
				if u, ok := v.unit("mgmt", slot); ok && u.State == "standby" && u.Oper == "in-service" {
					return nil
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
	moved := 0 // failovers before a pull that the bench did not cause
	const maxMoved = 5
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
		// An outage is measured from a steady service: the shelf has settled from the last
		// reinsertion (the blade's boot, its replica's resync) and the active answers every
		// probe. A pull while answers still stall would add the stall to the outage, and a
		// standby that the host does not yet schedule in time (its HA loop wakes late: the
		// reinserted blade's boot, and an emulator translating code paths it runs for the
		// first time) would add its own delay to the takeover.
		if waited, err := settled(ctx, s, other, 3*time.Second, time.Minute); err != nil {
			fmt.Fprintf(os.Stderr, "kill %d: standby %d not settled after %v (%v); pulling anyway\n", i+1, other, waited.Round(time.Second), err)
		} else if verbose {
			fmt.Fprintf(os.Stderr, "kill %d: standby %d settled after %v\n", i+1, other, waited.Round(100*time.Millisecond))
		}
		if waited, err := steady(ctx, p, time.Second, steadyGap, 30*time.Second); err != nil {
			fmt.Fprintf(os.Stderr, "kill %d: answers not steady after %v (%v); pulling anyway\n", i+1, waited.Round(time.Second), err)
		} else if verbose {
			fmt.Fprintf(os.Stderr, "kill %d: answers steady after %v\n", i+1, waited.Round(100*time.Millisecond))
		}
		// The blade to pull is the one answering now: a failover the bench did not cause (an
		// active the host starved past its lease) must not be measured as this pull's.
		if now := p.Last().Text; now != fmt.Sprintf("active %d", active) {
			moved++
			if moved > maxMoved {
				return rep, fmt.Errorf("kill %d: the service moved without a pull %d times (now %q)", i+1, moved, now)
			}
			fmt.Fprintf(os.Stderr, "kill %d: the service moved to %q before the pull (not caused by the bench, not counted); again\n", i+1, now)
			i--
			continue
		}
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
		if v, err := haView(ctx, s, other); err == nil && v.Last != nil {
			inside = v.Last.Duration.Round(time.Millisecond).String()
		}
		fmt.Fprintf(os.Stderr, "kill %d: slot %d -> %d, outage %v (blade: last claim heard to active %s)\n", i+1, active, other, gap.Round(time.Millisecond), inside)
		if verbose {
			fmt.Fprintf(os.Stderr, "  %s\n", pullTimeline(ctx, s, off, killed, active, other, p.Answers(), p.Moves()))
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
					if v, err := haView(ctx, s, b.Slot); err == nil {
						late = append(late, fmt.Sprintf("slot %d: %d (worst %v)", b.Slot, v.Late, v.WorstLate.Round(time.Millisecond)))
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

// steadyGap is the largest gap between probe answers that still counts as a steady
// service: well above the jitter of 1 ms probes through emulated blades on a loaded host,
// well below any failover.
const steadyGap = 50 * time.Millisecond

// steady waits until the answers of the last window have no gap over maxGap (at most limit),
// and says how long it waited.
func steady(ctx context.Context, p *farend.Prober, window, maxGap, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	for {
		now := time.Now()
		if now.Sub(start) >= window {
			g, err := farend.Gap(p.Answers(), now.Add(-window), now.Add(-maxGap))
			if err == nil && g <= maxGap {
				return now.Sub(start), nil
			}
			if now.Sub(start) > limit {
				if err == nil {
					err = fmt.Errorf("a gap of %v in the last %v", g.Round(time.Millisecond), window)
				}
				return now.Sub(start), err
			}
		}
		select {
		case <-ctx.Done():
			return time.Since(start), ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// settled waits until slot's HA loop has not woken late (a blade the host did not schedule
// in time) for quiet, at most limit, and says how long it waited.
func settled(ctx context.Context, s *shelf.Shelf, slot int, quiet, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	var last uint64
	var since time.Time
	for {
		v, err := haView(ctx, s, slot)
		now := time.Now()
		switch {
		case err != nil:
			since = time.Time{}
		case since.IsZero() || v.Late != last:
			last, since = v.Late, now
		case now.Sub(since) >= quiet:
			return now.Sub(start), nil
		}
		if now.Sub(start) > limit {
			return now.Sub(start), fmt.Errorf("late wake-ups still counting (%d)", last)
		}
		select {
		case <-ctx.Done():
			return time.Since(start), ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// haStatus is the part of `show ha json` the bench reads.
type haStatus struct {
	InQuorum  bool          `json:"in_quorum"`
	Late      uint64        `json:"late_wakeups"`
	WorstLate time.Duration `json:"worst_late_ns"`
	Last      *struct {
		Duration time.Duration `json:"duration_ns"`
	} `json:"last_failover"`
	Groups []struct {
		Name  string   `json:"name"`
		Units []haUnit `json:"units"`
	} `json:"groups"`
}

type haUnit struct {
	Node  int    `json:"node"`
	State string `json:"state"`
	Oper  string `json:"oper"`
}

// unit is the unit of group on slot.
func (v haStatus) unit(group string, slot int) (haUnit, bool) {
	for _, g := range v.Groups {
		for _, u := range g.Units {
			if g.Name == group && u.Node == slot {
				return u, true
			}
		}
	}
	return haUnit{}, false
}

// haView reads `show ha json` on slot.
func haView(ctx context.Context, s *shelf.Shelf, slot int) (haStatus, error) {
	var v haStatus
	out, err := s.Exec(ctx, slot, "show ha json")
	if err != nil {
		return v, err
	}
	err = json.Unmarshal([]byte(out), &v)
	return v, err
}

// activeHub is the slot of the hub whose switch unit is active, as the first mgmt blade sees
// it once the switch group has one.
func activeHub(ctx context.Context, s *shelf.Shelf) (int, error) {
	for ctx.Err() == nil {
		for _, b := range s.Topology().Blades {
			if b.Hub() {
				continue
			}
			if v, err := haView(ctx, s, b.Slot); err == nil && v.InQuorum {
				for _, h := range s.Topology().Blades {
					if u, ok := v.unit("switch", h.Slot); ok && h.Hub() && u.State == "active" {
						return h.Slot, nil
					}
				}
			}
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	return 0, fmt.Errorf("no active hub: %w", ctx.Err())
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
