package quorum

import (
	"cmp"
	"slices"
	"sort"
	"time"
)

// Request asks the voters for (or to renew) the lease on Key.
type Request struct {
	Key     string
	From    uint8
	Inc     uint64 // requester's incarnation
	Seq     uint64 // requester's request number, increasing within Inc
	Holding bool   // the requester holds the lease right now (a renewal)
	// InQuorum: the requester is two-way connected to a quorum of voters
	// (it holds its membership lease), so it can win; preference policies
	// use it to skip candidates that cannot.
	InQuorum bool
}

// Reply is a voter's answer to one Request.
type Reply struct {
	Key     string
	From    uint8 // the voter
	To      uint8
	Inc     uint64
	Seq     uint64
	Granted bool
}

// Release gives a lease back early (switchover, lock, fault). The holder
// stops counting on the lease before it sends this.
type Release struct {
	Key  string
	From uint8
	Inc  uint64
	UpTo uint64 // grants for requests up to this Seq are released
}

type grant struct {
	holder uint8
	inc    uint64
	seq    uint64
	until  time.Duration
}

// Lessor is the voter side of the lease protocol: at most one holder per
// key at a time, each grant valid for Timing.Lease on this voter's clock.
// A Lessor that just started grants nothing for one Lease (it may have
// forgotten grants it made in an earlier life).
type Lessor struct {
	self       uint8
	timing     Timing
	quarantine time.Duration
	grants     map[string]grant
	// pending holds, per key, the latest preferred request refused only
	// because another holder's promise was still running; Due hands it
	// back when that promise ends, so a successor need not wait for its
	// next request (failover is one lease, not lease + interval).
	pending map[string]pendingReq
}

type pendingReq struct {
	r  Request
	at time.Duration
}

// NewLessor returns the voter state of slot self, started at now.
func NewLessor(self uint8, t Timing, now time.Duration) *Lessor {
	return &Lessor{self: self, timing: t, quarantine: now + t.Lease, grants: map[string]grant{}, pending: map[string]pendingReq{}}
}

// Request decides a request at now. preferred says whether the requester is
// the one this voter would choose for the key right now (the succession
// policy: the first eligible unit in the key's succession order among those
// asking). A current holder's renewal is granted whatever the preference,
// so a working active is never pre-empted; a requester that does not hold
// the lease is granted only if preferred, which breaks split votes.
func (l *Lessor) Request(now time.Duration, r Request, preferred bool) Reply {
	rep := Reply{Key: r.Key, From: l.self, To: r.From, Inc: r.Inc, Seq: r.Seq}
	if now < l.quarantine {
		return rep
	}
	g, ok := l.grants[r.Key]
	if ok && now < g.until {
		if g.holder != r.From || g.inc != r.Inc {
			if preferred {
				l.pending[r.Key] = pendingReq{r, now}
			}
			return rep
		}
		if !r.Holding && !preferred {
			return rep
		}
		if r.Seq < g.seq {
			// An older request overtaken by a newer one: the newer grant
			// already covers it, and re-granting would shorten nothing.
			return rep
		}
	} else if !preferred {
		return rep
	}
	l.grants[r.Key] = grant{holder: r.From, inc: r.Inc, seq: r.Seq, until: now + l.timing.Lease}
	delete(l.pending, r.Key)
	rep.Granted = true
	return rep
}

// NextDue is the earliest instant a pending request may become
// grantable (the end of the promise it waits for).
func (l *Lessor) NextDue() (time.Duration, bool) {
	var next time.Duration
	ok := false
	for k := range l.pending {
		if g, has := l.grants[k]; has && (!ok || g.until < next) {
			next, ok = g.until, true
		}
	}
	return next, ok
}

// Due returns, and forgets, the pending requests whose blocking promise
// has ended by now and that were made within maxAge. The caller decides
// each again with Request (preference may have changed); granting a
// request late is safe: the holder counts its lease from when it sent the
// request, which is earlier still.
func (l *Lessor) Due(now, maxAge time.Duration) []Request {
	var due []Request
	for k, p := range l.pending {
		g, has := l.grants[k]
		if has && now < g.until {
			continue
		}
		delete(l.pending, k)
		if now-p.at <= maxAge {
			due = append(due, p.r)
		}
	}
	sort.Slice(due, func(i, j int) bool { return due[i].Key < due[j].Key })
	return due
}

// Release ends the grant on r.Key if it is r.From's and covers no request
// newer than r.UpTo (a late release must not cancel a later grant).
func (l *Lessor) Release(r Release) {
	g, ok := l.grants[r.Key]
	if ok && g.holder == r.From && g.inc == r.Inc && g.seq <= r.UpTo {
		delete(l.grants, r.Key)
	}
}

