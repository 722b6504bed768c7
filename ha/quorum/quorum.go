package quorum

import (
	"fmt"
	"slices"
	"time"
)

// Voters is the configured voting membership of a shelf: every configured
// blade slot, hubs included. The quorum is a strict majority of them, or
// exactly half of them if that half contains the tie-breaker (the lowest
// configured slot). Any two quorums therefore share at least one voter:
// two strict majorities overlap by counting, a majority and a half-with-
// tie-breaker overlap by counting (their sizes add up to more than n), and
// two halves-with-tie-breaker share the tie-breaker. That intersection is
// all the lease argument needs.
//
// Consequence for small shelves: with two voters, the tie-breaker alone is
// a quorum and the other slot alone is not, so losing the tie-breaker
// blade stops the other from taking over. That is the price of never
// having two actives; real shelves avoid it because the hubs vote too.
type Voters struct {
	slots []uint8 // sorted
}

// NewVoters returns the voter set; slots must be non-zero and distinct.
func NewVoters(slots []uint8) (Voters, error) {
	s := slices.Clone(slots)
	slices.Sort(s)
	for i, v := range s {
		if v == 0 || v == 0xff {
			return Voters{}, fmt.Errorf("quorum: slot %d is reserved", v)
		}
		if i > 0 && s[i-1] == v {
			return Voters{}, fmt.Errorf("quorum: slot %d listed twice", v)
		}
	}
	if len(s) == 0 {
		return Voters{}, fmt.Errorf("quorum: no voters")
	}
	return Voters{slots: s}, nil
}

// Slots returns the voters in ascending order.
func (v Voters) Slots() []uint8 { return slices.Clone(v.slots) }

// Len is the number of voters.
func (v Voters) Len() int { return len(v.slots) }

// Has reports whether slot votes.
func (v Voters) Has(slot uint8) bool {
	_, ok := slices.BinarySearch(v.slots, slot)
	return ok
}

// TieBreaker is the voter whose presence makes exactly half a quorum.
func (v Voters) TieBreaker() uint8 { return v.slots[0] }

// IsQuorum reports whether the voters for which in returns true form a
// quorum. Slots that are not voters are ignored.
func (v Voters) IsQuorum(in func(slot uint8) bool) bool {
	n := 0
	for _, s := range v.slots {
		if in(s) {
			n++
		}
	}
	return 2*n > len(v.slots) || (2*n == len(v.slots) && in(v.slots[0]))
}

// Timing is the lease timing of a shelf.
type Timing struct {
	// Lease is how long a voter's grant lasts, measured on the voter's
	// clock from when it grants. It is also the longest a holder cut off
	// from the quorum keeps its active assignment.
	Lease time.Duration
	// Drift bounds every member's clock rate: a local clock advances
	// between (1-Drift) and (1+Drift) times real time. 1e-3 covers crystal
	// clocks and NTP slewing with a wide margin.
	Drift float64
}

// HolderLease is how long a holder may count on a grant, measured on its
// own clock from when it sent the request: Lease·(1-Drift)/(1+Drift). In
// real time that is at most Lease/(1+Drift) after the request left, which
// is no later than the voter's promise ends (at least Lease/(1+Drift) real
// time after the voter received the request).
func (t Timing) HolderLease() time.Duration {
	return time.Duration(float64(t.Lease) * (1 - t.Drift) / (1 + t.Drift))
}

// Validate checks the timing.
func (t Timing) Validate() error {
	if t.Lease <= 0 {
		return fmt.Errorf("quorum: lease %v, want > 0", t.Lease)
	}
	if t.Drift < 0 || t.Drift >= 0.5 {
		return fmt.Errorf("quorum: drift %v, want in [0, 0.5)", t.Drift)
	}
	return nil
}
