package ckpt

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"
)

// runPair is a writer sending in runs (Options.Runs) and a replica,
// joined by message queues the test delivers.
type runPair struct {
	w, r     *Service
	toR, toW [][]byte
}

func newRunPair(t testing.TB, opt Options) *runPair {
	t.Helper()
	p := &runPair{}
	opt.Self, opt.Runs = 1, true
	opt.Send = func(_ uint8, b []byte) { p.toR = append(p.toR, append([]byte(nil), b...)) }
	p.w = New(opt)
	p.r = New(Options{Self: 2, Send: func(_ uint8, b []byte) { p.toW = append(p.toW, append([]byte(nil), b...)) }})
	p.w.Promote(0)
	if err := p.w.Open(0, "c", time.Hour); err != nil {
		t.Fatal(err)
	}
	p.w.SetReplicas(0, []uint8{2})
	p.r.Follow(1)
	p.deliver(0, nil)
	return p
}

// deliver passes messages both ways until none is left; each message to
// the replica goes through f first (nil: as it is; f returns nil to drop).
func (p *runPair) deliver(now time.Duration, f func([]byte) []byte) {
	for len(p.toR) > 0 || len(p.toW) > 0 {
		a, b := p.toR, p.toW
		p.toR, p.toW = nil, nil
		for _, m := range a {
			if f != nil {
				m = f(m)
			}
			if m != nil {
				p.r.Receive(now, 1, m)
			}
		}
		for _, m := range b {
			p.w.Receive(now, 2, m)
		}
	}
}

func (p *runPair) same(t testing.TB) {
	t.Helper()
	if p.r.Seq() != p.w.Seq() || p.w.Durable() != p.w.Seq() {
		t.Fatalf("replica seq %d, writer seq %d durable %d", p.r.Seq(), p.w.Seq(), p.w.Durable())
	}
	p.w.Sections("c", func(name string, data []byte) bool {
		if got, err := p.r.Read("c", name); err != nil || !bytes.Equal(got, data) {
			t.Errorf("replica section %s = %q (%v), want %q", name, got, err, data)
		}
		return true
	})
}

// TestRunsCarryRecords: queued records leave as runs (several records in
// one message, as many as the frame holds), a record larger than a frame
// in fragments, and the replica ends with exactly the writer's sections.
func TestRunsCarryRecords(t *testing.T) {
	p := newRunPair(t, Options{MaxFrame: 4096})
	// Writes while the path is "full": the records queue in the ring.
	p.w.peers[2].full = true
	for i := range 40 {
		p.w.Write(0, "c", fmt.Sprint("s", i%7), bytes.Repeat([]byte{byte(i)}, 100+i), false)
	}
	p.w.Write(0, "c", "big", bytes.Repeat([]byte{'b'}, 10000), false) // three fragments
	p.w.Write(0, "c", "s1", []byte("last"), true)
	if _, err := p.w.Delete(0, "c", "s2", false); err != nil {
		t.Fatal(err)
	}
	p.toR = nil
	p.w.Pump(0)
	kinds := map[Kind]int{}
	records := 0
	for _, b := range p.toR {
		m, err := Unmarshal(b)
		if err != nil {
			t.Fatalf("Unmarshal(sent) = %v", err)
		}
		kinds[m.Kind]++
		if m.Kind == KindRun {
			records += int(m.Frag)
			if len(b) > 4096 {
				t.Errorf("run of %d bytes, frames are 4096", len(b))
			}
		}
	}
	if kinds[KindData] != 3 || records != 42 || kinds[KindRun] >= records/2 {
		t.Errorf("sent %v with %d records in runs, want 3 data frames (the big record) and 42 records in a few runs", kinds, records)
	}
	p.deliver(0, nil)
	p.w.Tick(time.Second) // the last record is asynchronous: a poll has it acked
	p.deliver(time.Second, nil)
	p.same(t)
}

// TestRunLossAndGap: a run lost on the way is sent again after the
// replica nacks the gap (it takes nothing past it), and runs the replica
// already holds change nothing.
func TestRunLossAndGap(t *testing.T) {
	p := newRunPair(t, Options{MaxFrame: 1024, RTO: time.Millisecond})
	runs := 0
	var kept [][]byte
	p.w.peers[2].full = true
	for i := range 30 {
		p.w.Write(0, "c", fmt.Sprint("s", i%5), bytes.Repeat([]byte{byte(i)}, 200), false)
	}
	p.toR = nil
	p.w.Pump(0)
	// Only the first three runs: a gap after the first.
	now := time.Duration(0)
	p.toR = p.toR[:3]
	p.deliver(now, func(b []byte) []byte {
		if Kind(b[0]) != KindRun {
			return b
		}
		runs++
		kept = append(kept, b)
		if runs == 2 {
			return nil // lost: the replica sees a gap at the third
		}
		return b
	})
	if p.r.c.OutOfOrder == 0 || len(kept) <= 3 {
		t.Fatalf("%d out of order, %d runs delivered: want the gap seen and runs sent again", p.r.c.OutOfOrder, len(kept))
	}
	for range 5 {
		now += 2 * time.Millisecond
		p.w.Tick(now)
		p.deliver(now, nil)
	}
	p.same(t)
	// Old runs again (duplicates): nothing changes, nothing is bad.
	seq, bad := p.r.Seq(), p.r.c.Bad
	for _, b := range kept {
		p.r.Receive(now, 1, b)
	}
	if p.r.Seq() != seq || p.r.c.Bad != bad {
		t.Errorf("after duplicate runs: seq %d bad %d, want %d and %d", p.r.Seq(), p.r.c.Bad, seq, bad)
	}
}

