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
			names := make([]string, 256)
			for i := range names {
				names[i] = fmt.Sprintf("k%04d", i)
			}
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
