// Package quorum decides who may hold an active assignment: the quorum rule
// over the shelf's voters and a lease protocol that lets a standby take
// over without waiting for any leader election.
//
// # Quorum
//
// Every configured slot votes (hubs included: every blade takes part in
// membership). A quorum is a strict majority, or exactly half if the half
// contains the tie-breaker, the lowest configured slot. Any two quorums
// intersect (tested exhaustively up to 7 voters in TestQuorumsIntersect).
// With two voters this means the tie-breaker can run alone and the other
// slot cannot.
//
// # Leases
//
// Each exclusive assignment has a key (a 2N service group, an N+M service
// instance). A member that wants the key sends a Request to every voter
// once per heartbeat interval (and at once when it sees reason to). A voter
// (Lessor) promises the key to at most one holder (slot and incarnation) at
// a time, for Timing.Lease on its own clock from when it grants. The holder
// (Lessee) remembers when it sent each request; a grant of request r from
// voter v is a vote valid until send(r)+HolderLease on the holder's clock.
// The holder holds the lease while the voters with valid votes form a
// quorum; the lease ends at the latest instant some quorum of votes is
// still valid. Clocks are only assumed to run at a rate within
// [1-Drift, 1+Drift] of real time; they need not agree on the time.
//
// Safety (no two holders of a key at any real instant). Take a vote of v
// for holder A from request r: it starts when A receives the grant and ends,
// in real time, at most HolderLease/(1-Drift) = Lease/(1+Drift) after r was
// sent. v granted r after r was sent and keeps its promise for Lease on its
// clock, at least Lease/(1+Drift) real time; so every vote lies inside the
// real-time interval of v's promise to A. A voter's promises to different
// holders never overlap in real time, because it grants another holder only
//
//   - after its promise has expired on its own clock, or
//   - after A released the key with a Release covering every request the
//     promise was for (A stops counting on its votes before it sends the
//     Release, and a late Release never cancels a newer grant: UpTo), or
//   - after v restarted, and then only after a quarantine of one Lease on
//     the new clock, which outlasts any vote based on its forgotten promise,
//     or
//   - after A was fenced (Lessor.Revoke): the far end of every channel A
//     has to the shelf reports it without carrier. This case rests on the
//     hardware, not on clocks, and weakens the claim to "no two holders that
//     can be heard": A's votes may still be valid, but A cannot reach or be
//     reached by anyone, and A itself gives up every key the moment it reads
//     its own channels' carrier loss, the same physical event (package amf,
//     Node.SetLinks). What is not covered: a blade cut off at every channel
//     that stalls before it reads its carrier loss and gets a channel back
//     before its votes expire. It reads the queued loss before any later
//     carrier event, but another of its threads may act as holder in between;
//     its peers and the hosts behind them moved to the new holder on the
//     fence, so at most a stray frame from the old holder can pass.
//
// A voter may also grant a request late (Lessor.Due: a successor's
// request refused while the old promise ran is granted the moment it
// ends); the vote still counts from the request's send time, earlier than
// the grant, so it still lies inside the new promise.
//
// If A and B both held the key at instant t, their sets of voters with
// valid votes would both be quorums, hence share a voter v with valid votes
// for A and for B at t, hence overlapping promises of v to A and B:
// impossible. The argument needs no message ordering, no delivery bounds
// and no agreement on time, only the rate bound; messages may be lost,
// duplicated (the transport also drops copies), delayed or reordered.
//
// Assumption: a member's clock keeps running while the member is stopped
// (true for a stopped process and CLOCK_MONOTONIC; a QEMU VM paused with
// `stop` has its guest clock paused too, so a paused VM may overstay its
// lease by the pause length: the shelf watchdog must reset such a blade).
//
// Liveness and timing. A minority member can renew no votes, so it loses
// its lease at most HolderLease after its last request that a quorum
// granted, i.e. within one Lease (the detection time). A voter whose
// holder stopped renewing grants the next preferred requester at most
// Lease after its last grant, at once if that requester already asked
// (Due), else at its next request (every heartbeat interval): failover
// takes one Lease plus network delay after the last renewal, at most one
// interval more, with no election on the path. Preference (the succession
// order) is the caller's policy: the voter grants a free key only to the
// requester it prefers, renews a holder whatever the preference (no
// pre-emption) and renews a non-holding requester only while it is still
// preferred, which resolves split votes within one Lease.
package quorum
