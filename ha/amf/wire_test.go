package amf

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/cgoa/cgoa/ha/clm"
	"github.com/cgoa/cgoa/ha/quorum"
)

func TestWireRoundTrip(t *testing.T) {
	hb := Heartbeat{
		Hear:  []clm.Peer{{Slot: 2, Inc: 7}, {Slot: 9, Inc: 1 << 60}},
		Held:  []string{"sg/mgmt", "node/3"},
		Units: []UnitReport{{Name: "mgmt-3", Ready: true, State: Active, Instances: []string{"mgmt"}}, {Name: "olt-5", State: Standby}},
	}
	got, err := UnmarshalHeartbeat(MarshalHeartbeat(hb))
	if err != nil || !reflect.DeepEqual(got, hb) {
		t.Fatalf("UnmarshalHeartbeat(MarshalHeartbeat(hb)) = %+v, %v, want %+v", got, err, hb)
	}
	lm := LeaseMsg{
		Requests: []quorum.Request{{Key: "sg/mgmt", From: 3, Inc: 9, Seq: 4, Holding: true, InQuorum: true}},
		Replies:  []quorum.Reply{{Key: "si/olt/pon-a", From: 3, To: 5, Inc: 2, Seq: 77, Granted: true}},
		Releases: []quorum.Release{{Key: "sg/switch", From: 3, Inc: 9, UpTo: 12}},
	}
	gl, err := UnmarshalLease(MarshalLease(lm), 3, 9)
	if err != nil || !reflect.DeepEqual(gl, lm) {
		t.Fatalf("UnmarshalLease(MarshalLease(m)) = %+v, %v, want %+v", gl, err, lm)
	}
	for _, a := range []Admin{{Op: OpLock, Target: "mgmt-3"}, {Op: OpSwitchover, Target: "olt", Units: []string{"olt-5", "olt-6"}}} {
		got, err := UnmarshalAdmin(MarshalAdmin(a))
		if err != nil || !reflect.DeepEqual(got, a) {
			t.Fatalf("UnmarshalAdmin(MarshalAdmin(%+v)) = %+v, %v", a, got, err)
		}
	}
	// The older form (op and target only) is what a lock still is on the wire.
	if got := MarshalAdmin(Admin{Op: OpLock, Target: "mgmt-3"}); !bytes.Equal(got, []byte{byte(OpLock), 6, 'm', 'g', 'm', 't', '-', '3'}) {
		t.Fatalf("MarshalAdmin(lock mgmt-3) = %x, want the older form", got)
	}
}

func TestWireRejects(t *testing.T) {
	hb := MarshalHeartbeat(Heartbeat{Held: []string{"sg/x"}, Units: []UnitReport{{Name: "u", State: Active}}})
	for i := 0; i < len(hb); i++ {
		if _, err := UnmarshalHeartbeat(hb[:i]); !errors.Is(err, errWire) {
			t.Errorf("UnmarshalHeartbeat(first %d of %d bytes) = %v, want %v", i, len(hb), err, errWire)
		}
	}
	if _, err := UnmarshalHeartbeat(append(bytes.Clone(hb), 0)); err == nil {
		t.Error("UnmarshalHeartbeat(trailing byte) accepted")
	}
	bad := bytes.Clone(hb)
	bad[len(bad)-2] = 9 // state byte out of range
	if _, err := UnmarshalHeartbeat(bad); err == nil {
		t.Error("UnmarshalHeartbeat(state 9) accepted")
	}
	if _, err := UnmarshalAdmin([]byte{0, 0}); err == nil {
		t.Error("UnmarshalAdmin(op 0) accepted")
	}
	if _, err := UnmarshalAdmin([]byte{byte(OpSwitchover), 1, 'x', 0}); err == nil {
		t.Error("UnmarshalAdmin(a count of no units) accepted")
	}
	if _, err := UnmarshalAdmin([]byte{byte(OpSwitchover), 1, 'x', 2, 1, 'a'}); err == nil {
		t.Error("UnmarshalAdmin(2 units, 1 sent) accepted")
	}
	if _, err := UnmarshalLease([]byte{1, 3, 'a'}, 1, 1); err == nil {
		t.Error("UnmarshalLease(truncated) accepted")
	}
}

