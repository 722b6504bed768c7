package stp

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

type sent struct {
	at   time.Duration
	port uint16
	b    BPDU
}

// recEnv records what a lone bridge does; fail makes every call fail.
type recEnv struct {
	clock  *simClock
	start  time.Time
	sent   []sent
	states map[uint16]PortState
	fail   bool
}

func (e *recEnv) err() error {
	if e.fail {
		return errors.New("env failure")
	}
	return nil
}

func (e *recEnv) SendBPDU(port uint16, b *BPDU) error {
	if e.fail {
		return e.err()
	}
	e.sent = append(e.sent, sent{e.clock.now.Sub(e.start), port, *b})
	return nil
}

func (e *recEnv) SetPortState(port uint16, s PortState) error {
	if e.fail {
		return e.err()
	}
	e.states[port] = s
	return nil
}
func (e *recEnv) FlushFDB(uint16) error               { return e.err() }
func (e *recEnv) SetAgeingTime(d time.Duration) error { return e.err() }

// lone makes a bridge (priority 0x8000, MAC ...:0a) with enabled ports 1..nports.
func lone(t *testing.T, nports int) (*Bridge, *recEnv) {
	t.Helper()
	c := &simClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	env := &recEnv{clock: c, start: c.now, states: map[uint16]PortState{}}
	b, err := New(Config{ID: mustBridgeID(t, 0x8000, macA)}, c, env)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= nports; i++ {
		if err := b.AddPort(PortConfig{Number: uint16(i), Priority: DefaultPortPriority}); err != nil {
			t.Fatal(err)
		}
		if err := b.EnablePort(uint16(i)); err != nil {
			t.Fatal(err)
		}
	}
	return b, env
}

func advance(b *Bridge, c *simClock, d time.Duration) {
	until := c.now.Add(d)
	for {
		t, ok := b.NextDeadline()
		if !ok || t.After(until) {
			break
		}
		c.now = t
		b.Tick()
	}
	c.now = until
}

// superior is a config BPDU from a better root (priority 0x1000).
func superior(t testing.TB, age Time) *BPDU {
	return &BPDU{Type: TypeConfig, RootID: mustBridgeID(t, 0x1000, macB), RootPathCost: 0,
		BridgeID: mustBridgeID(t, 0x1000, macB), PortID: 0x8001,
		MessageAge: age, MaxAge: 20 * 256, HelloTime: 2 * 256, ForwardDelay: 15 * 256}
}

func TestCheckTimers(t *testing.T) {
	for _, tt := range []struct {
		max, hello, fwd time.Duration
		ok              bool
	}{
		{20 * time.Second, 2 * time.Second, 15 * time.Second, true},
		{6 * time.Second, 1 * time.Second, 4 * time.Second, true},
		{40 * time.Second, 2 * time.Second, 30 * time.Second, true},
		{20 * time.Second, 0, 15 * time.Second, false},
		{41 * time.Second, 2 * time.Second, 30 * time.Second, false},
		{20 * time.Second, 2 * time.Second, 3 * time.Second, false},
		{30 * time.Second, 2 * time.Second, 15 * time.Second, false}, // 2 x (15-1) < 30
		{6 * time.Second, 4 * time.Second, 15 * time.Second, false},  // 6 < 2 x (4+1)
	} {
		err := CheckTimers(tt.max, tt.hello, tt.fwd)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrBadTimers)) {
			t.Errorf("CheckTimers(%v, %v, %v) = %v, want ok=%v", tt.max, tt.hello, tt.fwd, err, tt.ok)
		}
	}
	c := &simClock{}
	if _, err := New(Config{MaxAge: time.Hour}, c, &recEnv{clock: c}); !errors.Is(err, ErrBadTimers) {
		t.Errorf("New(max age 1h) error = %v, want %v", err, ErrBadTimers)
	}
	if _, err := New(Config{}, nil, nil); err == nil {
		t.Error("New(nil clock, nil env) succeeded")
	}
}

