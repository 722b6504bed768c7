// Package bridgemib serves BRIDGE-MIB (RFC 4188) for an 802.1D bridge:
// the dot1dBase group with dot1dBasePortTable, and the dot1dStp group
// with dot1dStpPortTable, from stp.Snapshot. It also names the
// BRIDGE-MIB notifications newRoot and topologyChange (sent by package
// traps).
//
// The snapshot comes from a Source: on a switch blade FromBridge(bridge);
// on the management blade, whatever keeps the last snapshot the active
// switch blade published. While no snapshot is known, the groups are
// empty (noSuchObject/noSuchInstance), not zeroes.
//
// Use:
//
//	br := bridgemib.New(bridgemib.FromBridge(bridge), bridgemib.Options{IfIndex: ifs.IfIndex})
//	br.Register(agent)
//
// Not served: dot1dBasePortDelayExceededDiscards and
// dot1dBasePortMtuExceededDiscards (the kernel bridge does not count
// them), dot1dTp (the forwarding database) and dot1dStatic.
package bridgemib
