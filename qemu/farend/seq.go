package farend

import (
	"sync"
	"time"

	"github.com/cgoa/cgoa/blades/epon/onu"
)

// Sequences counts numbered upstream frames (blades/epon/onu.NumberedFrame, as the ONU
// emulators send them) where they come out of the shelf, per source (the frame's source MAC
// and stream): received, lost (numbers skipped), duplicates (a number seen again) and late (a
// number that fills an earlier gap: it was counted lost and is taken back), and the arrival
// time of every new frame, so that the longest interruption of the upstream traffic in a
// window can be read (Gap). A source's first frame starts its count wherever its numbering
// stands. Safe for concurrent use.
//
//	seq := farend.NewSequences()
//	up, _ := farend.Listen("uplink-s1", local, remote, func(f []byte) { seq.Add(f, time.Now()) })
type Sequences struct {
	mu       sync.Mutex
	streams  map[seqKey]*seqStream
	arrivals []time.Time
	c        SeqCounts
}

// SeqCounts are the totals over every source.
type SeqCounts struct {
	Sources    int    `json:"sources"`
	Received   uint64 `json:"received"`   // distinct numbered frames
	Lost       uint64 `json:"lost"`       // numbers skipped and not seen since
	Duplicates uint64 `json:"duplicates"` // frames whose number had been seen
	Late       uint64 `json:"late"`       // frames that filled a gap (out of order)
	Other      uint64 `json:"other"`      // frames that are not numbered test frames
}

type seqKey struct {
	src    [6]byte
	stream uint32
}

type seqStream struct {
	next    uint64
	missing map[uint64]bool // skipped numbers, up to maxMissing per source
}

// maxMissing bounds the skipped numbers remembered per source (a late one beyond it counts
// as a duplicate).
const maxMissing = 1 << 16

// NewSequences returns an empty counter.
func NewSequences() *Sequences { return &Sequences{streams: map[seqKey]*seqStream{}} }

// Add counts one frame that arrived at at; it reports whether it was a numbered test frame.
func (s *Sequences) Add(frame []byte, at time.Time) bool {
	stream, seq, ok := onu.ParseNumbered(frame)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ok {
		s.c.Other++
		return false
	}
	k := seqKey{src: [6]byte(frame[6:12]), stream: stream}
	st := s.streams[k]
	switch {
	case st == nil:
		s.streams[k] = &seqStream{next: seq + 1, missing: map[uint64]bool{}}
		s.c.Sources++
	case seq >= st.next:
		s.c.Lost += seq - st.next
		for n := st.next; n < seq && len(st.missing) < maxMissing; n++ {
			st.missing[n] = true
		}
		st.next = seq + 1
	case st.missing[seq]:
		delete(st.missing, seq)
		s.c.Lost--
		s.c.Late++
	default:
		s.c.Duplicates++
		return true
	}
	s.c.Received++
	s.arrivals = append(s.arrivals, at)
	return true
}

// Counts returns the totals so far.
func (s *Sequences) Counts() SeqCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c
}

// Last is the arrival of the last new frame (zero before any).
func (s *Sequences) Last() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.arrivals) == 0 {
		return time.Time{}
	}
	return s.arrivals[len(s.arrivals)-1]
}

// Gap is the longest interval in [since, until] without a new frame from any source,
// counting the stretches from since to the first arrival and from the last to until.
func (s *Sequences) Gap(since, until time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var g time.Duration
	prev := since
	for _, t := range s.arrivals {
		if t.Before(since) {
			continue
		}
		if t.After(until) {
			break
		}
		g = max(g, t.Sub(prev))
		prev = t
	}
	return max(g, until.Sub(prev))
}
