// Package stptest holds the QEMU shelf tests of the switch blades' spanning tree against
// peers nobody here wrote: Linux kernel bridges with kernel STP (stp_state 1) in network
// namespaces the tests make, joined to the hubs' uplinks through tap relays (farend.Tap).
//
// The two hubs' uplinks face one LAN (a bridge with STP off in the test's namespace, which
// passes BPDUs like a wire: the emulator's Y-cable), on which two kernel STP bridges K1 and
// K2, themselves linked, close a loop. The tests check that the tree (root, root ports,
// designated and blocked ports) is the one 802.1D defines, computed in the test from the
// identifiers, port identifiers and costs, and the one the kernel bridges build when a kernel
// bridge with the shelf's identifier stands in for it; that cutting a link re-converges
// within 802.1D's timers; that killing the active hub costs no topology change in the kernel
// bridges; and that tshark decodes every captured BPDU without a malformed frame.
//
// They need root, iproute2, tshark, QEMU and the images (make images); they skip without
// them, and fail instead with CGOA_REQUIRE_VM=1. Every namespace, tap, capture and VM is
// removed when a test ends, also on failure.
package stptest
