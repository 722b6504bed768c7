package dba

import (
	"errors"
	"testing"
	"time"
)

// paperConfig is the IPACT paper's set-up: 16 ONUs, 1 Gb/s, 2 ms cycle,
// 1 µs guard, 15000-byte window.
func paperConfig(t *testing.T) Config {
	t.Helper()
	c := Config{ONUs: 16, LineRate: 1e9, Guard: 62, MaxCycle: 125000, MaxWindow: 15000}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConversions(t *testing.T) {
	c := paperConfig(t)
	for _, tt := range []struct {
		bytes int
		q     int64
	}{{0, 0}, {1, 1}, {2, 1}, {3, 2}, {ReportBytes, 42}, {125000, 62500}} {
		if got := c.BytesToQuanta(tt.bytes); got != tt.q {
			t.Errorf("BytesToQuanta(%d) = %d, want %d", tt.bytes, got, tt.q)
		}
	}
	if got := c.QuantaToBytes(62500); got != 125000 {
		t.Errorf("QuantaToBytes(62500) = %d, want 125000", got)
	}
	if got := c.MaxGrantBytes(); got != 131070-ReportBytes {
		t.Errorf("MaxGrantBytes() = %d, want %d", got, 131070-ReportBytes)
	}
}

func TestValidate(t *testing.T) {
	c := Config{ONUs: 16, LineRate: 1e9, Guard: 62, MaxCycle: 125000}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	// (125000/16 - 62 - 42) quanta of 2 bytes each.
	if c.MaxWindow != 15416 {
		t.Errorf("derived MaxWindow = %d, want 15416", c.MaxWindow)
	}
	bad := []Config{
		{ONUs: 0, LineRate: 1e9, MaxCycle: 1},
		{ONUs: 1, LineRate: 0, MaxCycle: 1},
		{ONUs: 1, LineRate: 1e9, MaxCycle: 0},
		{ONUs: 1, LineRate: 1e9, MaxCycle: 1000, Guard: -1},
		{ONUs: 32, LineRate: 1e9, MaxCycle: 1000},                     // derived window too small
		{ONUs: 1, LineRate: 1e9, MaxCycle: 125000, MaxWindow: 200000}, // beyond a GATE
	}
	for _, b := range bad {
		if err := b.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want error", b)
		}
	}
	if _, err := New("nope", paperConfig(t)); !errors.Is(err, ErrUnknownAlgorithm) {
		t.Errorf("New(nope) = %v, want %v", err, ErrUnknownAlgorithm)
	}
}

func TestBaselines(t *testing.T) {
	c := paperConfig(t)
	for _, q := range []int{0, 84, 14999, 15000, 15001, 200000} {
		r := Report{ONU: 3, Queued: q}
		if got := (&Fixed{c}).Size(r, 0); got != 15000 {
			t.Errorf("fixed.Size(%d) = %d, want 15000", q, got)
		}
		if got, want := (&Gated{c}).Size(r, 0), min(q, c.MaxGrantBytes()); got != want {
			t.Errorf("gated.Size(%d) = %d, want %d", q, got, want)
		}
		if got, want := (&Limited{c}).Size(r, 0), min(q, 15000); got != want {
			t.Errorf("limited.Size(%d) = %d, want %d", q, got, want)
		}
	}
}

func TestPollerInterleaves(t *testing.T) {
	c := paperConfig(t)
	alg, _ := New("limited", c)
	p := NewPoller(c, alg)
	rtt := []int64{0, 12500, 6250, 100} // 0, 20, 10 km and 16 m
	var last Window
	now := int64(0)
	for k := range 40 {
		i := k % len(rtt)
		w := p.Next(Report{ONU: i, Now: now, Queued: (k * 3797) % 40000}, rtt[i])
		if k > 0 && w.Start < last.End()+c.Guard {
			t.Fatalf("window %d starts %d, before previous end %d + guard %d", k, w.Start, last.End(), c.Guard)
		}
		if w.Start < now+rtt[i] {
			t.Fatalf("window %d starts %d, before a GATE sent at %d can cross RTT %d", k, w.Start, now, rtt[i])
		}
		if w.Data > c.MaxWindow {
			t.Fatalf("limited window %d has %d bytes, max %d", k, w.Data, c.MaxWindow)
		}
		if want := c.BytesToQuanta(w.Data + ReportBytes); w.Length != want {
			t.Fatalf("window %d length %d quanta, want %d", k, w.Length, want)
		}
		last = w
		now = w.End() - 5000 // the next REPORT arrives before the channel frees
	}
}

