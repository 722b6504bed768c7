package main

import "testing"

func TestBladeProcs(t *testing.T) {
	for _, c := range []struct {
		ncpu int
		env  string
		want int
		set  bool
	}{
		{1, "", 2, true},
		{2, "", 0, false},
		{8, "", 0, false},
		{1, "1", 0, false}, // the operator's setting wins
	} {
		if got, set := bladeProcs(c.ncpu, c.env); got != c.want || set != c.set {
			t.Errorf("bladeProcs(%d, %q) = %d, %v, want %d, %v", c.ncpu, c.env, got, set, c.want, c.set)
		}
	}
}
