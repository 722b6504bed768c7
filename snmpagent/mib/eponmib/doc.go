// Package eponmib serves DOT3-EPON-MIB (RFC 4837) and DOT3-OAM-MIB's dot3OamTable (RFC 4878)
// for the shelf's OLTs: dot3MpcpControlTable
// and dot3MpcpStatTable, one row per virtual link (registered or registering LLID) and one per
// PON port (the OLT interface, which RFC 4837 pairs with the broadcast LLID 0xffff), and names
// the CGOA-EPON-MIB notifications cgoaEponOnuRegistered, cgoaEponOnuDeregistered and
// cgoaEponOnuLost (sent by package traps).
//
// The rows come from a Source (on the mgmt blade: the EPON blades' state feed); their ifIndex
// values are the Source's (see Link.IfIndex). Served subset, read-only:
//
//   - dot3MpcpControlTable: dot3MpcpOperStatus, dot3MpcpAdminState (read-only here: the OLT is
//     not switched off through SNMP), dot3MpcpMode (olt), dot3MpcpLinkID,
//     dot3MpcpRemoteMACAddress, dot3MpcpRegistrationState, dot3MpcpRoundTripTime,
//     dot3MpcpMaximumPendingGrants. Not served: dot3MpcpSyncTime, dot3MpcpTransmitElapsed,
//     dot3MpcpReceiveElapsed (the feed does not carry them).
//   - dot3MpcpStatTable: every column; those RFC 4837 says are zero at an OLT (ONU-side
//     transmissions and receptions) are zero.
//   - DOT3-OAM-MIB (RFC 4878) dot3OamTable, for links with OAM (the ONUs' LLIDs):
//     dot3OamAdminState (enabled), dot3OamOperStatus (the OLT's clause 57 discovery state),
//     dot3OamMode (active). Not served: dot3OamMaxOamPduSize, dot3OamConfigRevision,
//     dot3OamFunctionsSupported, and the rest of DOT3-OAM-MIB.
//   - Not served: dot3OmpEmulation*, dot3EponMau*.
//
// net-snmp translates the names with snmpagent/mibs/DOT3-EPON-MIB.txt, DOT3-OAM-MIB.txt (the
// subsets served,
// written for this project: Debian's snmp-mibs-downloader, which fetches the RFC modules,
// is not available here) and CGOA-EPON-MIB.txt.
//
// Use:
//
//	m := eponmib.New(src)
//	m.Register(agent)
package eponmib
