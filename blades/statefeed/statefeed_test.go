package statefeed

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/cgoa/cgoa/ha/transport"
	"github.com/cgoa/cgoa/stp"
)

// loop is a Sender delivering straight into a Feed as slot from, optionally dropping or
// keeping frames.
type loop struct {
	feed *Feed
	from uint8
	drop func(i int) bool
	n    int
	kept [][]byte
	fail error
}

func (l *loop) Send(typ transport.Type, to uint8, p []byte) error {
	if l.fail != nil {
		return l.fail
	}
	if typ != FrameType || to != transport.Broadcast {
		return fmt.Errorf("sent type %d to %d, want %d to broadcast", typ, to, FrameType)
	}
	i := l.n
	l.n++
	l.kept = append(l.kept, append([]byte(nil), p...))
	if l.drop != nil && l.drop(i) {
		return nil
	}
	if l.feed != nil {
		l.feed.Receive(l.from, p)
	}
	return nil
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func bigSnapshot(ports int) stp.Snapshot {
	s := stp.Snapshot{ID: 0x8000_0200_0000_0001, Priority: 0x8000, Root: 0x1000_0200_0000_0009, RootPort: 2,
		RootPortName: "base2", RootPathCost: 19, MaxAge: 20 * time.Second, HelloTime: 2 * time.Second,
		ForwardDelay: 15 * time.Second, HoldTime: time.Second, BridgeMaxAge: 20 * time.Second,
		BridgeHelloTime: 2 * time.Second, BridgeForwardDelay: 15 * time.Second, AgeingTime: 300 * time.Second,
		AgeingInUse: 15 * time.Second, TopologyChange: true, TopologyChanges: 7, SinceTopologyChange: 3 * time.Second}
	for i := 1; i <= ports; i++ {
		s.Ports = append(s.Ports, stp.PortSnapshot{Number: uint16(i), Name: fmt.Sprintf("base%d", i), ID: stp.PortID(0x8000 | i),
			Priority: 128, Enabled: true, Role: stp.RoleDesignated, State: stp.Forwarding, PathCost: 4,
			DesignatedRoot: s.Root, DesignatedCost: 19, DesignatedBridge: s.ID, DesignatedPort: stp.PortID(0x8000 | i),
			MessageAge: time.Second, ForwardDelayTimer: 2 * time.Second,
			PortCounters: stp.PortCounters{ForwardTransitions: uint64(i), ConfigOut: 100, BadIn: 1}})
	}
	return s
}

func bigEPON(pons, onus int) EPONState {
	var st EPONState
	for p := 0; p < pons; p++ {
		pon := PON{Name: fmt.Sprintf("pon%d", p), MAC: [6]byte{2, 0, 0, 0, 1, byte(p)}, Index: uint8(p),
			Stats: MPCPStats{MACCtrlFramesTransmitted: 1000, DiscoveryWindowsSent: 10, RxReport: 900}}
		for u := 0; u < onus; u++ {
			pon.ONUs = append(pon.ONUs, ONU{LLID: uint16(u + 1), MAC: [6]byte{2, 0, 0, 1, byte(p), byte(u)}, State: Registered,
				RTT: uint32(600 + u), PendingGrants: 4, OAMStatus: uint8(4 + 5*(u%2)),
				Stats: MPCPStats{MACCtrlFramesReceived: uint64(u), TxGate: 55, RxReport: 54}})
		}
		st.PONs = append(st.PONs, pon)
	}
	return st
}

func TestCodecRoundTrip(t *testing.T) {
	st := STPState{Active: true, Snapshot: bigSnapshot(3)}
	b, err := EncodeSTP(st)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeSTP(b)
	if err != nil || !reflect.DeepEqual(got, st) {
		t.Errorf("DecodeSTP(EncodeSTP(x)) = %+v, %v; want %+v", got, err, st)
	}
	ep := bigEPON(2, 3)
	b, err = EncodeEPON(ep)
	if err != nil {
		t.Fatal(err)
	}
	gotE, err := DecodeEPON(b)
	if err != nil || !reflect.DeepEqual(gotE, ep) {
		t.Errorf("DecodeEPON(EncodeEPON(x)) = %+v, %v; want %+v", gotE, err, ep)
	}
	ev := Event{Kind: ONURegistered, PON: "pon1", PONIndex: 1, LLID: 3, MAC: [6]byte{1, 2, 3, 4, 5, 6}, RTT: 612}
	gotEv, err := DecodeEvent(EncodeEvent(ev))
	if err != nil || gotEv != ev {
		t.Errorf("DecodeEvent(EncodeEvent(%+v)) = %+v, %v", ev, gotEv, err)
	}
}

func TestCodecRefusals(t *testing.T) {
	good, _ := Split(KindSTP, 1, []byte{1, 2, 3})
	hdr := func(mod func(p []byte)) []byte {
		p := append([]byte(nil), good[0]...)
		mod(p)
		return p
	}
	for _, c := range []struct {
		name string
		p    []byte
		want error
	}{
		{"short", good[0][:5], ErrShort},
		{"version", hdr(func(p []byte) { p[0] = 2 }), ErrVersion},
		{"kind 0", hdr(func(p []byte) { p[1] = 0 }), ErrKind},
		{"kind 9", hdr(func(p []byte) { p[1] = 9 }), ErrKind},
		{"count 0", hdr(func(p []byte) { p[9] = 0 }), ErrParts},
		{"index past count", hdr(func(p []byte) { p[7] = 1 }), ErrParts},
		{"too many parts", hdr(func(p []byte) { p[8] = 1 }), ErrParts},
		{"event in two parts", hdr(func(p []byte) { p[1] = byte(KindEPONEvent); p[9] = 2 }), ErrParts},
	} {
		if _, err := Decode(c.p); !errors.Is(err, c.want) {
			t.Errorf("Decode(%s) = %v, want %v", c.name, err, c.want)
		}
	}
	b, _ := EncodeSTP(STPState{Snapshot: bigSnapshot(2)})
	if _, err := DecodeSTP(b[:len(b)-1]); !errors.Is(err, ErrShort) {
		t.Errorf("DecodeSTP(truncated) = %v, want ErrShort", err)
	}
	if _, err := DecodeSTP(append(b, 0)); !errors.Is(err, ErrTrail) {
		t.Errorf("DecodeSTP(trailing) = %v, want ErrTrail", err)
	}
	e2, _ := EncodeEPON(bigEPON(1, 1))
	e2[2] = MaxName + 1
	if _, err := DecodeEPON(e2); !errors.Is(err, ErrBounds) {
		t.Errorf("DecodeEPON(name of %d octets) = %v, want ErrBounds", MaxName+1, err)
	}
	if _, err := EncodeSTP(STPState{Snapshot: stp.Snapshot{Ports: make([]stp.PortSnapshot, MaxPorts+1)}}); !errors.Is(err, ErrBounds) {
		t.Errorf("EncodeSTP(%d ports) = %v, want ErrBounds", MaxPorts+1, err)
	}
	if _, err := EncodeEPON(bigEPON(2, MaxONUs/2+1)); !errors.Is(err, ErrBounds) {
		t.Errorf("EncodeEPON(%d ONUs) = %v, want ErrBounds", MaxONUs+2, err)
	}
	if _, err := DecodeEvent([]byte{9}); !errors.Is(err, ErrKind) {
		t.Errorf("DecodeEvent(kind 9) = %v, want ErrKind", err)
	}
}

// TestFeedReassembly: a table of many parts arrives whole whatever the order and duplicates;
// a lost part leaves the previous table served and counts the publication abandoned.
func TestFeedReassembly(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	f := NewFeed(Options{Now: clk.now})
	ep := bigEPON(4, 32) // 128 ONUs: several frames
	body, _ := EncodeEPON(ep)
	parts, err := Split(KindEPON, 7, body)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) < 3 {
		t.Fatalf("%d octets in %d parts, want at least 3 for this test", len(body), len(parts))
	}
	for i := len(parts) - 1; i >= 0; i-- { // reversed, each twice
		f.Receive(5, parts[i])
		f.Receive(5, parts[i])
	}
	got := f.PONs()
	if len(got) != 1 || got[0].Slot != 5 || !reflect.DeepEqual(got[0].PONs, ep.PONs) {
		t.Fatalf("PONs() after reassembly = %d blades, want slot 5 with the table", len(got))
	}
	// The next publication loses a part; a third one arrives complete.
	ep2 := bigEPON(4, 31)
	body2, _ := EncodeEPON(ep2)
	parts2, _ := Split(KindEPON, 8, body2)
	for _, p := range parts2[1:] {
		f.Receive(5, p)
	}
	if got := f.PONs(); len(got[0].PONs[0].ONUs) != 32 {
		t.Errorf("after an incomplete publication: %d ONUs on pon0, want the previous 32", len(got[0].PONs[0].ONUs))
	}
	parts3, _ := Split(KindEPON, 9, body2)
	for _, p := range parts3 {
		f.Receive(5, p)
	}
	if got := f.PONs(); len(got[0].PONs[0].ONUs) != 31 {
		t.Errorf("after a complete publication: %d ONUs on pon0, want 31", len(got[0].PONs[0].ONUs))
	}
	c := f.Counters()
	if c.Publications != 2 || c.Abandoned != 1 || c.BadFrames != 0 {
		t.Errorf("counters %+v, want 2 publications, 1 abandoned", c)
	}
	// Stale tables are not served.
	clk.t = clk.t.Add(6 * time.Second)
	if got := f.PONs(); len(got) != 0 {
		t.Errorf("PONs() after the TTL = %d blades, want none", len(got))
	}
}

