// Package mgmt is the management blade role: it manages the shelf (SNMP agent, management
// address, operator access). It is protected 1:1 by the HA core: the standby mgmt blade takes
// over with counters, sessions and state intact. Its components are wired in by Role's Start.
package mgmt

import "github.com/cgoa/cgoa/blades/blade"

// Role returns the management blade role for the firmware.
func Role() blade.Role {
	return blade.Role{Name: "mgmt"}
}
