package ckpt

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkServiceWrite is the active's own cost of an asynchronous
// write with no replica (append into the ring, evicting the oldest
// record, the section map): 1 KiB sections, 256 of them in turn, through
// a 4 MiB ring (the stream of make bench-ckpt's async.1k, without the
// Link).
func BenchmarkServiceWrite(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("%dk", size>>10), func(b *testing.B) {
			s := New(LinkOptions(1, 4<<20))
			s.Promote(0)
			if err := s.Open(0, "c", time.Hour); err != nil {
				b.Fatal(err)
			}
			data := make([]byte, size-8)
			names := sectionNames(256)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := s.Write(0, "c", names[i%len(names)], data, false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkServicePair is both sides' own cost of a stream of
// asynchronous 1 KiB writes (256 sections in turn) from a writer to a
// replica, without a Link: the writer's records go out in runs of about
// 200, pulled as a Link pulls them after each batch (Offer refuses in
// between), and the replica takes each run as it would a Link's message.
// ns/op is both sides per record; take-ns/op the replica's part.
func BenchmarkServicePair(b *testing.B) {
	const size, pullEvery = 1 << 10, 200
	var toW [][]byte
	var msg []byte
	var r *Service
	var took time.Duration
	pulling := false
	wo := LinkOptions(1, 4<<20)
	wo.Send = func(_ uint8, m []byte) {
		t := time.Now()
		r.Receive(0, 1, m)
		took += time.Since(t)
	}
	wo.Offer = func(_ uint8, head, data []byte, _ uint64) bool {
		if !pulling {
			return false // a batch is being written: pulled after it
		}
		msg = append(append(msg[:0], head...), data...) // (the copy the kernel makes)
		t := time.Now()
		r.Receive(0, 1, msg)
		took += time.Since(t)
		return true
	}
	w := New(wo)
	ro := LinkOptions(2, 4<<20)
	ro.Send = func(_ uint8, m []byte) { toW = append(toW, append([]byte(nil), m...)) }
	r = New(ro)
	pull := func() {
		pulling = true
		w.Pump(0)
		pulling = false
		r.AckPending()
		for len(toW) > 0 {
			q := toW
			toW = nil
			for _, m := range q {
				w.Receive(0, 2, m)
			}
		}
	}
	w.Promote(0)
	if err := w.Open(0, "c", time.Hour); err != nil {
		b.Fatal(err)
	}
	r.Follow(1)
	w.SetReplicas(0, []uint8{2})
	for range 10 {
		pull()
	}
	data := make([]byte, size-8)
	names := sectionNames(256)
	b.SetBytes(size)
	b.ReportAllocs()
	took = 0
	for i := 0; b.Loop(); i++ {
		if _, err := w.Write(0, "c", names[i%len(names)], data, false); err != nil {
			b.Fatal(err)
		}
		if i%pullEvery == pullEvery-1 {
			pull()
		}
	}
	pull()
	b.ReportMetric(float64(took.Nanoseconds())/float64(b.N), "take-ns/op")
	if got, want := r.Status().Seq, w.Status().Seq; got != want {
		b.Fatalf("replica at record %d, writer at %d", got, want)
	}
}

// sectionNames is n section names, k0000 on, for a stream's writes in
// turn (the benchmarks').
func sectionNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("k%04d", i)
	}
	return names
}
