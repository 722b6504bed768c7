// Package epon is the EPON blade role: an IEEE 802.3ah OLT with PON ports (MPCP discovery,
// registration and ranging, dynamic bandwidth allocation, OAM), protected N+M across the
// shelf's EPON blades. The OLT control, DBA and simulator live in the subpackages.
package epon

import "github.com/cgoa/cgoa/blades/blade"

// Role returns the EPON blade role for the firmware.
func Role() blade.Role {
	return blade.Role{Name: "epon"}
}
