package topology_test

import (
	"path/filepath"
	"testing"

	"github.com/cgoa/cgoa/hal"
	"github.com/cgoa/cgoa/qemu/topology"
)

// TestWiringMatchesHAL checks the launcher's port placement against the
// firmware's own wiring table: a NIC the shelf puts at a PCI device must get
// the same name and MAC inside the blade.
func TestWiringMatchesHAL(t *testing.T) {
	shelves := []*topology.Shelf{topology.Default()}
	files, _ := filepath.Glob("../examples/*.yaml")
	for _, f := range files {
		s, err := topology.LoadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		shelves = append(shelves, s)
	}
	for _, s := range shelves {
		for _, b := range s.Blades {
			for _, port := range s.Ports(b.Slot) {
				dev, err := topology.PCIDevice(port)
				if err != nil {
					t.Fatal(err)
				}
				want, err := hal.PCIForPort(port, b.Hub())
				if err != nil || dev != want {
					t.Errorf("%s slot %d: PCIDevice(%s) = %#x, hal.PCIForPort = %#x, %v", s.Name, b.Slot, port, dev, want, err)
				}
				if name, ok := hal.PortNameForPCI(dev, b.Hub()); !ok || name != port {
					t.Errorf("%s slot %d: hal.PortNameForPCI(%#x) = %q, want %q", s.Name, b.Slot, dev, name, port)
				}
				mac, _ := topology.MAC(s.Number, b.Slot, port)
				if hm := hal.PortMAC(s.Number, b.Slot, dev); mac != hm {
					t.Errorf("%s slot %d %s: MAC = %s, hal.PortMAC = %s", s.Name, b.Slot, port, mac, hm)
				}
			}
		}
	}
}
