package main

import (
	"net/netip"
	"testing"
)

func TestBasePath(t *testing.T) {
	p, err := basePath("base0=169.254.70.0/24", 7400, 3, []uint8{1, 3, 4}, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := netip.MustParseAddrPort("169.254.70.3:7400"); p.Local != want || p.Interface != "base0" {
		t.Errorf("basePath(unicast) local %v iface %q, want %v base0", p.Local, p.Interface, want)
	}
	if got := p.Peers[4]; got != netip.MustParseAddrPort("169.254.70.4:7400") || len(p.Peers) != 2 {
		t.Errorf("basePath(unicast) peers %v", p.Peers)
	}
	b, err := basePath("base1=169.254.71.0/23", 7400, 3, []uint8{1, 3}, true)
	if err != nil {
		t.Fatal(err)
	}
	if b.Broadcast != netip.MustParseAddrPort("169.254.71.255:7400") {
		t.Errorf("basePath(169.254.71.0/23) broadcast = %v, want 169.254.71.255:7400", b.Broadcast)
	}
	if b.Local != netip.MustParseAddrPort("0.0.0.0:7400") || len(b.Peers) != 0 {
		t.Errorf("basePath(broadcast) local %v peers %v, want wildcard and none", b.Local, b.Peers)
	}
	for _, bad := range []string{"base0", "base0=169.254.70.0", "base0=fe80::/64"} {
		if _, err := basePath(bad, 7400, 3, nil, false); err == nil {
			t.Errorf("basePath(%q) succeeded, want error", bad)
		}
	}
}
