package olt_test

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cgoa/cgoa/blades/epon/dba"
	"github.com/cgoa/cgoa/blades/epon/olt"
	"github.com/cgoa/cgoa/blades/epon/onu"
	"github.com/cgoa/cgoa/blades/epon/onu/vpon"
	"github.com/cgoa/cgoa/netstack/mpcp"
	"github.com/cgoa/cgoa/netstack/oam"
)

func TestRegister32(t *testing.T) {
	// All ONUs at the same distance in a narrow discovery window, so
	// REGISTER_REQs collide and only the back-off sorts them out.
	cfg := olt.Config{DiscoveryWindow: 2048, DiscoveryPeriod: olt.QuantaPerSecond / 50}
	tp := newPON(t, cfg, 7, kms(32, func(int) float64 { return 3 }))
	tp.runUntil(5*time.Second, "32 registrations", func() bool { return tp.registered() == 32 })
	st := tp.pon.Stats()
	if st.RequestCollisions == 0 {
		t.Errorf("no REGISTER_REQ collided; the test does not exercise the back-off")
	}
	var backoffs uint64
	llids := map[uint16]bool{}
	for i, u := range tp.onus {
		if u.State() != onu.Registered {
			t.Errorf("ONU %d state %v, want registered", i, u.State())
		}
		backoffs += u.Stats().Backoffs
		if llids[u.LLID()] {
			t.Errorf("LLID %d assigned twice", u.LLID())
		}
		llids[u.LLID()] = true
		if v := tp.view(i); v.LLID != u.LLID() || v.State != "registered" {
			t.Errorf("show onu for ONU %d = LLID %d %s, want LLID %d registered", i, v.LLID, v.State, u.LLID())
		}
	}
	if backoffs == 0 {
		t.Errorf("ONUs backed off 0 times after %d collisions", st.RequestCollisions)
	}
	if c := st.Collisions - st.RequestCollisions; c != 0 {
		t.Errorf("%d frames other than REGISTER_REQ collided", c)
	}
	t.Logf("32 registered at %v after %d discovery windows, %d REGISTER_REQ collisions, %d back-offs",
		tp.pon.Now(), tp.olt.Stats().DiscoveryWindowsSent, st.RequestCollisions, backoffs)

	// Spread over 0..20 km with the default window: all register too.
	tp2 := newPON(t, olt.Config{}, 8, kms(32, func(i int) float64 { return float64(i) * 20 / 31 }))
	tp2.runUntil(5*time.Second, "32 registrations at 0..20 km", func() bool { return tp2.registered() == 32 })
}

func TestRangingExact(t *testing.T) {
	km := []float64{0, 1, 10, 20, 0.0123, 7.77}
	tp := newPON(t, olt.Config{}, 3, km)
	tp.runUntil(time.Second, "registration", func() bool { return tp.registered() == len(km) })
	// Some polling cycles so the RTT is re-measured on REPORTs.
	tp.pon.RunUntil(tp.pon.Now() + 50*time.Millisecond)
	for i, d := range km {
		oneWay := tp.pon.Delay(i).Nanoseconds()
		want := 2 * oneWay / 16 // the round trip, whole quanta
		v := tp.view(i)
		if v.RTT != want {
			t.Errorf("%g km: RTT = %d TQ, want %d (one way %d ns)", d, v.RTT, want, oneWay)
		}
		if v.Stats.RTT != want {
			t.Errorf("%g km: RTT at registration = %d TQ, want %d", d, v.Stats.RTT, want)
		}
		if math.Abs(v.DistanceKm-d) > 0.0016 { // one quantum is 1.6 m of fibre
			t.Errorf("%g km: distance shown %g km", d, v.DistanceKm)
		}
		if v.Stats.RxReport == 0 {
			t.Errorf("%g km: no REPORTs in 50 ms", d)
		}
	}
}

