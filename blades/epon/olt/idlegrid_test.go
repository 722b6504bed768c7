package olt_test

import (
	"slices"
	"testing"
	"time"

	"github.com/cgoa/cgoa/blades/epon/olt"
	"github.com/cgoa/cgoa/blades/epon/onu"
	"github.com/cgoa/cgoa/blades/epon/onu/vpon"
	"github.com/cgoa/cgoa/netstack/mpcp"
)

// idleGates runs an idle PON of four ONUs at different distances for a second after
// registration and returns, per ONU LLID, the times (ns) of the unicast GATEs sent to it.
func idleGates(t *testing.T, cfg olt.Config) map[uint16][]int64 {
	t.Helper()
	p := vpon.New(vpon.Config{Seed: 5})
	tp := &tap{pon: p, down: p.OLTPort()}
	cfg.MAC = oltMAC()
	o, err := olt.New(cfg, p.OLTClock(), tp)
	if err != nil {
		t.Fatal(err)
	}
	tp.olt = o
	for i, km := range []float64{0.5, 3, 9.5, 17} {
		u, err := p.AddONU(onu.Config{MAC: onuMAC(i)}, km)
		if err != nil {
			t.Fatal(err)
		}
		u.PowerOn()
	}
	p.SetOLT(tp)
	if !p.RunWhile(2*time.Second, func() bool { return o.ShowPON().Registered < 4 }) {
		t.Fatalf("registered %d of 4 ONUs by %v", o.ShowPON().Registered, p.Now())
	}
	from := int64(p.Now()) + int64(600*time.Millisecond) // past registration and OAM discovery
	p.RunUntil(p.Now() + 1600*time.Millisecond)
	out := map[uint16][]int64{}
	for _, f := range tp.frames {
		if f.up || f.at < from {
			continue
		}
		var m mpcp.Frame
		if m.UnmarshalBinary(f.frame) != nil {
			continue
		}
		if g, ok := m.Message.(*mpcp.Gate); ok && !g.Discovery {
			out[f.llid] = append(out[f.llid], f.at)
		}
	}
	if len(out) != 4 {
		t.Fatalf("GATEs to %d ONUs, want 4", len(out))
	}
	return out
}

// TestIdleGrid: with IdleGrid the idle ONUs of a PON are polled at the grid's instants, all
// together, and each still every IdlePoll to IdlePoll+IdleGrid (plus the GATE's lead and the
// round trip, after which its REPORT comes); without it each ONU has its own instants.
func TestIdleGrid(t *testing.T) {
	const tq = 16 // ns per quantum
	poll, grid := int64(40*olt.QuantaPerSecond/1000), int64(10*olt.QuantaPerSecond/1000)
	lead := int64(olt.QuantaPerSecond / 1000)
	instants := func(g map[uint16][]int64) int {
		var all []int64
		for _, ts := range g {
			all = append(all, ts...)
		}
		slices.Sort(all)
		return len(slices.Compact(all))
	}
	free := idleGates(t, olt.Config{IdlePoll: poll, GateLead: lead})
	aligned := idleGates(t, olt.Config{IdlePoll: poll, GateLead: lead, IdleGrid: grid})
	for llid, ts := range aligned {
		if len(ts) < 15 {
			t.Errorf("LLID %d: %d GATEs in a second, want about 22", llid, len(ts))
		}
		// Each ONU sends an OAM keep-alive every second: that REPORT is not empty, so its
		// GATE goes at once, off the grid (and the grant after it too).
		off := 0
		for i, at := range ts {
			if at%(grid*tq) != 0 {
				off++
				continue
			}
			if i == 0 || ts[i-1]%(grid*tq) != 0 {
				continue
			}
			// A REPORT comes within the lead plus a round trip (< 1 ms here) after its GATE.
			if d := at - ts[i-1]; d < poll*tq || d > (poll+grid+lead)*tq+int64(time.Millisecond) {
				t.Errorf("LLID %d: idle GATEs %v apart, want %v..%v", llid, time.Duration(d),
					time.Duration(poll*tq), time.Duration((poll+grid+lead)*tq)+time.Millisecond)
			}
		}
		if off > 3 {
			t.Errorf("LLID %d: %d of %d GATEs off the %v grid, want at most 3 (the OAM keep-alive's)", llid, off, len(ts), time.Duration(grid*tq))
		}
	}
	// All four ONUs share each instant: about a quarter as many as without the grid.
	a, f := instants(aligned), instants(free)
	t.Logf("GATE instants in a second: %d on the grid, %d without", a, f)
	if a*3 > f {
		t.Errorf("GATE instants in a second: %d on the grid, %d without; want at most a third", a, f)
	}
	if _, err := olt.New(olt.Config{MAC: oltMAC(), IdleGrid: -1}, vpon.New(vpon.Config{}).OLTClock(), &tap{}); err == nil {
		t.Errorf("olt.New() with a negative idle grid: no error")
	}
}
