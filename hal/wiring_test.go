package hal

import "testing"

func TestPortNameForPCIRoundTrip(t *testing.T) {
	for _, hub := range []bool{false, true} {
		seen := map[string]bool{}
		for dev := 0; dev < 32; dev++ {
			name, ok := PortNameForPCI(dev, hub)
			if !ok {
				continue
			}
			if seen[name] {
				t.Fatalf("PortNameForPCI: name %q given twice (hub=%v)", name, hub)
			}
			seen[name] = true
			back, err := PCIForPort(name, hub)
			if err != nil || back != dev {
				t.Errorf("PCIForPort(%q, %v) = %#x, %v; want %#x", name, hub, back, err, dev)
			}
		}
		if hub && (!seen["isl0"] || !seen["uplink0"] || !seen["node3"] || !seen["node16"] || seen["base0"]) {
			t.Errorf("hub wiring = %v, want isl0, uplink0, node3..node16 and no base0", seen)
		}
		if !hub && (!seen["base0"] || !seen["base1"] || !seen["pon0"] || !seen["pon7"] || seen["isl0"]) {
			t.Errorf("node wiring = %v, want base0, base1, pon0..pon7 and no isl0", seen)
		}
	}
}

func TestPCIForPortErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		hub  bool
	}{{"node2", true}, {"node17", true}, {"node03", true}, {"pon8", false}, {"base0", true}, {"isl0", false}, {"eth0", false}, {"pon-1", false}} {
		if d, err := PCIForPort(tc.name, tc.hub); err == nil {
			t.Errorf("PCIForPort(%q, %v) = %#x, nil; want an error", tc.name, tc.hub, d)
		}
	}
}

func TestPCIDeviceFromAddress(t *testing.T) {
	for _, tc := range []struct {
		in   string
		dev  int
		okay bool
	}{{"0000:00:08.0", 8, true}, {"0000:00:1c.0", 0x1c, true}, {"0000:01:08.0", 0, false}, {"garbage", 0, false}, {"0000:00:zz.0", 0, false}} {
		d, ok := pciDeviceFromAddress(tc.in)
		if d != tc.dev || ok != tc.okay {
			t.Errorf("pciDeviceFromAddress(%q) = %d, %v; want %d, %v", tc.in, d, ok, tc.dev, tc.okay)
		}
	}
	if got := PortMAC(1, 3, 8); got != "52:54:01:03:00:08" {
		t.Errorf("PortMAC(1,3,8) = %q", got)
	}
}