func TestManagementErrors(t *testing.T) {
	b, _ := lone(t, 2)
	if err := b.AddPort(PortConfig{Number: 1, Priority: 128}); !errors.Is(err, ErrPortExists) {
		t.Errorf("AddPort(1 again) = %v, want %v", err, ErrPortExists)
	}
	if err := b.AddPort(PortConfig{Number: 5000, Priority: 128}); err == nil {
		t.Error("AddPort(5000) succeeded")
	}
	if err := b.AddPort(PortConfig{Number: 3, Priority: 128, PathCost: 300_000_000}); !errors.Is(err, ErrBadPathCost) {
		t.Errorf("AddPort(cost 3e8) = %v, want %v", err, ErrBadPathCost)
	}
	for name, err := range map[string]error{
		"EnablePort":      b.EnablePort(9),
		"DisablePort":     b.DisablePort(9),
		"SetPortPriority": b.SetPortPriority(9, 16),
		"SetPortPathCost": b.SetPortPathCost(9, 4),
		"ReceiveBPDU":     b.ReceiveBPDU(9, superior(t, 0)),
		"RemovePort":      b.RemovePort(9),
	} {
		if !errors.Is(err, ErrNoPort) {
			t.Errorf("%s(port 9) = %v, want %v", name, err, ErrNoPort)
		}
	}
	if err := b.SetPortPathCost(1, 0); !errors.Is(err, ErrBadPathCost) {
		t.Errorf("SetPortPathCost(1, 0) = %v, want %v", err, ErrBadPathCost)
	}
	if err := b.SetPortPriority(1, 100); err == nil {
		t.Error("SetPortPriority(1, 100) succeeded, want error (not a multiple of 16)")
	}
	if err := b.SetTimers(time.Hour, time.Second, time.Second); !errors.Is(err, ErrBadTimers) {
		t.Errorf("SetTimers(bad) = %v, want %v", err, ErrBadTimers)
	}
	if err := b.SetAgeingTime(time.Second); err == nil {
		t.Error("SetAgeingTime(1s) succeeded")
	}
	if err := b.RemovePort(2); err != nil {
		t.Errorf("RemovePort(2) = %v", err)
	}
	if _, ok := b.Snapshot().Port(2); ok {
		t.Error("port 2 still in snapshot after RemovePort")
	}
}

func TestReceiveBadAndIgnoredInput(t *testing.T) {
	b, env := lone(t, 2)
	if err := b.Receive(1, []byte{1, 2, 3}); err == nil || !strings.Contains(err.Error(), "port 1") {
		t.Errorf("Receive(garbage) = %v, want an error naming the port", err)
	}
	own := &BPDU{Type: TypeConfig, RootID: b.Snapshot().ID, BridgeID: b.Snapshot().ID, PortID: 0x8001, MaxAge: 20 * 256}
	rst := *superior(t, 0)
	rst.Type, rst.Version = TypeRST, VersionRSTP
	stale := superior(t, 20*256)
	for _, m := range []*BPDU{own, &rst, stale} {
		if err := b.ReceiveBPDU(1, m); err != nil {
			t.Fatal(err)
		}
	}
	s := b.Snapshot()
	p, _ := s.Port(1)
	if p.BadIn != 1 || p.RSTIn != 1 || p.IgnoredIn != 2 || p.ConfigIn != 0 {
		t.Errorf("counters = %+v, want bad 1, rst 1, ignored 2 (own and stale), config 0", p.PortCounters)
	}
	if !s.IsRoot || s.Root != s.ID {
		t.Errorf("ignored BPDUs changed the root to %v", s.Root)
	}
	// A TCN on a port where we are not designated is not ours to handle.
	if err := b.ReceiveBPDU(1, superior(t, 0)); err != nil {
		t.Fatal(err)
	}
	n := len(env.sent)
	if err := b.ReceiveBPDU(1, &BPDU{Type: TypeTCN}); err != nil {
		t.Fatal(err)
	}
	if s := b.Snapshot(); s.TopologyChangeDetected || len(env.sent) != n {
		t.Errorf("TCN on the root port: detected %v, sent %d BPDUs, want no reaction", s.TopologyChangeDetected, len(env.sent)-n)
	}
	// Disabled ports hear nothing.
	if err := b.DisablePort(2); err != nil {
		t.Fatal(err)
	}
	if err := b.ReceiveBPDU(2, &BPDU{Type: TypeTCN}); err != nil {
		t.Fatal(err)
	}
	if p, _ := b.Snapshot().Port(2); p.TCNIn != 0 || p.IgnoredIn != 1 {
		t.Errorf("disabled port counters %+v, want the TCN ignored", p.PortCounters)
	}
}