func TestCGOARedistributesExcess(t *testing.T) {
	c := paperConfig(t)
	g := NewCGOA(c)
	// 15 light ONUs report 1000 bytes each: 14000 bytes each left unused.
	for i := 1; i < 16; i++ {
		if got := g.Size(Report{ONU: i, Queued: 1000}, 0); got != 1000 {
			t.Fatalf("light ONU %d: Size = %d, want 1000", i, got)
		}
	}
	// One heavy ONU may take the others' excess, beyond MaxWindow.
	got := g.Size(Report{ONU: 0, Queued: 300000}, 0)
	if want := 15000 + 15*14000; got != min(want, c.MaxGrantBytes()) {
		t.Errorf("heavy ONU: Size = %d, want %d", got, min(want, c.MaxGrantBytes()))
	}
	// IPACT limited would give 15000.
	if lim := (&Limited{c}).Size(Report{ONU: 0, Queued: 100000}, 0); got <= lim {
		t.Errorf("cgoa %d not above limited %d for a heavy ONU among light ones", got, lim)
	}
}

func TestCGOACycleBound(t *testing.T) {
	c := paperConfig(t)
	g := NewCGOA(c)
	last := make([]int, 16)
	// Excess is shared; the last N grants never exceed twice N*MaxWindow
	// (the transient bound), and never exceed what was reported.
	for k := range 200 {
		i := (k * 7) % 16
		q := 5000 + (k*7919)%80000
		last[i] = g.Size(Report{ONU: i, Queued: q}, 0)
		sum := 0
		for _, l := range last {
			sum += l
		}
		if sum > 2*16*c.MaxWindow {
			t.Fatalf("after %d reports the last grants sum to %d > %d", k, sum, 2*16*c.MaxWindow)
		}
		if last[i] < min(q, c.MaxWindow) {
			t.Fatalf("ONU %d granted %d, below its guarantee min(%d, %d)", i, last[i], q, c.MaxWindow)
		}
		if last[i] > q {
			t.Fatalf("ONU %d granted %d > reported %d", i, last[i], q)
		}
	}
}

func TestCGOAAligned(t *testing.T) {
	c := paperConfig(t)
	g := NewCGOA(c)
	// All ONUs heavy (no excess left after the first round): a capped
	// grant uses the frame-aligned queue set so the window is filled
	// exactly.
	for i := range 16 {
		g.Size(Report{ONU: i, Queued: 40000, Aligned: 14900}, 0)
	}
	for i := range 16 {
		if got := g.Size(Report{ONU: i, Queued: 40000, Aligned: 14900}, 0); got != 14900 {
			t.Errorf("ONU %d: Size = %d, want the aligned 14900", i, got)
		}
	}
}

func TestCGOASLA(t *testing.T) {
	c := paperConfig(t)
	g := NewCGOA(c)
	// 100 Mb/s over a 2 ms cycle is 25000 bytes.
	if err := g.SetSLA(0, SLA{Guaranteed: 100e6, Peak: 120e6}); err == nil {
		t.Errorf("SetSLA(100 Mb/s) with 15 equal shares = nil, want oversubscription error")
	}
	if err := g.SetSLA(1, SLA{Guaranteed: 10e6}); err != nil {
		t.Fatal(err)
	}
	if err := g.SetSLA(0, SLA{Guaranteed: 100e6, Peak: 120e6}); err != nil {
		t.Fatal(err)
	}
	// Others all heavy: no excess, ONU 0 still gets its guarantee.
	for range 2 {
		for i := 2; i < 16; i++ {
			g.Size(Report{ONU: i, Queued: 50000}, 0)
		}
	}
	if got := g.Size(Report{ONU: 0, Queued: 60000}, 0); got != 25000 {
		t.Errorf("guaranteed ONU: Size = %d, want 25000", got)
	}
	// ONU 1's guarantee is 2500 bytes per cycle.
	if got := g.Size(Report{ONU: 1, Queued: 60000}, 0); got != 2500 {
		t.Errorf("10 Mb/s ONU: Size = %d, want 2500", got)
	}
	// Peak caps excess: with everyone else idle ONU 0 gets 30000 (120 Mb/s).
	for i := 1; i < 16; i++ {
		g.Size(Report{ONU: i, Queued: 0}, 0)
	}
	// (a cycle later: the peak-rate bucket has refilled).
	if got := g.Size(Report{ONU: 0, Queued: 200000, Now: c.MaxCycle}, c.MaxCycle); got != 30000 {
		t.Errorf("peak-capped ONU: Size = %d, want 30000", got)
	}
	if err := g.SetSLA(2, SLA{Guaranteed: 900e6}); err == nil {
		t.Errorf("SetSLA(900 Mb/s guaranteed) = nil, want oversubscription error")
	}
	if err := g.SetSLA(2, SLA{Guaranteed: 20e6, Peak: 10e6}); err == nil {
		t.Errorf("SetSLA(peak < guaranteed) = nil, want error")
	}
	if err := g.SetSLA(16, SLA{}); err == nil {
		t.Errorf("SetSLA(ONU 16 of 16) = nil, want error")
	}
}

