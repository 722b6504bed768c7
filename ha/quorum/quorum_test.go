package quorum

import (
	"testing"
	"time"
)

func set(slots ...uint8) func(uint8) bool {
	m := map[uint8]bool{}
	for _, s := range slots {
		m[s] = true
	}
	return func(s uint8) bool { return m[s] }
}

func TestIsQuorum(t *testing.T) {
	tests := []struct {
		voters []uint8
		in     []uint8
		want   bool
	}{
		{[]uint8{1}, []uint8{1}, true},
		{[]uint8{1}, nil, false},
		{[]uint8{1, 2}, []uint8{1}, true}, // tie-breaker half
		{[]uint8{1, 2}, []uint8{2}, false},
		{[]uint8{1, 2, 3}, []uint8{2, 3}, true},
		{[]uint8{1, 2, 3}, []uint8{1}, false},
		{[]uint8{1, 2, 3, 4}, []uint8{1, 4}, true},
		{[]uint8{1, 2, 3, 4}, []uint8{2, 3}, false},
		{[]uint8{1, 2, 3, 4}, []uint8{2, 3, 4}, true},
		{[]uint8{3, 5, 7, 9}, []uint8{3, 9, 42}, true}, // 42 is no voter
		{[]uint8{3, 5, 7, 9}, []uint8{5, 9, 42}, false},
	}
	for _, tc := range tests {
		v, err := NewVoters(tc.voters)
		if err != nil {
			t.Fatalf("NewVoters(%v) error %v", tc.voters, err)
		}
		if got := v.IsQuorum(set(tc.in...)); got != tc.want {
			t.Errorf("NewVoters(%v).IsQuorum(%v) = %v, want %v", tc.voters, tc.in, got, tc.want)
		}
	}
	for _, bad := range [][]uint8{nil, {0}, {1, 1}, {255}} {
		if _, err := NewVoters(bad); err == nil {
			t.Errorf("NewVoters(%v) succeeded, want error", bad)
		}
	}
}

// TestQuorumsIntersect checks exhaustively, for up to 7 voters, that any
// two quorums share a voter: the property the lease safety rests on.
func TestQuorumsIntersect(t *testing.T) {
	for n := 1; n <= 7; n++ {
		var slots []uint8
		for i := 1; i <= n; i++ {
			slots = append(slots, uint8(i))
		}
		v, _ := NewVoters(slots)
		in := func(mask int) func(uint8) bool { return func(s uint8) bool { return mask&(1<<(s-1)) != 0 } }
		for a := 0; a < 1<<n; a++ {
			if !v.IsQuorum(in(a)) {
				continue
			}
			for b := 0; b < 1<<n; b++ {
				if v.IsQuorum(in(b)) && a&b == 0 {
					t.Fatalf("n=%d: quorums %b and %b are disjoint", n, a, b)
				}
			}
		}
	}
}

var timing = Timing{Lease: 30 * time.Millisecond, Drift: 0.01}

// shelf is three voters 1, 2, 3 with lessors started at 0.
type shelf struct {
	v       Voters
	lessors map[uint8]*Lessor
}

func newShelf(t *testing.T) *shelf {
	v, _ := NewVoters([]uint8{1, 2, 3})
	s := &shelf{v: v, lessors: map[uint8]*Lessor{}}
	for _, slot := range v.Slots() {
		s.lessors[slot] = NewLessor(slot, timing, 0)
	}
	return s
}

// ask sends one request of l for key to the given voters and feeds back
// the replies; it returns whether l holds the lease afterwards.
func (s *shelf) ask(now time.Duration, l *Lessee, key string, preferred bool, voters ...uint8) bool {
	r := l.Request(now, key)
	held := false
	for _, v := range voters {
		held = l.Reply(now, s.lessors[v].Request(now, r, preferred))
	}
	return held
}