func TestRelayAgesInformationAndHoldTimerPaces(t *testing.T) {
	b, env := lone(t, 2)
	c := env.clock
	const t0 = 2500 * time.Millisecond // hello went out at 2 s, hold runs to 3 s
	advance(b, c, t0)
	env.sent = nil
	// Superior information arrives on port 1, one second old.
	if err := b.ReceiveBPDU(1, superior(t, 256)); err != nil {
		t.Fatal(err)
	}
	s := b.Snapshot()
	if s.RootPort != 1 || s.RootPathCost != DefaultPathCost(0) {
		t.Fatalf("root port %d cost %d, want 1 and %d", s.RootPort, s.RootPathCost, DefaultPathCost(0))
	}
	// Port 2 sent a hello within the hold time, so the relay waits for it.
	if len(env.sent) != 0 {
		t.Fatalf("relayed %+v at once, want it held back by the hold timer", env.sent)
	}
	advance(b, c, HoldTime)
	if len(env.sent) != 1 || env.sent[0].port != 2 {
		t.Fatalf("after the hold time sent %+v, want one BPDU on port 2", env.sent)
	}
	got := env.sent[0]
	if got.b.RootID != superior(t, 0).RootID || got.b.RootPathCost != DefaultPathCost(0) || got.b.PortID != 0x8002 {
		t.Errorf("relayed %+v, want the new root at cost %d from port 128.2", got.b, DefaultPathCost(0))
	}
	// The information was 1 s old on arrival and has waited up to the
	// hold time; it leaves older, never younger.
	wantMin := Time(256) + Time((got.at-t0)/timeUnit)
	if got.b.MessageAge <= wantMin-1 || got.b.MessageAge > wantMin+2 {
		t.Errorf("relayed message age %d/256 s, want about %d/256 s", got.b.MessageAge, wantMin)
	}
	// Without fresh information the root port ages out at max age.
	advance(b, c, 20*time.Second-time.Second-HoldTime-time.Millisecond) // since t0: age 1 s, HoldTime advanced
	if b.Snapshot().RootPort != 1 {
		t.Fatal("root port information aged out before max age")
	}
	advance(b, c, 2*time.Millisecond)
	if s := b.Snapshot(); s.RootPort != 0 || !s.IsRoot {
		t.Errorf("after max age: root port %d, is root %v; want the bridge root again", s.RootPort, s.IsRoot)
	}
}

func TestEnvFailuresAreCounted(t *testing.T) {
	b, env := lone(t, 1)
	env.fail = true
	advance(b, env.clock, 5*time.Second)
	if err := b.DisablePort(1); err != nil {
		t.Fatal(err)
	}
	p, _ := b.Snapshot().Port(1)
	if p.TxErrors == 0 || p.StateErrors == 0 || p.ConfigOut != 0 {
		t.Errorf("counters %+v, want tx and state errors counted, nothing counted as sent", p.PortCounters)
	}
	env.fail = false
	b.Resync()
	if env.states[1] != Disabled {
		t.Errorf("after Resync env has port 1 %v, want disabled", env.states[1])
	}
}