func TestCGOAPrediction(t *testing.T) {
	c := paperConfig(t)
	g := NewCGOA(c)
	g.Gain = 1
	// Steady 1 byte per quantum: 1000 quanta between reports, all sent.
	now := int64(0)
	for range 10 {
		now += 1000
		g.Size(Report{ONU: 0, Now: now, Queued: 1000, Received: 1000, Granted: 1000}, now+100)
	}
	// Window 2000 quanta after the report: about 2000 more bytes expected.
	got := g.Size(Report{ONU: 0, Now: now + 1000, Queued: 1000, Received: 1000, Granted: 1000}, now+3000)
	if got < 2800 || got > 3000 {
		t.Errorf("predicted grant = %d, want about 1000 + 2000", got)
	}
	// A window that went unused takes the prediction back.
	got = g.Size(Report{ONU: 0, Now: now + 3100, Queued: 0, Received: 1000, Granted: 3000}, now+3200)
	if got > 100 {
		t.Errorf("grant after an idle prediction = %d, want <= 100", got)
	}
}

func TestPollerReserve(t *testing.T) {
	c := paperConfig(t)
	alg, _ := New("limited", c)
	p := NewPoller(c, alg)
	w := p.Next(Report{ONU: 0, Now: 1000, Queued: 5000}, 100)
	// Busy channel: the reservation follows the window and its guard.
	if got, want := p.Reserve(0, 20000), w.End()+c.Guard; got != want {
		t.Fatalf("Reserve(0, 20000) = %d, want %d", got, want)
	}
	res := w.End() + c.Guard
	// The next grant follows the reserved window.
	w2 := p.Next(Report{ONU: 1, Now: 1100, Queued: 5000}, 100)
	if w2.Start != res+20000+c.Guard {
		t.Errorf("window after reservation starts %d, want %d", w2.Start, res+20000+c.Guard)
	}
	// Idle channel: the reservation starts at earliest.
	if got := p.Reserve(1e9, 10); got != 1e9 {
		t.Errorf("Reserve(1e9, 10) on an idle channel = %d, want 1e9", got)
	}
}

// TestCGOAPeakIsARate polls one backlogged ONU with a 50 Mb/s peak, alone
// on the PON (so the cycles are far shorter than MaxCycle) and then
// beside a loaded ONU, as the OLT does (Poller.NotBefore defers the
// poll): what its windows carry over a second must stay within the peak
// rate (plus one bucket) and reach at least 95% of it.
func TestCGOAPeakIsARate(t *testing.T) {
	for _, others := range []bool{false, true} {
		c := paperConfig(t)
		g := NewCGOA(c)
		p := NewPoller(c, g)
		const peak = 50e6
		if err := g.SetSLA(0, SLA{Peak: peak}); err != nil {
			t.Fatal(err)
		}
		second := int64(time.Second / Quantum)
		const rtt = 1000
		now := make([]int64, 2)
		var last [2]Report
		carried := make([]int, 2)
		active := 1
		if others {
			active = 2
		}
		for i := range active {
			last[i] = Report{ONU: i, Queued: 1 << 30}
		}
		// Event loop over the ONUs' REPORT times, earliest first.
		for {
			i := 0
			if active == 2 && now[1] < now[0] {
				i = 1
			}
			if now[i] >= second {
				break
			}
			r := last[i]
			r.Now = now[i]
			if at := p.NotBefore(r, rtt); at > r.Now {
				now[i] = at
				continue
			}
			w := p.Next(r, rtt)
			carried[i] += w.Data
			last[i] = Report{ONU: i, Queued: 1 << 30, Granted: w.Data, Received: w.Data}
			now[i] = w.End()
		}
		rate := float64(carried[0]) * 8 // bytes in one second
		bucket := 50e6 / 8 * (time.Duration(c.MaxCycle) * Quantum).Seconds()
		t.Logf("others loaded %v: peak-limited ONU carried %.1f Mb/s, other %.1f Mb/s", others, rate/1e6, float64(carried[1])*8/1e6)
		if rate > peak+bucket*8 || rate < 0.95*peak {
			t.Errorf("others loaded %v: 50 Mb/s peak ONU carried %.2f Mb/s in 1 s, want 47.5..%.2f", others, rate/1e6, (peak+bucket*8)/1e6)
		}
		if others && float64(carried[1])*8 < 800e6 {
			t.Errorf("the other ONU carried only %.1f Mb/s", float64(carried[1])*8/1e6)
		}
	}
}
