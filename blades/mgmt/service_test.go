package mgmt

import (
	"slices"
	"testing"
)

// TestAddressOrder: the management address goes first on the channel the node's traffic
// takes (hubpath's choice), else in port order.
func TestAddressOrder(t *testing.T) {
	s := &Service{ports: []string{"base0", "base1"}}
	if got := s.order(); !slices.Equal(got, []string{"base0", "base1"}) {
		t.Errorf("order() without a preference = %v, want [base0 base1]", got)
	}
	pref := "base1"
	s.Preferred = func() string { return pref }
	if got := s.order(); !slices.Equal(got, []string{"base1", "base0"}) {
		t.Errorf("order() preferring base1 = %v, want [base1 base0]", got)
	}
	pref = ""
	if got := s.order(); !slices.Equal(got, []string{"base0", "base1"}) {
		t.Errorf("order() undecided = %v, want [base0 base1]", got)
	}
}

// TestTakeoverSteps: each port's address comes before its announcement, the preferred port
// (first) gets both first, and the last announcement is on the preferred port, whose MAC the
// hosts then keep.
func TestTakeoverSteps(t *testing.T) {
	for _, ports := range [][]string{{"base1", "base0"}, {"base0"}, {"base0", "base1", "base2"}} {
		steps := takeoverSteps(ports)
		if len(steps) < 2 || steps[0] != (step{port: ports[0]}) || steps[1] != (step{port: ports[0], announce: true}) {
			t.Errorf("takeoverSteps(%v) starts %v, want the address and announcement of %s", ports, steps, ports[0])
			continue
		}
		if last := steps[len(steps)-1]; last != (step{port: ports[0], announce: true}) {
			t.Errorf("takeoverSteps(%v) ends with %v, want the announcement on %s", ports, last, ports[0])
		}
		added := map[string]bool{}
		announced := map[string]bool{}
		for _, st := range steps {
			if st.announce {
				if !added[st.port] {
					t.Errorf("takeoverSteps(%v): %s announced before its address", ports, st.port)
				}
				announced[st.port] = true
				continue
			}
			added[st.port] = true
		}
		for _, p := range ports {
			if !added[p] || !announced[p] {
				t.Errorf("takeoverSteps(%v): %s added %v, announced %v; want both", ports, p, added[p], announced[p])
			}
		}
	}
}