func TestSnapshotJSON(t *testing.T) {
	b, _ := lone(t, 1)
	raw, err := json.Marshal(b.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"bridge_id":"8000.02000000000a"`, `"role":"designated"`, `"state":"listening"`, `"id":"128.1"`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("Snapshot JSON %s lacks %s", raw, want)
		}
	}
}

// lockedClock is a clock safe for concurrent use.
type lockedClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *lockedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *lockedClock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type nullEnv struct{}

func (nullEnv) SendBPDU(uint16, *BPDU) error         { return nil }
func (nullEnv) SetPortState(uint16, PortState) error { return nil }
func (nullEnv) FlushFDB(uint16) error                { return nil }
func (nullEnv) SetAgeingTime(time.Duration) error    { return nil }

// TestConcurrentUse drives one bridge from receive, timer and console
// goroutines at once, as the shell will; run with -race.
func TestConcurrentUse(t *testing.T) {
	c := &lockedClock{now: time.Unix(0, 0)}
	b, err := New(Config{ID: mustBridgeID(t, 0x8000, macA)}, c, nullEnv{})
	if err != nil {
		t.Fatal(err)
	}
	for i := uint16(1); i <= 2; i++ {
		if err := b.AddPort(PortConfig{Number: i, Priority: DefaultPortPriority}); err != nil {
			t.Fatal(err)
		}
		if err := b.EnablePort(i); err != nil {
			t.Fatal(err)
		}
	}
	frame, err := MarshalFrame(macB, superior(t, 0))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		for range 500 {
			if err := b.Receive(1, frame); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for range 500 {
			c.add(100 * time.Millisecond)
			b.Tick()
		}
	}()
	go func() {
		defer wg.Done()
		for range 500 {
			_ = b.Snapshot()
			_ = b.Export()
		}
	}()
	wg.Wait()
	if err := b.Receive(1, frame); err != nil {
		t.Fatal(err)
	}
	if s := b.Snapshot(); s.RootPort != 1 || s.Ports[0].ConfigIn != 501 {
		t.Errorf("root port %d after %d config BPDUs, want 1 after 501", s.RootPort, s.Ports[0].ConfigIn)
	}
}

// FuzzBridgeReceive feeds a bridge arbitrary frames at arbitrary times and
// checks it neither panics nor breaks its own invariants.
func FuzzBridgeReceive(f *testing.F) {
	cfg, _ := MarshalFrame(macB, superior(f, 256))
	tcn, _ := MarshalFrame(macB, &BPDU{Type: TypeTCN})
	own := superior(f, 0)
	own.BridgeID = mustBridgeID(f, 0x8000, macA)
	ownFr, _ := MarshalFrame(macA, own)
	f.Add(append(append([]byte{1, 10, byte(len(cfg))}, cfg...), append([]byte{2, 200, byte(len(tcn))}, tcn...)...))
	f.Add(append([]byte{2, 0, byte(len(ownFr))}, ownFr...))
	f.Add([]byte{1, 255, 5, 1, 2, 3, 4, 5})
	f.Fuzz(func(t *testing.T, in []byte) {
		c := &simClock{now: time.Unix(0, 0)}
		b, err := New(Config{ID: mustBridgeID(t, 0x8000, macA)}, c, nullEnv{})
		if err != nil {
			t.Fatal(err)
		}
		for i := uint16(1); i <= 3; i++ {
			if err := b.AddPort(PortConfig{Number: i, Priority: DefaultPortPriority, PathCost: uint32(i) * 1000}); err != nil {
				t.Fatal(err)
			}
			if err := b.EnablePort(i); err != nil {
				t.Fatal(err)
			}
		}
		// Records: port (mod 4; 0 toggles port 3), delay in 1/8 s, length, frame.
		for len(in) >= 3 {
			port, delay, l := uint16(in[0]%4), time.Duration(in[1])*time.Second/8, int(in[2])
			in = in[3:]
			if l > len(in) {
				l = len(in)
			}
			frame := in[:l]
			in = in[l:]
			advance(b, c, delay)
			if port == 0 {
				if p, _ := b.Snapshot().Port(3); p.Enabled {
					_ = b.DisablePort(3)
				} else {
					_ = b.EnablePort(3)
				}
				continue
			}
			_ = b.Receive(port, frame) // errors are fine; panics and broken invariants are not
			checkInvariants(t, b.Snapshot())
		}
	})
}

func checkInvariants(t *testing.T, s Snapshot) {
	t.Helper()
	if s.IsRoot != (s.RootPort == 0) || s.IsRoot != (s.Root == s.ID) {
		t.Fatalf("root %v port %d is-root %v for bridge %v", s.Root, s.RootPort, s.IsRoot, s.ID)
	}
	if !s.IsRoot && s.Root > s.ID {
		t.Fatalf("bridge %v follows a worse root %v", s.ID, s.Root)
	}
	roots := 0
	for _, p := range s.Ports {
		if p.State < Disabled || p.State > Forwarding {
			t.Fatalf("port %d state %v", p.Number, p.State)
		}
		if p.Role == RoleRoot {
			roots++
			if p.Number != s.RootPort || p.DesignatedRoot != s.Root ||
				uint64(s.RootPathCost) != min(uint64(p.DesignatedCost)+uint64(p.PathCost), 0xffffffff) {
				t.Fatalf("root port %+v inconsistent with bridge root %v cost %d", p, s.Root, s.RootPathCost)
			}
		}
		if (p.Role == RoleAlternate || p.Role == RoleBackup) && p.State != Blocking {
			t.Fatalf("blocked-role port %d in state %v", p.Number, p.State)
		}
		if p.Role == RoleDesignated && (p.DesignatedBridge != s.ID || p.DesignatedRoot != s.Root) {
			t.Fatalf("designated port %+v does not carry the bridge's information", p)
		}
	}
	if roots != map[bool]int{true: 0, false: 1}[s.IsRoot] {
		t.Fatalf("%d root ports, is-root %v", roots, s.IsRoot)
	}
}
