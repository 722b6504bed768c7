// Package switchblade is the switch (hub) blade role: the shelf's data path, a Linux bridge
// over every backplane port and the uplinks under the firmware's 802.1D spanning-tree agent,
// protected 1:1 across the two hub slots.
//
// # Spanning tree and protection
//
// br0 joins the hub's node<N> ports (channels to the node slots), isl0 (the other hub) and
// its uplinks. The Agent runs stp.Bridge on it through netstack/bridge in user-space STP mode
// (the kernel hands STP to user space by running /sbin/bridge-stp, a link to the firmware
// answered by [BridgeSTP]; netstack/bridge refuses a bridge that does not report user mode).
// Only the uplinks are STP ports: node blades bridge nothing, so their channels are edge ports
// held forwarding, and so is isl0 in protected mode, where it is inside the logical bridge.
// That keeps the HA transport, which runs over br0 on both base planes, off the tree.
//
// Protected mode (default, `stp mode protected`): the two hubs are one logical bridge whose
// identifier is derived from the shelf number (ShelfBridgeID), with the same port numbers on
// both hubs (uplink0 is port 1). The hub whose unit is active in the `switch` service group
// runs it and checkpoints its stp.State (ha/ckpt, checkpoint "switch", section "stp") on every
// Generation change (synchronously) and every hello time (asynchronously, for the timers);
// the standby holds its uplinks blocking (bridge.Hold) and the checkpoint. On failover the
// standby restores the state aged by the checkpoint's age (stp.Restore of State.Aged) and
// continues the same bridge: same identifier, port identifiers, roles, states and timers, so
// its next hello goes out when the dead hub's would have, and flushes its FDB (addresses
// learnt across isl0 from the dead hub). The standby does not wait for HA's detection time
// when isl0 loses carrier (a pulled hub takes its end down at once): it takes over from the
// checkpoint right then, provisionally, until HA confirms or, after a grace time, it holds
// again (Agent.MateLost; loop-free even if the mate lives, since isl0 is down). For the
// outside network not to see a new bridge
// port, the two hubs' uplinks must face the same LAN (a Y-cable, an optical splitter, or a
// shared segment of the core network); the QEMU tests join them so.
//
// The unit's "switch-stp" component has the checkpoint replica's readiness as its gate
// (amf.Component.Ready = ckpt.Node.Ready): a hub whose replica is not in sync with the
// active's tree does not take the group while the in-sync hub lives, nor counts as the
// standby; it takes a free group once no live writer is left (one in-sync lease after it
// last saw one), as starting afresh is then all that can be had.
//
// Traffic from node blades reaches the active hub's uplinks from either hub, since both
// forward node ports and isl0; a node must only stop using the channel to a hub that is gone.
// Package hubpath (blades/switch/hubpath) is the node side: it prefers the channel toward the
// active hub (or the live one) for the addresses a node blade carries on both channels, and
// announces them from it, leaving the HA transport's per-plane addresses alone; the mgmt and
// EPON roles run it, and the EPON blade sends its ONUs' upstream data on that channel.
//
// The bridge's snapshot (running, or held from the checkpoint on the standby) goes to the
// mgmt blades through blades/statefeed for BRIDGE-MIB and its traps.
//
// Independent mode (`stp mode independent`): each hub is a plain 802.1D bridge over its uplinks
// and isl0 with its own identifier, as without protection; it is the peer the protected mode
// is measured against. Mode off (`stp mode off`) leaves br0 without spanning tree, forwarding
// on every port, for wiring without loops. The mode a blade boots in comes from the kernel
// command line, cgoa.stp=protected|independent|off (default protected); the QEMU shelf passes
// off unless a test asks for STP, since its hubs' uplinks end at separate host sinks.
//
// Console: show stp, show stp ports (with json), stp priority N, stp port PORT cost
// N|priority N, stp timers MAXAGE HELLO FWD, stp mode protected|independent|off. Path costs default to
// 802.1D-2004's table by the port's speed; the bridge priority to 32768.
//
// In process mode br0 lives in a test's network namespace, where the kernel cannot hand STP
// to user space; the agent runs with kernel STP off there (bridge.Config.NoSTP).
package switchblade

import (
	"fmt"
	"io"

	"github.com/cgoa/cgoa/blades/blade"
)

// Role returns the switch blade role for the firmware.
func Role() blade.Role {
	r := &role{}
	return blade.Role{Name: "switch", Start: r.start, HA: r.startHA,
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