func TestMPCPTimeoutAndReregistration(t *testing.T) {
	tp := newPON(t, olt.Config{}, 4, []float64{2, 8, 15, 20})
	tp.runUntil(time.Second, "registration", func() bool { return tp.registered() == 4 })
	tp.pon.RunUntil(tp.pon.Now() + 10*time.Millisecond)
	const victim = 2
	llid := tp.onus[victim].LLID()
	cut := tp.pon.Now()
	tp.pon.Cut(victim, true)
	tp.runUntil(cut+2*time.Second, "MPCP timeout", func() bool { return len(tp.alarmsOf(olt.AlarmMPCPTimeout)) > 0 })
	took := tp.pon.Now() - cut
	// The last REPORT came at most an idle-poll cycle (1 ms) and a
	// window before the cut.
	if took < 990*time.Millisecond || took > time.Second {
		t.Errorf("deregistered %v after the fibre cut, want just under 1 s (MPCP timeout)", took)
	}
	a := tp.alarmsOf(olt.AlarmMPCPTimeout)[0]
	if a.LLID != llid || a.MAC != onuMAC(victim).String() {
		t.Errorf("timeout alarm %v, want LLID %d %v", a, llid, onuMAC(victim))
	}
	if v := tp.view(victim); v.State != "deregistered" || v.Stats.Timeouts != 1 {
		t.Errorf("after timeout: state %s timeouts %d, want deregistered 1", v.State, v.Stats.Timeouts)
	}
	if tp.registered() != 3 {
		t.Errorf("registered = %d, want the other 3", tp.registered())
	}
	// The ONU times out too (no GATE) and goes back to discovery.
	tp.runUntil(cut+2*time.Second, "ONU-side timeout", func() bool { return tp.onus[victim].State() == onu.Discovery })
	back := tp.pon.Now()
	tp.pon.Cut(victim, false)
	tp.runUntil(back+time.Second, "re-registration", func() bool { return tp.registered() == 4 })
	v := tp.view(victim)
	if v.Stats.Registrations != 2 || v.LLID != llid {
		t.Errorf("after return: registrations %d LLID %d, want 2 and the old LLID %d", v.Stats.Registrations, v.LLID, llid)
	}
	if st := tp.olt.Stats(); st.Timeouts != 1 {
		t.Errorf("PON timeouts = %d, want 1", st.Timeouts)
	}
	// The others never stopped being polled.
	for i, u := range tp.onus {
		if i != victim && u.Stats().Registrations != 1 {
			t.Errorf("ONU %d registered %d times, want 1", i, u.Stats().Registrations)
		}
	}
}

func TestRebootReregisters(t *testing.T) {
	tp := newPON(t, olt.Config{}, 5, []float64{1, 12})
	tp.runUntil(time.Second, "registration", func() bool { return tp.registered() == 2 })
	// A quick power cycle: the ONU asks to register while the OLT still
	// has it registered.
	tp.pon.At(tp.pon.Now(), func() { tp.onus[1].PowerOff(); tp.onus[1].PowerOn() })
	tp.runUntil(tp.pon.Now()+time.Second, "re-registration", func() bool {
		return tp.onus[1].State() == onu.Registered && tp.view(1).Stats.Registrations == 2
	})
	if n := tp.olt.Stats().Timeouts; n != 0 {
		t.Errorf("timeouts = %d, want 0 (re-registered before the timeout)", n)
	}
}