// FuzzHeartbeat, FuzzLease and FuzzAdmin check that the payload decoders
// never panic and that what they accept re-encodes to the same bytes.
func FuzzHeartbeat(f *testing.F) {
	f.Add(MarshalHeartbeat(Heartbeat{}))
	f.Add(MarshalHeartbeat(Heartbeat{Hear: []clm.Peer{{Slot: 1, Inc: 2}}, Held: []string{"sg/a"}, Units: []UnitReport{{Name: "u", Ready: true, State: Quiesced, Instances: []string{"x", "y"}}}}))
	f.Add([]byte{255, 255, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		hb, err := UnmarshalHeartbeat(b)
		if err != nil {
			return
		}
		if again := MarshalHeartbeat(hb); !bytes.Equal(again, b) {
			t.Fatalf("MarshalHeartbeat(UnmarshalHeartbeat(%x)) = %x", b, again)
		}
	})
}

func FuzzLease(f *testing.F) {
	f.Add(MarshalLease(LeaseMsg{}))
	f.Add(MarshalLease(LeaseMsg{
		Requests: []quorum.Request{{Key: "k", Seq: 1, Holding: true}},
		Replies:  []quorum.Reply{{Key: "k", To: 2, Inc: 3, Seq: 4, Granted: true}},
		Releases: []quorum.Release{{Key: "k", UpTo: 9}},
	}))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := UnmarshalLease(b, 4, 5)
		if err != nil {
			return
		}
		for _, q := range m.Requests {
			if q.From != 4 || q.Inc != 5 {
				t.Fatalf("request identity %d/%d, want the frame's 4/5", q.From, q.Inc)
			}
		}
		if again := MarshalLease(m); !bytes.Equal(again, b) {
			t.Fatalf("MarshalLease(UnmarshalLease(%x)) = %x", b, again)
		}
	})
}

func FuzzBeat(f *testing.F) {
	f.Add(MarshalBeat(Heartbeat{}, LeaseMsg{}))
	f.Add(MarshalBeat(Heartbeat{Hear: []clm.Peer{{Slot: 1, Inc: 2}}, Held: []string{"sg/a"}, Units: []UnitReport{{Name: "u", Ready: true, State: Active, Instances: []string{"x"}}}},
		LeaseMsg{Requests: []quorum.Request{{Key: "k", Seq: 1, Holding: true, InQuorum: true}}, Replies: []quorum.Reply{{Key: "k", To: 2, Inc: 3, Seq: 4, Granted: true}}, Releases: []quorum.Release{{Key: "j", UpTo: 9}}}))
	f.Add([]byte{0, 200, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		hb, m, err := UnmarshalBeat(b, 4, 5)
		if err != nil {
			return
		}
		for _, q := range m.Requests {
			if q.From != 4 || q.Inc != 5 {
				t.Fatalf("request identity %d/%d, want the frame's 4/5", q.From, q.Inc)
			}
		}
		if again := MarshalBeat(hb, m); !bytes.Equal(again, b) {
			t.Fatalf("MarshalBeat(UnmarshalBeat(%x)) = %x", b, again)
		}
	})
}

func FuzzAdmin(f *testing.F) {
	f.Add(MarshalAdmin(Admin{Op: OpSwitchover, Target: "mgmt"}))
	f.Add(MarshalAdmin(Admin{Op: OpSwitchover, Target: "mgmt", Units: []string{"mgmt-3"}}))
	f.Add([]byte{9})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := UnmarshalAdmin(b)
		if err != nil {
			return
		}
		if !bytes.Equal(MarshalAdmin(a), b) {
			t.Fatalf("MarshalAdmin(UnmarshalAdmin(%x)) differs", b)
		}
	})
}

func TestLinksWire(t *testing.T) {
	for _, down := range [][]uint8{nil, {3}, {1, 2, 16}} {
		got, err := UnmarshalLinks(MarshalLinks(down))
		if err != nil || !slices.Equal(got, down) {
			t.Errorf("UnmarshalLinks(MarshalLinks(%v)) = %v, %v", down, got, err)
		}
	}
	for _, bad := range [][]byte{{}, {1}, {2, 3, 3}, {2, 4, 3}, {1, 0}, {1, 255}, {1, 3, 9}} {
		if _, err := UnmarshalLinks(bad); err == nil {
			t.Errorf("UnmarshalLinks(%x) = nil error, want refused", bad)
		}
	}
}

func FuzzLinks(f *testing.F) {
	f.Add(MarshalLinks(nil))
	f.Add(MarshalLinks([]uint8{1, 5, 9}))
	f.Add([]byte{3, 1, 1, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		down, err := UnmarshalLinks(b)
		if err != nil {
			return
		}
		if !slices.IsSorted(down) || slices.Contains(down, 0) {
			t.Fatalf("UnmarshalLinks(%x) = %v: not ascending or slot 0", b, down)
		}
		if again := MarshalLinks(down); !bytes.Equal(again, b) {
			t.Fatalf("MarshalLinks(UnmarshalLinks(%x)) = %x", b, again)
		}
	})
}
