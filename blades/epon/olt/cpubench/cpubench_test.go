package cpubench

import (
	"testing"
	"time"
)

func TestRig(t *testing.T) {
	r, err := NewRig(2, 32, 2*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Measure(100)
	if err != nil {
		t.Fatal(err)
	}
	// 7 of 8 REPORTs are backlogged and get a GATE at once; the idle
	// ones get theirs after the idle poll, within the run.
	if min := uint64(2 * 32 * 100 * 7 / 8); res.GATEs < min {
		t.Errorf("%d GATEs for 100 cycles of 2x32 ONUs, want >= %d", res.GATEs, min)
	}
	if res.Simulated != 200*time.Millisecond || res.Percent <= 0 {
		t.Errorf("Measure(100) = %+v", res)
	}
}

func BenchmarkCycle6x32(b *testing.B) {
	r, err := NewRig(6, 32, 2*time.Millisecond)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		r.Cycle()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/2e6*100, "%core")
}
