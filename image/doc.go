// Package image builds and (later) verifies blade images. A blade image today is a u-root
// initramfs: the firmware binary as /init, the kernel modules its role needs with a trimmed
// modules.dep, and for the switch role /sbin/bridge-stp, which makes the kernel hand spanning
// tree to the firmware's user-space agent.
//
// The archive itself is written by u-root (`go tool u-root`, pinned in go.mod); this package
// decides what goes in it. See cmd/mkimage, which `make image ROLE=...` runs.
package image