// TestFeedBadInput: junk frames, a corrupted body and an STP kind carrying an ONU event are
// counted and dropped.
func TestFeedBadInput(t *testing.T) {
	f := NewFeed(Options{})
	var events []Event
	f.OnEvent(func(e Event) { events = append(events, e) })
	f.Receive(1, nil)
	f.Receive(1, []byte("junk junk junk"))
	body, _ := EncodeSTP(STPState{Snapshot: bigSnapshot(1)})
	parts, _ := Split(KindSTP, 1, body[:len(body)-3])
	f.Receive(1, parts[0])
	bad, _ := Split(KindSTPEvent, 2, EncodeEvent(Event{Kind: ONULost}))
	f.Receive(1, bad[0])
	c := f.Counters()
	if c.Frames != 4 || c.BadFrames != 2 || c.BadBodies != 2 || c.Publications != 0 || len(events) != 0 {
		t.Errorf("counters %+v, events %v; want 4 frames, 2 bad frames, 2 bad bodies, nothing delivered", c, events)
	}
	if _, ok := f.Bridge(); ok {
		t.Error("Bridge() = ok after only bad input")
	}
}

// TestSTPWatch: the first poll publishes the baseline, a topology change publishes the event
// and the snapshot at once, becoming root sends newRoot (not topologyChange as well), and an
// unchanged bridge is republished every Refresh only.
func TestSTPWatch(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	f := NewFeed(Options{Now: clk.now})
	var events []Event
	f.OnEvent(func(e Event) { events = append(events, e) })
	l := &loop{feed: f, from: 1}
	snap := bigSnapshot(2)
	active := false
	w := &STPWatch{P: NewPublisher(l), Src: func() stp.Snapshot { return snap }, Active: func() bool { return active }}
	step := func(d time.Duration) {
		t.Helper()
		if err := w.Step(d); err != nil {
			t.Fatal(err)
		}
	}
	step(0)
	if got, ok := f.Bridge(); !ok || got.TopologyChanges != 7 || len(events) != 0 {
		t.Fatalf("after the first poll: Bridge() = %v, %v, events %v; want the snapshot, no event", got.TopologyChanges, ok, events)
	}
	sent := l.n
	step(Poll)
	if l.n != sent {
		t.Errorf("an unchanged bridge was republished after %v", Poll)
	}
	snap.TopologyChanges = 8
	step(Poll)
	if len(events) != 1 || events[0].Kind != TopologyChange || events[0].From != 1 || events[0].TopologyChanges != 8 {
		t.Fatalf("events %+v, want one topology-change from slot 1 with count 8", events)
	}
	snap.IsRoot, snap.Root, snap.TopologyChanges = true, snap.ID, 9
	step(Poll)
	if len(events) != 2 || events[1].Kind != NewRoot || events[1].Root != snap.ID {
		t.Fatalf("events %+v, want newRoot second (and no topology-change with it)", events)
	}
	sent = l.n
	for i := 0; i < int(Refresh/Poll); i++ {
		step(Poll)
	}
	if l.n <= sent {
		t.Errorf("no republication within %v", Refresh)
	}
	// The active bridge is preferred over a fresher standby one.
	active = true
	step(Refresh)
	other := &loop{feed: f, from: 2}
	sb := bigSnapshot(1)
	w2 := &STPWatch{P: NewPublisher(other), Src: func() stp.Snapshot { return sb }, Active: func() bool { return false }}
	clk.t = clk.t.Add(time.Second)
	if err := w2.Step(0); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.Bridge(); len(got.Ports) != 2 || got.SinceTopologyChange != snap.SinceTopologyChange+time.Second {
		t.Errorf("Bridge() = %d ports, since TC %v; want the active bridge's 2 ports, %v", len(got.Ports), got.SinceTopologyChange, snap.SinceTopologyChange+time.Second)
	}
	// A send failure is reported.
	l.fail = errors.New("no path")
	snap.TopologyChanges++
	if err := w.Step(Poll); err == nil {
		t.Error("Step with a failing transport = nil, want the error")
	}
}

