package sim

import (
	"testing"
	"time"
)

func TestLoopOrder(t *testing.T) {
	l := NewLoop()
	var got []int
	l.After(2*time.Millisecond, func() { got = append(got, 3) })
	l.After(time.Millisecond, func() {
		got = append(got, 1)
		l.After(0, func() { got = append(got, 2) })
	})
	l.After(2*time.Millisecond, func() { got = append(got, 4) })
	l.After(5*time.Millisecond, func() { got = append(got, 5) })
	l.RunUntil(3 * time.Millisecond)
	want := []int{1, 2, 3, 4}
	if len(got) != len(want) {
		t.Fatalf("RunUntil(3ms) ran %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("RunUntil(3ms) ran %v, want %v", got, want)
		}
	}
	if l.Now() != 3*time.Millisecond {
		t.Errorf("Now() = %v, want 3ms", l.Now())
	}
	if l.Pending() != 1 {
		t.Errorf("Pending() = %d, want 1", l.Pending())
	}
}
