// Package mib is the home of the shelf's MIB modules for snmpagent, one
// package each, all built the same way: New(source, options) with a
// small data-source interface, then Register(agent).
//
//   - ifmib: IF-MIB (ifTable, ifXTable with HC counters) from hal.Port
//     lists, with failover State keeping ifIndex and counters monotonic.
//   - entitymib: ENTITY-MIB entPhysicalTable for the shelf inventory.
//   - hamib: CGOA-HA-MIB (snmpagent/mibs) from the HA core's Status.
//   - bridgemib: BRIDGE-MIB dot1dBase/dot1dStp from stp.Snapshot.
//   - eponmib: DOT3-EPON-MIB dot3MpcpControlTable/dot3MpcpStatTable and
//     DOT3-OAM-MIB dot3OamTable per PON port and LLID, and the
//     CGOA-EPON-MIB ONU notifications.
//   - traps: the notifications of all of them, from HA events, link
//     changes, STP snapshots or events, and ONU events.
//
// The MIB files net-snmp needs to name CGOA objects are in
// snmpagent/mibs (with minimal base-module stand-ins in mibs/base for
// hosts without the IETF MIB files), as are the served subsets of
// DOT3-EPON-MIB and DOT3-OAM-MIB, which Debian ships only in the non-free
// snmp-mibs-downloader. To name everything:
//
//	snmpwalk -M +:snmpagent/mibs:snmpagent/mibs/base \
//		-m +CGOA-HA-MIB:DOT3-EPON-MIB:DOT3-OAM-MIB:CGOA-EPON-MIB ...
package mib