func FuzzDecode(f *testing.F) {
	stpBody, _ := EncodeSTP(STPState{Active: true, Snapshot: bigSnapshot(2)})
	eponBody, _ := EncodeEPON(bigEPON(1, 2))
	for _, s := range []struct {
		k Kind
		b []byte
	}{{KindSTP, stpBody}, {KindEPON, eponBody}, {KindEPONEvent, EncodeEvent(Event{Kind: ONULost, PON: "pon0"})},
		{KindSTPEvent, EncodeEvent(Event{Kind: NewRoot})}} {
		parts, _ := Split(s.k, 1, s.b)
		f.Add(parts[0])
	}
	f.Add([]byte{1, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, p []byte) {
		feed := NewFeed(Options{})
		feed.Receive(1, p)
		c := feed.Counters()
		if c.BadFrames+c.BadBodies+c.Publications+c.Events > 1 {
			t.Fatalf("one frame counted %+v", c)
		}
		pt, err := Decode(p)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to the same octets.
		switch pt.Kind {
		case KindSTP:
			if st, err := DecodeSTP(pt.Data); err == nil {
				if b, err := EncodeSTP(st); err == nil && len(b) != len(pt.Data) {
					t.Fatalf("STP re-encodes to %d octets, decoded from %d", len(b), len(pt.Data))
				}
			}
		case KindEPON:
			if st, err := DecodeEPON(pt.Data); err == nil {
				if b, err := EncodeEPON(st); err == nil && len(b) != len(pt.Data) {
					t.Fatalf("EPON re-encodes to %d octets, decoded from %d", len(b), len(pt.Data))
				}
			}
		}
	})
}

// TestRunWakesOnChange: with a change notification, run steps at once on a change (the
// step's elapsed time is short of Refresh, so the refresh timer did not wake it) and the
// timer only refreshes.
func TestRunWakesOnChange(t *testing.T) {
	var mu sync.Mutex
	ch := make(chan struct{})
	changed := func() <-chan struct{} {
		mu.Lock()
		defer mu.Unlock()
		return ch
	}
	steps := make(chan time.Duration, 4)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, changed, func(d time.Duration) { steps <- d }) }()
	defer func() { cancel(); <-done }()
	if d := <-steps; d > Refresh {
		t.Fatalf("first step elapsed %v, want it at once", d)
	}
	mu.Lock()
	close(ch)
	ch = make(chan struct{})
	mu.Unlock()
	if d := <-steps; d >= Refresh {
		t.Fatalf("step after a change came after %v: the refresh timer woke run, not the change", d)
	}
	if d := <-steps; d < Refresh {
		t.Fatalf("step without a change came after %v, want the refresh (%v)", d, Refresh)
	}
}