func TestOAMDyingGaspAndLinkEvent(t *testing.T) {
	tp := newPON(t, olt.Config{}, 6, []float64{4, 9})
	tp.runUntil(time.Second, "OAM discovery", func() bool {
		return len(tp.alarmsOf(olt.AlarmOAMUp)) == 2 && tp.onus[0].OAMState() == "send-any" && tp.onus[1].OAMState() == "send-any"
	})
	for i := range tp.onus {
		if v := tp.view(i); v.OAM != "send-any" || v.Stats.OAM.InformationRx == 0 {
			t.Errorf("ONU %d OAM %s info rx %d, want send-any", i, v.OAM, v.Stats.OAM.InformationRx)
		}
		if tp.onus[i].OAMState() != "send-any" {
			t.Errorf("ONU %d's own OAM state %s, want send-any", i, tp.onus[i].OAMState())
		}
	}
	// Keep-alives hold the link up well past the 5 s lost-link time.
	tp.pon.RunUntil(tp.pon.Now() + 7*time.Second)
	if n := len(tp.alarmsOf(olt.AlarmOAMLinkLost)); n != 0 {
		t.Fatalf("%d OAM link-lost alarms with keep-alives running", n)
	}
	ev := oam.Event{Type: oam.EventErroredFrame, Timestamp: 10, Window: 10, Threshold: 1, Errors: 5, ErrorRunningTotal: 5, EventRunningTotal: 1}
	tp.pon.At(tp.pon.Now(), func() {
		if !tp.onus[0].LinkEvent(ev) {
			t.Error("LinkEvent() = false on a registered ONU with OAM up")
		}
	})
	tp.runUntil(tp.pon.Now()+100*time.Millisecond, "link event alarm", func() bool { return len(tp.alarmsOf(olt.AlarmLinkEvent)) == 1 })
	if a := tp.alarmsOf(olt.AlarmLinkEvent)[0]; a.MAC != onuMAC(0).String() || !strings.Contains(a.Text, "5 errors") {
		t.Errorf("link event alarm %v", a)
	}
	t0 := tp.pon.Now()
	tp.pon.At(t0, func() {
		if !tp.onus[1].DyingGasp() {
			t.Error("DyingGasp() = false on a registered ONU")
		}
	})
	tp.runUntil(t0+100*time.Millisecond, "dying gasp alarm", func() bool { return len(tp.alarmsOf(olt.AlarmDyingGasp)) == 1 })
	a := tp.alarmsOf(olt.AlarmDyingGasp)[0]
	if a.MAC != onuMAC(1).String() || a.Severity != "critical" {
		t.Errorf("dying gasp alarm %v, want critical for %v", a, onuMAC(1))
	}
	if tp.pon.Now()-t0 > 5*time.Millisecond {
		t.Errorf("dying gasp took %v to arrive, want within a few cycles", tp.pon.Now()-t0)
	}
	if tp.onus[1].State() != onu.Off {
		t.Errorf("ONU state after its dying gasp = %v, want off", tp.onus[1].State())
	}
	if v := tp.view(1); v.Stats.OAM.DyingGasps != 1 {
		t.Errorf("dying gasps counted %d, want 1", v.Stats.OAM.DyingGasps)
	}
}

