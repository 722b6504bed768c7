package farend

import (
	"net"
	"testing"
	"time"

	"github.com/cgoa/cgoa/blades/epon/onu"
)

var (
	seqDst  = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	seqONU1 = net.HardwareAddr{2, 0x0e, 4, 0, 0, 1}
	seqONU2 = net.HardwareAddr{2, 0x0e, 4, 0, 0, 2}
)

// TestSequences: per source, a skipped number is lost, a number seen again a duplicate, and
// a skipped one arriving after all is late (no longer lost); sources count apart, even on
// the same stream number; Gap is the longest silence of all sources together.
func TestSequences(t *testing.T) {
	s := NewSequences()
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	add := func(src net.HardwareAddr, seq uint64, ms int) {
		t.Helper()
		if !s.Add(onu.NumberedFrame(seqDst, src, 0, seq, 64), at(ms)) {
			t.Fatalf("Add(seq %d) = false, want true", seq)
		}
	}
	add(seqONU1, 100, 0) // starts mid-stream: nothing lost before it
	add(seqONU2, 7, 5)
	add(seqONU1, 101, 10)
	add(seqONU1, 104, 20) // 102, 103 lost
	add(seqONU1, 104, 21) // duplicate
	add(seqONU1, 102, 300)
	add(seqONU2, 8, 310)
	add(seqONU1, 101, 311) // duplicate of an old one
	if s.Add([]byte("not a numbered frame at all"), at(320)) {
		t.Fatal("Add(junk) = true, want false")
	}
	want := SeqCounts{Sources: 2, Received: 6, Lost: 1, Duplicates: 2, Late: 1, Other: 1}
	if got := s.Counts(); got != want {
		t.Fatalf("Counts() = %+v, want %+v", got, want)
	}
	if g := s.Gap(at(0), at(310)); g != 280*time.Millisecond {
		t.Fatalf("Gap(0, 310 ms) = %v, want 280ms (20 ms to 300 ms)", g)
	}
	if g := s.Gap(at(305), at(400)); g != 90*time.Millisecond {
		t.Fatalf("Gap(305, 400 ms) = %v, want 90ms (the last arrival at 310 ms to the end)", g)
	}
	if l := s.Last(); !l.Equal(at(310)) {
		t.Fatalf("Last() = %v, want %v", l, at(310))
	}
}

// FuzzSequences: any bytes are counted as a frame or as other, never a panic, and the
// totals stay consistent.
func FuzzSequences(f *testing.F) {
	f.Add(onu.NumberedFrame(seqDst, seqONU1, 3, 9, 64), uint64(7))
	f.Add([]byte{1, 2, 3}, uint64(0))
	f.Add(onu.NumberedFrame(seqDst, seqONU1, 0, 1<<63, 60), uint64(1<<62))
	f.Fuzz(func(t *testing.T, frame []byte, seq uint64) {
		s := NewSequences()
		now := time.Unix(0, 0)
		s.Add(frame, now)
		s.Add(frame, now)
		s.Add(onu.NumberedFrame(seqDst, seqONU1, 3, seq, 64), now)
		c := s.Counts()
		if c.Received+c.Duplicates+c.Other != 3 {
			t.Fatalf("Counts() = %+v: received + duplicates + other != 3 frames", c)
		}
	})
}