// TestRunMalformed: a run whose records do not parse is refused with
// ErrBadRun and counted; the replica keeps what it had.
func TestRunMalformed(t *testing.T) {
	p := newRunPair(t, Options{})
	p.w.Write(0, "c", "s", []byte("abc"), false)
	p.deliver(0, nil)
	seq := p.r.Seq()
	rec := newRing(4096)
	rec.append(OpWrite, 0, seq+1, "c", "s", []byte("xyz"), func(*record) {})
	good := append([]byte(nil), rec.buf[:rec.head]...)
	cut := func(b []byte, f func([]byte)) []byte {
		b = append([]byte(nil), b...)
		f(b)
		return b
	}
	for _, tc := range []struct {
		name  string
		data  []byte
		count uint32
	}{
		{"record longer than the run", cut(good, func(b []byte) { be.PutUint32(b, uint32(len(good)+1)) }), 1},
		{"record shorter than its names", cut(good, func(b []byte) { be.PutUint32(b, recHeader) }), 1},
		{"bad op", cut(good, func(b []byte) { b[4] = 9 }), 1},
		{"no checkpoint name", cut(good, func(b []byte) { b[6] = 0 }), 1},
		{"truncated", good[:recHeader-1], 1},
		{"count wrong", good, 2}, // last: its one record is whole and taken
	} {
		n := p.r.rxN + 1
		m := Msg{Kind: KindRun, Gen: p.w.Gen(), N: n, Frag: tc.count, Total: uint32(len(tc.data)), Data: tc.data}
		b, _ := AppendMsg(nil, &m)
		bad := p.r.c.Bad
		if err := p.r.Receive(0, 1, b); !errors.Is(err, ErrBadRun) || p.r.c.Bad != bad+1 {
			t.Errorf("Receive(run: %s) = %v, bad +%d, want %v, +1", tc.name, err, p.r.c.Bad-bad, ErrBadRun)
		}
		want := "abc"
		if tc.name == "count wrong" {
			want = "xyz"
		}
		if got, _ := p.r.Read("c", "s"); string(got) != want {
			t.Errorf("after run %s: section %q, want %q", tc.name, got, want)
		}
	}
}

// TestLinkAcks: a replica over a Link acks at the end of a batch that no
// other follows at once, and every linkAckBytes while batches stream.
func TestLinkAcks(t *testing.T) {
	var a linkAcks
	batch := linkAckBytes / 4
	for i := 1; i <= 12; i++ {
		want := i%4 == 0
		if got := a.took(batch, true); got != want {
			t.Errorf("took(batch %d of %d bytes, more) = %v, want %v", i, batch, got, want)
		}
	}
	a.took(batch, true)
	if !a.took(10, false) {
		t.Errorf("took(last batch, no more) = false, want true")
	}
	if a.took(batch, true) {
		t.Errorf("took(first batch after an ack, more) = true, want false")
	}
}

// FuzzRun feeds arbitrary messages to a replica that follows a writer
// sending in runs, so that a run at the next frame index reaches the
// record parser and apply: errors are fine, panics are not, and the
// replica's sections read back afterwards.
func FuzzRun(f *testing.F) {
	pair := func(t testing.TB) *runPair {
		p := newRunPair(t, Options{})
		p.w.Write(0, "c", "a", []byte("first"), false)
		p.deliver(0, nil)
		return p
	}
	// Seeds: the runs such a writer sends next.
	p := pair(f)
	p.w.peers[2].full = true
	p.w.Write(0, "c", "a", []byte("second"), false)
	p.w.Write(0, "c", "b", nil, true)
	p.w.Delete(0, "c", "a", false)
	p.toR = nil
	p.w.Pump(0)
	for _, b := range p.toR {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p := pair(t)
		p.r.Receive(0, 1, b)
		p.r.Sections("c", func(name string, data []byte) bool {
			if got, err := p.r.Read("c", name); err != nil || !bytes.Equal(got, data) {
				t.Errorf("Read(c, %q) = %q, %v; Sections gave %q", name, got, err, data)
			}
			return true
		})
	})
}
