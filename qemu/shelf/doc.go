// Package shelf runs a whole emulated shelf: one QEMU VM per blade (package
// vm), the backplane channels between them as point-to-point unix datagram
// links, the host far ends of uplinks and PON ports (package farend), and
// the faults an operator or a test injects.
//
// Everything of a running shelf lives in one run directory, by default
// build/shelf/<topology name>/:
//
//	control.sock        the supervisor's control socket (see Client)
//	supervisor.pid      pid of the process holding the shelf
//	topology.yaml       the topology it runs
//	slot<N>.console     serial console socket (held by the supervisor)
//	slot<N>.qmp         QMP socket (held by the supervisor)
//	slot<N>.log         everything the console printed (slot<N>.log.1: the previous run)
//	slot<N>.qemu.log    QEMU's stderr
//	slot<N>.flash       the blade's flash disk (boot-control block, banks A and B)
//	bootrom/            kernels and initramfs files the boot ROM unpacked, by image digest
//	s<N>-<port>.sock    a blade port's end of a channel
//	host-<name>.sock    a host far end (uplink-s1, onu-s5-pon0, ...)
//
// QEMU's console and QMP sockets take one client each, so the process that
// brought the shelf up (Shelf) holds them and serves every other command
// over control.sock (Server, Client): status, exec, console, kill, restart,
// hang, resume, cut, mend, down, flash, upgrade.
//
// Booting follows a real blade: every boot, the first and every one after a reset, goes
// through the boot ROM (package image/bootrom), which picks a flash bank, checks its image
// and hands QEMU the kernel and initramfs. QEMU runs with -no-reboot, so a reset ends it and
// the shelf (watch) boots the blade again; a trial that never confirms is reset by the
// boot ROM's trial watchdog. Flash sends an image through a blade's craft port, Upgrade
// rolls a new image over a protected pair.
//
// Link semantics follow a real backplane: a channel is up only when neither
// end is pulled and it is not cut; whenever that changes, both ends are set
// (QMP set_link on each VM's device, or the host far end stops).
package shelf
