// Package statefeed carries the shelf's role state to the management blades: the EPON
// blades publish their OLT/ONU tables (what DOT3-EPON-MIB, RFC 4837, serves: per LLID the
// ONU's MAC, registration state, round-trip time and MPCP counters) and ONU events
// (registered, deregistered, lost), the switch blades their spanning-tree snapshot
// (stp.Snapshot, what BRIDGE-MIB serves) and new-root / topology-change events.
//
// Transport: frames of type FrameType on the HA transport (authenticated with the shelf
// key), broadcast so that the standby mgmt blade holds the feed as warm as the active one.
// A table is a publication: it is encoded once, cut into parts that each fit one frame, and
// replaces the publisher's previous table when every part has arrived. Publishers send
// their table periodically (a lost part costs one period) and an event at once.
//
// Wire format (version 1, big endian), the payload of one frame:
//
//	off len field
//	0   1   version (1)
//	1   1   kind: 1 STP snapshot, 2 STP event, 3 EPON table, 4 EPON event
//	2   4   generation: the publisher's publication number
//	6   2   part index
//	8   2   part count (1..MaxParts)
//	10  n   part of the body
//
// Bodies are bounded (MaxParts parts, MaxPorts bridge ports, MaxPONs and MaxONUs, names of
// at most MaxName octets); whatever fails to decode is dropped and counted (Counters), never
// a panic. Decoding is pure (no I/O): Decode and DecodeBody are fuzzed.
//
// Use, on a switch blade (blocks until ctx ends):
//
//	b.Supervise(ctx, "stp-feed", func(ctx context.Context) error {
//		return statefeed.PublishSTP(ctx, h, bridge.Snapshot, bridge.Changed)
//	})
//
// on an EPON blade, blades/epon's EPONFeed (its OLTs' table, their alarms as events); on the mgmt blade:
//
//	f := statefeed.NewFeed(statefeed.Options{})
//	f.OnEvent(func(e statefeed.Event) { ... traps ... })
//	f.Attach(h)
//	f.Bridge()      // the active switch blade's snapshot
//	f.PONs()        // every EPON blade's PON ports and ONUs
package statefeed