// TestTrafficNoOverlapNoLoss runs 32 ONUs at 0..20 km with numbered
// upstream traffic at 70% of the line rate: no burst may overlap another
// at the OLT and no frame may be lost.
func TestTrafficNoOverlapNoLoss(t *testing.T) {
	cfg := olt.Config{}
	tp := newPON(t, cfg, 9, kms(32, func(i int) float64 { return float64((i*7)%32) * 20 / 31 }))
	var ups []vpon.Upstream
	tp.pon.OnUpstream = func(u vpon.Upstream) { ups = append(ups, u) }
	tp.runUntil(5*time.Second, "32 registrations", func() bool { return tp.registered() == 32 })

	loss := onu.NewLossCounter()
	tp.olt.OnData = func(llid uint16, frame []byte, _ int64) {
		if !loss.Add(frame) {
			t.Errorf("LLID %d: frame that is not test traffic", llid)
		}
	}
	start := tp.pon.Now()
	const dur = 300 * time.Millisecond
	perONU := 0.7 * 1e9 / 32 // bit/s of line time
	sent := make([]uint64, 32)
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := []int{60, 590, 1514}
	for i := range tp.onus {
		var next func()
		next = func() {
			if tp.pon.Now() >= start+dur {
				return
			}
			size := sizes[rng.IntN(3)]
			f := onu.NumberedFrame(oltMAC(), onuMAC(i), uint32(i), sent[i], size)
			if err := tp.onus[i].Enqueue(f); err != nil {
				t.Errorf("ONU %d: Enqueue() = %v", i, err)
			}
			sent[i]++
			tp.pon.PokeONU(i)
			gap := time.Duration(float64(onu.LineBytes(size)*8) / perONU * 1e9 * (0.5 + rng.Float64()))
			tp.pon.At(tp.pon.Now()+gap, next)
		}
		tp.pon.At(start+time.Duration(rng.IntN(100000)), next)
	}
	tp.pon.RunUntil(start + dur + 50*time.Millisecond)

	var total, lost uint64
	for i := range tp.onus {
		loss.Expect(uint32(i), sent[i])
		total += sent[i]
		lost += loss.Lost[uint32(i)]
		if st := tp.onus[i].Stats(); st.DropQueueFull+st.DropUnregistered != 0 {
			t.Errorf("ONU %d dropped %d frames", i, st.DropQueueFull+st.DropUnregistered)
		}
		if q := tp.onus[i].Queued(); q != 0 {
			t.Errorf("ONU %d still has %d bytes queued after the drain", i, q)
		}
		if n := loss.OutOfOrder[uint32(i)]; n != 0 {
			t.Errorf("ONU %d: %d frames out of order", i, n)
		}
	}
	if lost != 0 {
		t.Errorf("%d of %d frames lost", lost, total)
	}
	if total < 10000 {
		t.Errorf("only %d frames sent; the test is too small", total)
	}
	// Bursts of different ONUs never overlap at the OLT and keep the
	// guard time apart (less a quantum of ranging resolution).
	slices.SortFunc(ups, func(a, b vpon.Upstream) int { return int(a.Start - b.Start) })
	guard := (tp.olt.DBAConfig().Guard - 1) * 16
	var prev *vpon.Upstream
	for i := range ups {
		u := &ups[i]
		if u.Collided && !u.RegisterReq {
			t.Fatalf("ONU %d frame at %d ns collided", u.ONU, u.Start)
		}
		if prev != nil && prev.ONU != u.ONU && !(prev.RegisterReq && u.RegisterReq) && u.Start-prev.End < guard {
			t.Fatalf("ONU %d burst at %d ns starts %d ns after ONU %d's ends, want >= %d", u.ONU, u.Start, u.Start-prev.End, prev.ONU, guard)
		}
		if prev == nil || u.End > prev.End {
			prev = u
		}
	}
	st := tp.pon.Stats()
	t.Logf("%d frames, %d upstream frames checked, %d REGISTER_REQ collisions", total, len(ups), st.RequestCollisions)
}

func TestAdminDeregister(t *testing.T) {
	tp := newPON(t, olt.Config{}, 10, []float64{1, 2, 3})
	tp.runUntil(time.Second, "registration", func() bool { return tp.registered() == 3 })
	llid := tp.onus[0].LLID()
	for _, bad := range []string{"", "nope", "0x7000", "02:00:00:00:00:99"} {
		if err := tp.olt.Deregister(bad); err == nil {
			t.Errorf("Deregister(%q) = nil, want error", bad)
		}
	}
	if err := tp.olt.Deregister("02:00:00:00:00:99"); !errors.Is(err, olt.ErrNoONU) {
		t.Errorf("Deregister(unknown MAC) = %v, want %v", err, olt.ErrNoONU)
	}
	if err := tp.olt.Deregister(onuMAC(1).String()); err != nil {
		t.Fatal(err)
	}
	if err := tp.olt.Deregister("0x" + strings.TrimLeft(strings.ToLower(hex16(llid)), "0")); err != nil {
		t.Fatal(err)
	}
	if err := tp.olt.Deregister(onuMAC(1).String()); err == nil {
		t.Error("Deregister of a deregistered ONU = nil, want error")
	}
	if tp.registered() != 1 {
		t.Errorf("registered = %d after deregistering 2, want 1", tp.registered())
	}
	tp.runUntil(tp.pon.Now()+50*time.Millisecond, "ONUs told", func() bool {
		return tp.onus[0].State() < onu.AckPending && tp.onus[1].State() < onu.AckPending
	})
	// They may come back in a later discovery window.
	tp.runUntil(tp.pon.Now()+time.Second, "re-registration", func() bool { return tp.registered() == 3 })
	if n := len(tp.alarmsOf(olt.AlarmDeregistered)); n != 2 {
		t.Errorf("%d deregistration events, want 2", n)
	}
}

func hex16(v uint16) string {
	const d = "0123456789abcdef"
	return string([]byte{d[v>>12], d[v>>8&15], d[v>>4&15], d[v&15]})
}