func TestLeaseHandover(t *testing.T) {
	s := newShelf(t)
	a := NewLessee(s.v, timing, 1, 1)
	b := NewLessee(s.v, timing, 2, 1)
	if s.ask(10*time.Millisecond, a, "mgmt", true, 1, 2, 3) {
		t.Fatal("lease granted during the voters' start-up quarantine")
	}
	now := timing.Lease
	if !s.ask(now, a, "mgmt", true, 1, 2, 3) {
		t.Fatal("a: lease not held after grants from all voters")
	}
	if s.ask(now+time.Millisecond, b, "mgmt", true, 1, 2, 3) {
		t.Fatal("b: lease granted while a holds it")
	}
	if got, want := a.Expiry("mgmt"), now+timing.HolderLease(); got != want {
		t.Errorf("a.Expiry() = %v, want %v", got, want)
	}
	// a dies. b keeps asking; it gets the lease only once the voters'
	// grants to a have expired, which is after a's own lease ended.
	var tookOver time.Duration
	for t0 := now + 2*time.Millisecond; t0 < now+3*timing.Lease; t0 += time.Millisecond {
		if s.ask(t0, b, "mgmt", true, 1, 2, 3) {
			tookOver = t0
			break
		}
	}
	if tookOver == 0 {
		t.Fatal("b never took over")
	}
	if a.Holds("mgmt", tookOver) {
		t.Fatalf("a still holds at %v when b took over", tookOver)
	}
	if tookOver < now+timing.Lease {
		t.Errorf("b took over at %v, before the voters' grants to a ended at %v", tookOver, now+timing.Lease)
	}
}

func TestLeaseRenewalNotPreempted(t *testing.T) {
	s := newShelf(t)
	a := NewLessee(s.v, timing, 2, 1)
	now := timing.Lease
	if !s.ask(now, a, "k", true, 1, 2, 3) {
		t.Fatal("a: lease not acquired")
	}
	// a is no longer preferred (a higher-ranked unit came back) but holds:
	// its renewals go on.
	for i := 1; i <= 5; i++ {
		if !s.ask(now+time.Duration(i)*10*time.Millisecond, a, "k", false, 1, 2, 3) {
			t.Fatalf("renewal %d refused for a non-preferred holder", i)
		}
	}
}

func TestLeaseMinorityLoses(t *testing.T) {
	s := newShelf(t)
	a := NewLessee(s.v, timing, 1, 1)
	now := timing.Lease
	s.ask(now, a, "k", true, 1, 2, 3)
	// Partition: a reaches only itself. Its lease ends HolderLease after its
	// last successful request, however often it asks.
	for t0 := now + 10*time.Millisecond; t0 < now+100*time.Millisecond; t0 += 10 * time.Millisecond {
		held := s.ask(t0, a, "k", true, 1)
		if want := t0 < now+timing.HolderLease(); held != want {
			t.Fatalf("minority holder at %v: held = %v, want %v", t0, held, want)
		}
	}
}

func TestLeaseRelease(t *testing.T) {
	s := newShelf(t)
	a := NewLessee(s.v, timing, 1, 1)
	b := NewLessee(s.v, timing, 2, 1)
	now := timing.Lease
	s.ask(now, a, "k", true, 1, 2, 3)
	rel := a.Release("k")
	if a.Holds("k", now) {
		t.Fatal("a holds after Release")
	}
	// a asks again before its release reached anyone; the late release
	// must not cancel that newer grant.
	s.ask(now+time.Millisecond, a, "k", true, 1, 2, 3)
	for _, l := range s.lessors {
		l.Release(rel)
	}
	if s.ask(now+2*time.Millisecond, b, "k", true, 1, 2, 3) {
		t.Fatal("late release cancelled a's newer grant")
	}
	rel = a.Release("k")
	for _, l := range s.lessors {
		l.Release(rel)
	}
	if !s.ask(now+3*time.Millisecond, b, "k", true, 1, 2, 3) {
		t.Fatal("b not granted after a's release")
	}
}

func TestLessorQuarantineAfterRestart(t *testing.T) {
	s := newShelf(t)
	a := NewLessee(s.v, timing, 1, 1)
	b := NewLessee(s.v, timing, 2, 1)
	now := timing.Lease
	s.ask(now, a, "k", true, 1, 2, 3)
	// Voters 2 and 3 restart and forget; they must not grant to b while
	// a may still count on their earlier promise.
	s.lessors[2] = NewLessor(2, timing, now+time.Millisecond)
	s.lessors[3] = NewLessor(3, timing, now+time.Millisecond)
	for t0 := now + time.Millisecond; t0 < now+timing.Lease; t0 += time.Millisecond {
		if s.ask(t0, b, "k", true, 2, 3) && a.Holds("k", t0) {
			t.Fatalf("two holders at %v after voter restarts", t0)
		}
	}
}

