package image

import (
	"fmt"
	"sort"
)

// Roles are the blade roles an image can be built for (the firmware's build tags).
var Roles = []string{"mgmt", "switch", "epon"}

// commonModules every blade needs: the backplane NICs (virtio-net under QEMU, e1000 for
// hardware-like NIC models), the i6300esb watchdog, and the IPMI system interface.
var commonModules = []string{"virtio_net", "virtio_pci", "virtio_blk", "e1000", "i6300esb", "ipmi_si", "ipmi_devintf", "af_packet", "bonding"}

// roleModules are what each role adds: the switch blade bridges its ports and runs STP.
var roleModules = map[string][]string{
	"mgmt":   {},
	"switch": {"bridge", "8021q"},
	"epon":   {},
}

// RoleModules returns the modules (by name) an image of the role carries, before their
// dependencies are added.
func RoleModules(role string) ([]string, error) {
	extra, ok := roleModules[role]
	if !ok {
		return nil, fmt.Errorf("image: unknown role %q (roles: %v)", role, Roles)
	}
	mods := append(append([]string{}, commonModules...), extra...)
	sort.Strings(mods)
	return mods, nil
}