func TestSLA(t *testing.T) {
	cfg := olt.Config{}
	tp := newPON(t, cfg, 11, []float64{5, 5})
	// Provisioned before registration: applied when the ONU registers.
	if err := tp.olt.SetSLA(onuMAC(0), dba.SLA{Guaranteed: 10e6, Peak: 50e6}); err != nil {
		t.Fatal(err)
	}
	if err := tp.olt.SetSLA(onuMAC(1), dba.SLA{Guaranteed: 60e6, Peak: 50e6}); err == nil {
		t.Error("SetSLA(peak < guaranteed) = nil, want error")
	}
	tp.runUntil(time.Second, "registration", func() bool { return tp.registered() == 2 })
	if v := tp.view(0); v.SLA.Guaranteed != 10e6 || v.SLA.Peak != 50e6 || v.SLA.Error != "" {
		t.Errorf("SLA shown %+v, want 10/50 Mb/s without error", v.SLA)
	}
	// More than the whole cycle: refused, the ONU stays best effort.
	if err := tp.olt.SetSLA(onuMAC(1), dba.SLA{Guaranteed: 2e9}); err == nil {
		t.Error("SetSLA(2 Gb/s guaranteed) = nil, want admission error")
	}
	if v := tp.view(1); v.SLA.Error == "" {
		t.Errorf("refused SLA shows no error: %+v", v.SLA)
	}
	if err := tp.olt.SetSLA(onuMAC(1), dba.SLA{}); err != nil {
		t.Fatal(err)
	}
	// Both offered 300 Mb/s, well within the line: the 50 Mb/s-peak ONU
	// carries its peak and no more (the DBA's token bucket), however
	// short the cycles; the other carries what it offers.
	got := map[uint16]int{}
	tp.olt.OnData = func(llid uint16, f []byte, _ int64) { got[llid] += onu.LineBytes(len(f)) }
	const offered, dur = 300e6, 300 * time.Millisecond
	gap := time.Duration(float64(onu.LineBytes(1514)*8) / offered * 1e9)
	start := tp.pon.Now()
	for i := range tp.onus {
		var seq uint64
		var next func()
		next = func() {
			if tp.pon.Now() >= start+dur {
				return
			}
			tp.onus[i].Enqueue(onu.NumberedFrame(oltMAC(), onuMAC(i), 0, seq, 1514))
			seq++
			tp.pon.PokeONU(i)
			tp.pon.At(tp.pon.Now()+gap, next)
		}
		tp.pon.At(start, next)
	}
	tp.pon.RunUntil(start + dur)
	rate := func(i int) float64 { return float64(got[tp.onus[i].LLID()]) * 8 / dur.Seconds() }
	t.Logf("offered %.0f Mb/s each: 50 Mb/s-peak ONU carried %.2f Mb/s, the other %.2f Mb/s (line rate, frames with FCS, preamble and gap)",
		offered/1e6, rate(0)/1e6, rate(1)/1e6)
	// One bucket (the peak over the 2 ms maximum cycle) may pass on top.
	if max := 50e6 + 50e6*0.002/dur.Seconds(); rate(0) > max || rate(0) < 45e6 {
		t.Errorf("50 Mb/s-peak ONU carried %.2f Mb/s at %.0f Mb/s offered, want 45..%.2f", rate(0)/1e6, offered/1e6, max/1e6)
	}
	if rate(1) < 0.95*offered {
		t.Errorf("ONU without SLA carried %.2f Mb/s of %.0f offered", rate(1)/1e6, offered/1e6)
	}
	if tp.olt.Stats().PacedPolls == 0 {
		t.Error("no paced polls: the OLT granted the peak-limited ONU windows it could not use")
	}
	if v := tp.view(0); v.Stats.RxDataLost != 0 {
		t.Errorf("peak-limited ONU lost %d frames (its queue holds them)", v.Stats.RxDataLost)
	}
}

