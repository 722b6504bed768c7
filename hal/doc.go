// Package hal is the blade's hardware abstraction layer, after the SA Forum HPI idea: one
// interface to what a blade is and has (shelf and slot identity, front and backplane ports,
// watchdog, IPMI controller, ATCA hot-swap state, kernel modules), with two backends:
//
//   - [OpenBlade]: a real or QEMU-emulated ATCA blade. Identity comes from the kernel command
//     line (cgoa.shelf=, cgoa.slot=), ports are named from their PCI position on the backplane
//     wiring, the watchdog is /dev/watchdog (an i6300esb in QEMU) and the IPMI controller is
//     /dev/ipmi0 (QEMU's ipmi-bmc-sim behind an isa-ipmi-kcs interface).
//   - [OpenProcess]: the same firmware as an ordinary process in a network namespace made by a
//     test. Identity comes from flags, ports are the namespace's links by their own names, and
//     what a namespace lacks (watchdog, IPMI) reports "not present" instead of failing.
//
// Typical use by the firmware:
//
//	hw, warnings := hal.OpenBlade(hal.BladeConfig{Role: "mgmt"})
//	for _, w := range warnings { log.Print(w) } // malformed cmdline values: safe defaults used
//	defer hw.Close()
//	if wd := hw.Watchdog; wd.Present() { wd.Arm(10 * time.Second) }
//	ports, err := hw.Ports.List()
//
// Nothing in this package panics on bad input: malformed identity values give an error naming
// the value and a safe default, absent devices give [ErrNotPresent].
package hal
