// Package vm launches one blade as a QEMU VM and talks to it.
//
// Args builds the QEMU command line of a blade (the one place that knows
// the flags agreed in the firmware/QEMU contract: TCG, PVH vmlinux, the
// role's initramfs, cgoa.shelf=/cgoa.slot=, i6300esb with
// -action watchdog=reset, ipmi-bmc-sim + isa-ipmi-kcs, the serial console
// and QMP on unix sockets, and one -netdev dgram point-to-point link per
// port). Start runs it, connects QMP and the console, and keeps QEMU's own
// console log (slot<N>.log in the run directory) for test failure output.
//
//	v, err := vm.Start(ctx, vm.Config{Kernel: k, Initrd: img, Role: "mgmt", Shelf: 1, Slot: 3, RunDir: dir})
//	defer v.Stop(ctx)
//	err = v.WaitBoot(ctx, 1)                       // banner + prompt of boot 1
//	out, err := v.Console().Exec(ctx, "show version json")
//
// Console speaks the firmware console protocol: write "<line>\r", the
// terminal echoes the line and "\r\n", then the output, then the prompt; a
// first output line starting "error: " makes Exec return a *CommandError.
package vm