// Revoke ends every promise of this voter to holder at once and drops its
// pending requests. It is for a holder that is fenced: every channel it had
// to the shelf is reported without carrier by the channel's other end, so
// it can neither act on its keys nor be heard, and it gives its leases up by
// itself at the same physical event (see the package doc). It returns the
// keys whose promise ended.
func (l *Lessor) Revoke(holder uint8) []string {
	var keys []string
	for k, g := range l.grants {
		if g.holder == holder {
			delete(l.grants, k)
			keys = append(keys, k)
		}
	}
	for k, p := range l.pending {
		if p.r.From == holder {
			delete(l.pending, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// Holder returns the slot this voter has promised key to at now, or 0.
func (l *Lessor) Holder(key string, now time.Duration) uint8 {
	if g, ok := l.grants[key]; ok && now < g.until {
		return g.holder
	}
	return 0
}

// HeldBy counts the keys among keys this voter has promised to slot at now.
func (l *Lessor) HeldBy(slot uint8, now time.Duration, keys []string) int {
	n := 0
	for _, k := range keys {
		if l.Holder(k, now) == slot {
			n++
		}
	}
	return n
}

type sent struct {
	seq uint64
	at  time.Duration
}

type holding struct {
	sent   []sent                  // recent requests, oldest first
	votes  map[uint8]time.Duration // voter -> send time of the latest request it granted
	expiry time.Duration
}

const keepSent = 32

// Lessee is the holder side of the lease protocol for one member
// incarnation. It holds the lease on a key while a quorum of voters have
// granted requests whose send time plus Timing.HolderLease lies ahead.
type Lessee struct {
	voters Voters
	timing Timing
	self   uint8
	inc    uint64
	seq    uint64
	keys   map[string]*holding
}

// NewLessee returns the holder state of slot in incarnation inc.
func NewLessee(v Voters, t Timing, self uint8, inc uint64) *Lessee {
	return &Lessee{voters: v, timing: t, self: self, inc: inc, keys: map[string]*holding{}}
}

// Request makes the next request for key, sent at now.
func (l *Lessee) Request(now time.Duration, key string) Request {
	h := l.keys[key]
	if h == nil {
		h = &holding{votes: map[uint8]time.Duration{}}
		l.keys[key] = h
	}
	l.seq++
	h.sent = append(h.sent, sent{l.seq, now})
	if len(h.sent) > keepSent {
		h.sent = h.sent[len(h.sent)-keepSent:]
	}
	return Request{Key: key, From: l.self, Inc: l.inc, Seq: l.seq, Holding: now < h.expiry}
}

// Reply takes a voter's answer. It reports whether the lease on the key is
// now held (or still held) at now.
func (l *Lessee) Reply(now time.Duration, r Reply) bool {
	h := l.keys[r.Key]
	if h == nil || r.To != l.self || r.Inc != l.inc || !r.Granted || !l.voters.Has(r.From) {
		return h != nil && now < h.expiry
	}
	i := slices.IndexFunc(h.sent, func(s sent) bool { return s.seq == r.Seq })
	if i < 0 {
		return now < h.expiry
	}
	if at := h.sent[i].at; at > h.votes[r.From] || h.votes[r.From] == 0 {
		h.votes[r.From] = at
	}
	h.expiry = l.expiry(h)
	return now < h.expiry
}

// expiry is the latest instant until which some quorum of votes is valid:
// the max over quorums of the min of their votes' ends. Adding voters in
// order of decreasing end, the first prefix that is a quorum gives it,
// because quorums are closed under adding voters.
func (l *Lessee) expiry(h *holding) time.Duration {
	type v struct {
		slot uint8
		end  time.Duration
	}
	var buf [16]v
	vs := buf[:0]
	for s, at := range h.votes {
		vs = append(vs, v{s, at + l.timing.HolderLease()})
	}
	slices.SortFunc(vs, func(a, b v) int {
		if a.end != b.end {
			return cmp.Compare(b.end, a.end)
		}
		return cmp.Compare(a.slot, b.slot)
	})
	for i, x := range vs {
		prefix := vs[:i+1]
		if l.voters.IsQuorum(func(s uint8) bool {
			return slices.ContainsFunc(prefix, func(p v) bool { return p.slot == s })
		}) {
			return x.end
		}
	}
	return 0
}

// Holds reports whether the lease on key is held at now.
func (l *Lessee) Holds(key string, now time.Duration) bool {
	h := l.keys[key]
	return h != nil && now < h.expiry
}

// Expiry is when the lease on key ends (0 if never held).
func (l *Lessee) Expiry(key string) time.Duration {
	if h := l.keys[key]; h != nil {
		return h.expiry
	}
	return 0
}

// Release forgets key (the caller has already stopped acting on it) and
// returns the message that tells the voters.
func (l *Lessee) Release(key string) Release {
	delete(l.keys, key)
	return Release{Key: key, From: l.self, Inc: l.inc, UpTo: l.seq}
}

// Keys lists the keys being requested or held, sorted.
func (l *Lessee) Keys() []string {
	ks := make([]string, 0, len(l.keys))
	for k := range l.keys {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
