package clm

import (
	"fmt"
	"slices"
	"time"
)

// Timers are the heartbeat timers. Detection time is Interval × Misses:
// e.g. 10 ms × 3 in process mode, 50 ms × 4 under TCG emulation.
type Timers struct {
	Interval time.Duration
	Misses   int
}

// Detection is how long a silent member stays in the view.
func (t Timers) Detection() time.Duration { return t.Interval * time.Duration(t.Misses) }

// Validate checks the timers.
func (t Timers) Validate() error {
	if t.Interval <= 0 || t.Misses < 1 {
		return fmt.Errorf("clm: timers %v × %d, want interval > 0 and misses >= 1", t.Interval, t.Misses)
	}
	return nil
}

// Heartbeat is the membership part of a heartbeat frame.
type Heartbeat struct {
	From uint8
	Inc  uint64 // sender's incarnation (its transport epoch)
	Hear []Peer // members the sender currently hears, with their incarnations
}

// Peer names one member incarnation.
type Peer struct {
	Slot uint8
	Inc  uint64
}

// ChangeKind says how a member's membership changed.
type ChangeKind int

// Change kinds.
const (
	Joined    ChangeKind = iota + 1 // first heartbeat of an incarnation
	Left                            // graceful leave
	Failed                          // silent for the detection time
	Restarted                       // a new incarnation replaced a live one
)

func (k ChangeKind) String() string {
	switch k {
	case Joined:
		return "joined"
	case Left:
		return "left"
	case Failed:
		return "failed"
	case Restarted:
		return "restarted"
	}
	return fmt.Sprintf("ChangeKind(%d)", int(k))
}

// Change is one membership change.
type Change struct {
	Slot uint8
	Inc  uint64
	Kind ChangeKind
	At   time.Duration
}

type peer struct {
	inc       uint64
	up        bool
	lastHeard time.Duration
	hearsMe   bool
}

// Membership is one member's view of the shelf membership, driven by
// received heartbeats and the time passed in (it never reads a clock).
// It is not safe for concurrent use.
type Membership struct {
	self    uint8
	inc     uint64
	slots   []uint8
	timers  Timers
	peers   map[uint8]*peer
	viewSeq uint64
}

// New returns the membership of slot self (incarnation inc) among the
// configured slots. Heartbeats from slots not configured are ignored.
func New(self uint8, inc uint64, slots []uint8, t Timers) (*Membership, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	if !slices.Contains(slots, self) {
		return nil, fmt.Errorf("clm: own slot %d not among configured slots %v", self, slots)
	}
	m := &Membership{self: self, inc: inc, slots: slices.Sorted(slices.Values(slots)), timers: t, peers: map[uint8]*peer{}}
	for _, s := range m.slots {
		if s != self {
			m.peers[s] = &peer{}
		}
	}
	return m, nil
}

// Timers returns the configured timers.
func (m *Membership) Timers() Timers { return m.timers }

// Heartbeat is what this member sends every Interval.
func (m *Membership) Heartbeat() Heartbeat {
	hb := Heartbeat{From: m.self, Inc: m.inc}
	for _, s := range m.slots {
		if p := m.peers[s]; p != nil && p.up {
			hb.Hear = append(hb.Hear, Peer{s, p.inc})
		}
	}
	return hb
}

// Receive takes a heartbeat received at now and returns the changes.
func (m *Membership) Receive(now time.Duration, hb Heartbeat) []Change {
	p := m.peers[hb.From]
	if p == nil || hb.Inc < p.inc {
		return nil // not a configured peer, or an older life of it
	}
	var ch []Change
	if hb.Inc > p.inc && p.up {
		ch = append(ch, Change{hb.From, p.inc, Restarted, now})
		p.up = false
	}
	if !p.up {
		ch = append(ch, Change{hb.From, hb.Inc, Joined, now})
	}
	p.inc, p.up, p.lastHeard = hb.Inc, true, now
	p.hearsMe = slices.Contains(hb.Hear, Peer{m.self, m.inc})
	if len(ch) > 0 {
		m.viewSeq++
	}
	return ch
}

// Leave takes a graceful leave of slot (incarnation inc).
func (m *Membership) Leave(now time.Duration, slot uint8, inc uint64) []Change {
	p := m.peers[slot]
	if p == nil || !p.up || p.inc != inc {
		return nil
	}
	p.up, p.hearsMe = false, false
	m.viewSeq++
	return []Change{{slot, inc, Left, now}}
}

// Fence declares slot failed at once: the hardware says it can no longer
// be heard (no carrier at the far end of any of its channels). It joins
// again with its next heartbeat.
func (m *Membership) Fence(now time.Duration, slot uint8) []Change {
	p := m.peers[slot]
	if p == nil || !p.up {
		return nil
	}
	p.up, p.hearsMe = false, false
	m.viewSeq++
	return []Change{{slot, p.inc, Failed, now}}
}

// Tick expires members silent for the detection time.
func (m *Membership) Tick(now time.Duration) []Change {
	var ch []Change
	for _, s := range m.slots {
		p := m.peers[s]
		if p != nil && p.up && now-p.lastHeard >= m.timers.Detection() {
			p.up, p.hearsMe = false, false
			ch = append(ch, Change{s, p.inc, Failed, now})
		}
	}
	if len(ch) > 0 {
		m.viewSeq++
	}
	return ch
}

// NextDeadline is the earliest instant a live member may expire.
func (m *Membership) NextDeadline() (time.Duration, bool) {
	var next time.Duration
	ok := false
	for _, p := range m.peers {
		if p.up {
			d := p.lastHeard + m.timers.Detection()
			if !ok || d < next {
				next, ok = d, true
			}
		}
	}
	return next, ok
}

// Up reports whether slot is in the view (self always is).
func (m *Membership) Up(slot uint8) bool {
	if slot == m.self {
		return true
	}
	p := m.peers[slot]
	return p != nil && p.up
}

// Connected reports whether slot is in the view and, by its last
// heartbeat, hears this member: two-way contact. One-way loss makes a
// member up but not connected.
func (m *Membership) Connected(slot uint8) bool {
	if slot == m.self {
		return true
	}
	p := m.peers[slot]
	return p != nil && p.up && p.hearsMe
}

// Inc returns the incarnation of slot last heard (own incarnation for self).
func (m *Membership) Inc(slot uint8) uint64 {
	if slot == m.self {
		return m.inc
	}
	if p := m.peers[slot]; p != nil {
		return p.inc
	}
	return 0
}

// Member is one row of a View.
type Member struct {
	Slot      uint8  `json:"slot"`
	Inc       uint64 `json:"incarnation"`
	Up        bool   `json:"up"`
	Connected bool   `json:"connected"`
	// SinceHeard is how long ago the last heartbeat arrived.
	SinceHeard time.Duration `json:"since_heard_ns"`
}

// View is a snapshot of the membership.
type View struct {
	Seq     uint64   `json:"seq"` // increases on every change
	Self    uint8    `json:"self"`
	Members []Member `json:"members"`
}

// View returns the membership view at now.
func (m *Membership) View(now time.Duration) View {
	v := View{Seq: m.viewSeq, Self: m.self}
	for _, s := range m.slots {
		if s == m.self {
			v.Members = append(v.Members, Member{Slot: s, Inc: m.inc, Up: true, Connected: true})
			continue
		}
		p := m.peers[s]
		mem := Member{Slot: s, Inc: p.inc, Up: p.up, Connected: p.up && p.hearsMe}
		if p.inc != 0 {
			mem.SinceHeard = now - p.lastHeard
		}
		v.Members = append(v.Members, mem)
	}
	return v
}