func TestLessorPendingDue(t *testing.T) {
	s := newShelf(t)
	a := NewLessee(s.v, timing, 1, 1)
	b := NewLessee(s.v, timing, 2, 1)
	now := timing.Lease
	s.ask(now, a, "k", true, 1, 2, 3)
	v := s.lessors[3]
	// b is refused while a's promise runs, but remembered.
	rb := b.Request(now+5*time.Millisecond, "k")
	if v.Request(now+5*time.Millisecond, rb, true).Granted {
		t.Fatal("granted over a running promise")
	}
	rn := b.Request(now+6*time.Millisecond, "other")
	v.Request(now+6*time.Millisecond, rn, false) // free key, not preferred: not pending
	if due, ok := v.NextDue(); !ok || due != now+timing.Lease {
		t.Fatalf("NextDue() = %v, %v, want %v, true", due, ok, now+timing.Lease)
	}
	if d := v.Due(now+timing.Lease-1, time.Second); len(d) != 0 {
		t.Fatalf("Due before the promise ended = %v, want none", d)
	}
	d := v.Due(now+timing.Lease, time.Second)
	if len(d) != 1 || d[0].Seq != rb.Seq {
		t.Fatalf("Due at the end of the promise = %v, want b's request", d)
	}
	rep := v.Request(now+timing.Lease, d[0], true)
	if !rep.Granted {
		t.Fatal("due request not granted")
	}
	b.Reply(now+timing.Lease, rep)
	// The vote counts from when b sent the request: safe, if shorter.
	if got := b.keys["k"].votes[3]; got != now+5*time.Millisecond {
		t.Errorf("vote from 3 counted from %v, want the send time %v", got, now+5*time.Millisecond)
	}
	if d := v.Due(now+2*timing.Lease, time.Second); len(d) != 0 {
		t.Errorf("Due again = %v, want none (forgotten)", d)
	}
	// Stale pending requests are dropped: voter 2 refuses b while a's
	// promise runs, and is asked for due requests long after.
	rb2 := b.Request(now+5*time.Millisecond, "k")
	if s.lessors[2].Request(now+5*time.Millisecond, rb2, true).Granted {
		t.Fatal("voter 2 granted over a running promise")
	}
	if _, ok := s.lessors[2].NextDue(); !ok {
		t.Fatal("voter 2 has no pending request")
	}
	if d := s.lessors[2].Due(now+10*timing.Lease, timing.Lease); len(d) != 0 {
		t.Errorf("Due(maxAge) returned a stale request %v", d)
	}
	if _, ok := s.lessors[2].NextDue(); ok {
		t.Error("stale request still pending after Due")
	}
}

// TestLessorRevoke: revoking a fenced holder ends its promises at once
// (another requester is granted), drops its pending requests, and leaves
// other holders' promises alone.
func TestLessorRevoke(t *testing.T) {
	l := NewLessor(9, timing, -timing.Lease) // out of its start quarantine at 0
	if !l.Request(0, Request{Key: "a", From: 1, Inc: 1, Seq: 1}, true).Granted {
		t.Fatal("first request for a refused")
	}
	if !l.Request(0, Request{Key: "b", From: 2, Inc: 1, Seq: 1}, true).Granted {
		t.Fatal("first request for b refused")
	}
	l.Request(time.Millisecond, Request{Key: "b", From: 1, Inc: 1, Seq: 2}, true) // pending behind slot 2
	if got := l.Revoke(1); len(got) != 1 || got[0] != "a" {
		t.Fatalf("Revoke(1) = %v, want [a]", got)
	}
	if h := l.Holder("a", 2*time.Millisecond); h != 0 {
		t.Errorf("Holder(a) after Revoke(1) = %d, want 0", h)
	}
	if !l.Request(2*time.Millisecond, Request{Key: "a", From: 3, Inc: 1, Seq: 1}, true).Granted {
		t.Error("request of slot 3 for a refused after slot 1 was revoked")
	}
	if h := l.Holder("b", 2*time.Millisecond); h != 2 {
		t.Errorf("Holder(b) = %d, want 2 (not revoked)", h)
	}
	if due := l.Due(time.Second, time.Hour); len(due) != 0 {
		t.Errorf("Due after Revoke(1) = %v, want slot 1's pending request dropped", due)
	}
}
