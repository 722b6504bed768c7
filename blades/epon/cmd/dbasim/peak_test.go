package main

import "testing"

func TestPeakCarried(t *testing.T) {
	p, o := peakCarried(50e6, 300e6)
	t.Logf("50 Mb/s peak at 300 Mb/s offered: %.2f Mb/s carried, the other ONU %.2f Mb/s", p, o)
	if p < 47.5 || p > 50.2 || o < 285 {
		t.Errorf("peakCarried(50 Mb/s, 300 Mb/s) = %.2f, %.2f Mb/s; want 47.5..50.2 and >= 285", p, o)
	}
}
