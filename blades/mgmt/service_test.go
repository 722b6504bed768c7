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
