package shelf

import "github.com/cgoa/cgoa/qemu/topology"

func portLess(a, b string) bool {
	da, _ := topology.PCIDevice(a)
	db, _ := topology.PCIDevice(b)
	return da < db
}
