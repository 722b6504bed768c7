// Package switchblade is the switch (hub) blade role: the shelf's data path, a Linux bridge
// over every backplane port and the uplinks under the firmware's 802.1D spanning-tree agent,
// protected 1:1 across the two hub slots.
//
// The kernel hands spanning tree to user space by running /sbin/bridge-stp when STP is turned
// on for a bridge; in a switch image that name is a link to the firmware, which answers
// through [BridgeSTP].
package switchblade

import (
	"fmt"
	"io"

	"github.com/cgoa/cgoa/blades/blade"
)

// Role returns the switch blade role for the firmware.
func Role() blade.Role {
	return blade.Role{Name: "switch", Start: startBackplane,
		Helpers: map[string]func([]string, io.Writer) int{"bridge-stp": BridgeSTP}}
}

// BridgeSTP is /sbin/bridge-stp: the kernel calls it as "bridge-stp BRIDGE start|stop". Exit
// status 0 on start tells the kernel that user space runs STP for the bridge (BR_USER_STP);
// any other status makes the kernel fall back to its own STP. The firmware's agent owns STP on
// every bridge of a switch blade, so start is always accepted; malformed calls are refused.
func BridgeSTP(args []string, stderr io.Writer) int {
	if len(args) != 2 || args[0] == "" {
		fmt.Fprintf(stderr, "bridge-stp: usage: bridge-stp BRIDGE start|stop (got %q)\n", args)
		return 2
	}
	switch args[1] {
	case "start", "stop":
		return 0
	}
	fmt.Fprintf(stderr, "bridge-stp: %s: unknown action %q (want start or stop)\n", args[0], args[1])
	return 2
}