func TestViewsJSON(t *testing.T) {
	tp := newPON(t, olt.Config{Name: "pon3"}, 12, []float64{10})
	tp.runUntil(time.Second, "registration", func() bool { return tp.registered() == 1 })
	b, err := json.Marshal(struct {
		PON  olt.PONView   `json:"pon"`
		ONUs []olt.ONUView `json:"onus"`
	}{tp.olt.ShowPON(), tp.olt.ShowONUs()})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"name":"pon3"`, `"registered":1`, `"rtt_tq":6250`, `"distance_km":10`, `"discovery_windows_sent":`, `"tx_gate":`, `"rx_report":`, `"information_tx":`, `"state":"registered"`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("JSON lacks %s: %s", k, b)
		}
	}
	if v, ok := tp.olt.ONU(tp.onus[0].LLID()); !ok || v.MAC != onuMAC(0).String() {
		t.Errorf("ONU(%d) = %+v, %v", tp.onus[0].LLID(), v, ok)
	}
	if _, ok := tp.olt.ONU(999); ok {
		t.Error("ONU(999) found")
	}
}

func TestBadFrames(t *testing.T) {
	tp := newPON(t, olt.Config{}, 13, []float64{1})
	tp.runUntil(time.Second, "registration", func() bool { return tp.registered() == 1 })
	llid := tp.onus[0].LLID()
	before := tp.olt.Stats()
	gate, _ := (&mpcp.Frame{Destination: mpcp.MACControlAddr, Source: onuMAC(0), Message: &mpcp.Gate{Grants: []mpcp.Grant{{Length: 10}}}}).MarshalBinary()
	rep, _ := (&mpcp.Frame{Destination: mpcp.MACControlAddr, Source: onuMAC(0), Message: &mpcp.Report{}}).MarshalBinary()
	bad := append([]byte(nil), rep...)
	bad[14], bad[15] = 0, 9 // unknown opcode
	now := int64(tp.pon.Now() / 16)
	tp.olt.Receive(llid, []byte{1, 2, 3}, now) // runt
	tp.olt.Receive(llid, bad, now)             // bad MPCPDU
	tp.olt.Receive(llid, gate, now)            // GATE upstream
	tp.olt.Receive(llid+5, rep, now)           // REPORT on an unknown LLID
	tp.olt.Receive(llid+5, onu.NumberedFrame(oltMAC(), onuMAC(0), 0, 0, 64), now)
	st := tp.olt.Stats()
	if d := st.RxErrors - before.RxErrors; d != 3 {
		t.Errorf("rx errors +%d, want +3", d)
	}
	if d := st.RxUnknownLLID - before.RxUnknownLLID; d != 2 {
		t.Errorf("unknown LLID +%d, want +2", d)
	}
	if tp.registered() != 1 {
		t.Error("bad frames deregistered the ONU")
	}
}

func FuzzReceive(f *testing.F) {
	rep, _ := (&mpcp.Frame{Destination: mpcp.MACControlAddr, Source: onuMAC(0), Message: &mpcp.Report{QueueSets: []mpcp.QueueSet{{Bitmap: 1, Lengths: [8]uint16{100}}}}}).MarshalBinary()
	req, _ := (&mpcp.Frame{Destination: mpcp.MACControlAddr, Source: onuMAC(5), Message: &mpcp.RegisterReq{Flags: mpcp.ReqRegister}}).MarshalBinary()
	info, _ := (&oam.PDU{Destination: oam.SlowProtocolsAddr, Source: onuMAC(0), Flags: oam.FlagDyingGasp, Payload: &oam.Information{Local: &oam.InfoTLV{Version: 1, MaxPDUSize: 1518}}}).MarshalBinary()
	f.Add(uint16(1), rep)
	f.Add(uint16(0x7fff), req)
	f.Add(uint16(1), info)
	f.Add(uint16(1), []byte{})
	tp := newPON(&testing.T{}, olt.Config{}, 14, []float64{1})
	tp.pon.RunUntil(200 * time.Millisecond)
	f.Fuzz(func(t *testing.T, llid uint16, frame []byte) {
		tp.olt.Receive(llid, frame, int64(tp.pon.Now()/16))
		tp.olt.Tick()
		_ = tp.olt.ShowONUs()
	})
}
