// Package topology describes an emulated ATCA shelf: which blade (role) sits
// in which slot, and the point-to-point channels that wire the blades'
// ports to each other and to host-side far ends.
//
// The wiring is derived from the slots, as on a real ATCA backplane, so a
// topology file only lists slots:
//
//   - slots 1 and 2 are the hub slots and hold switch blades;
//   - every other (node) slot N has base0 to hub 1's port node<N> and base1
//     to hub 2's port node<N> (only base0 when the shelf has one hub);
//   - two hubs are joined by isl0 <-> isl0;
//   - each hub's uplink0 ends in a host sink endpoint ("uplink-s<N>");
//   - each PON port pon<i> of an EPON blade ends in a host ONU emulator
//     endpoint ("onu-s<N>-pon<i>").
//
// Use Default for the standard shelf (switch 1, 2; mgmt 3, 4; epon 5 with
// pon0 and pon1) or Parse/LoadFile for a topology file. The file format is
// YAML:
//
//	# name of the shelf: names the run directory build/shelf/<name>
//	name: mini
//	# shelf number 1..255: cgoa.shelf= on the kernel command line, MAC byte 3
//	shelf: 1
//	slots:
//	  - slot: 1          # 1..16; 1 and 2 are hub slots
//	    role: switch     # switch (hub slots only), mgmt or epon (node slots only)
//	    uplink: true     # hubs only; default true
//	  - slot: 3
//	    role: mgmt
//	  - slot: 5
//	    role: epon
//	    pon: 2           # epon only: number of PON ports 0..8; default 2
//
// Errors name the file, line and field ("mini.yaml:9: slots[2].role: unknown
// role "mgnt" (want switch, mgmt or epon)"). Examples are in qemu/examples.
//
// Port names map to PCI device numbers on bus 0 exactly as the firmware's
// HAL expects (see PCIDevice); MAC addresses follow
// 52:54:<shelf>:<slot>:00:<pci dev>.
package topology
