package statefeed

import (
	"slices"
	"sync"
	"time"

	"github.com/cgoa/cgoa/ha"
	"github.com/cgoa/cgoa/ha/transport"
	"github.com/cgoa/cgoa/stp"
)

// Options configure a Feed.
type Options struct {
	// Now is the receiver's clock (tests inject one); nil is time.Now.
	Now func() time.Time
	// TTL is how long a publisher's table is served without a refresh (default 5 s:
	// publishers refresh every second, so a table survives lost frames but not a blade
	// that is gone).
	TTL time.Duration
}

// Counters are the feed's receive statistics.
type Counters struct {
	Frames       uint64 `json:"frames"`
	Publications uint64 `json:"publications"` // tables completed and decoded
	Events       uint64 `json:"events"`
	BadFrames    uint64 `json:"bad_frames"` // payloads that fail Decode
	BadBodies    uint64 `json:"bad_bodies"` // complete publications or events that fail to decode
	Abandoned    uint64 `json:"abandoned"`  // publications left incomplete (a part lost)
}

type asmKey struct {
	from uint8
	kind Kind
}

type assembly struct {
	gen   uint32
	got   int
	parts [][]byte
}

type stpEntry struct {
	st   STPState
	at   time.Time
	slot uint8
}

type eponEntry struct {
	st EPONState
	at time.Time
}

// Feed is the mgmt blade's receiving end: the latest table of every publisher and the
// events, for the MIB modules and the notifications. Safe for concurrent use.
type Feed struct {
	opts Options

	mu    sync.Mutex
	asm   map[asmKey]*assembly
	done  map[asmKey]uint32 // the generation last completed
	stp   map[uint8]stpEntry
	epon  map[uint8]eponEntry
	hooks []func(Event)
	cnt   Counters
}

// NewFeed makes an empty feed.
func NewFeed(opts Options) *Feed {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.TTL <= 0 {
		opts.TTL = 5 * time.Second
	}
	return &Feed{opts: opts, asm: map[asmKey]*assembly{}, done: map[asmKey]uint32{}, stp: map[uint8]stpEntry{}, epon: map[uint8]eponEntry{}}
}

// Attach receives the feed's frames from the HA core.
func (f *Feed) Attach(h *ha.Blade) error {
	return h.Handle(FrameType, func(fr transport.Frame) { f.Receive(fr.From, fr.Payload) })
}

// OnEvent adds a hook every event is passed to, with From set. Hooks run on the receiving
// goroutine (the HA transport's, with the HA core's lock held): they must not block.
func (f *Feed) OnEvent(h func(Event)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hooks = append(f.hooks, h)
}

// Counters returns the receive statistics.
func (f *Feed) Counters() Counters {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cnt
}

// Receive takes one frame payload from slot from. It copies what it keeps; bad input is
// counted and dropped.
func (f *Feed) Receive(from uint8, payload []byte) {
	f.mu.Lock()
	f.cnt.Frames++
	p, err := Decode(payload)
	if err != nil {
		f.cnt.BadFrames++
		f.mu.Unlock()
		return
	}
	if p.Kind == KindSTPEvent || p.Kind == KindEPONEvent {
		e, err := DecodeEvent(p.Data)
		ok := err == nil && (p.Kind == KindSTPEvent) == (e.Kind == NewRoot || e.Kind == TopologyChange)
		if !ok {
			f.cnt.BadBodies++
			f.mu.Unlock()
			return
		}
		f.cnt.Events++
		e.From = from
		hooks := f.hooks
		f.mu.Unlock()
		for _, h := range hooks {
			h(e)
		}
		return
	}
	defer f.mu.Unlock()
	k := asmKey{from, p.Kind}
	if g, ok := f.done[k]; ok && g == p.Generation {
		return // a late duplicate of a completed publication
	}
	a := f.asm[k]
	if a == nil || a.gen != p.Generation || len(a.parts) != int(p.Count) {
		if a != nil && a.got > 0 {
			f.cnt.Abandoned++
		}
		a = &assembly{gen: p.Generation, parts: make([][]byte, p.Count)}
		f.asm[k] = a
	}
	if a.parts[p.Index] != nil {
		return // a duplicate
	}
	a.parts[p.Index] = append([]byte{}, p.Data...)
	a.got++
	if a.got < len(a.parts) {
		return
	}
	delete(f.asm, k)
	f.done[k] = p.Generation
	body := slices.Concat(a.parts...)
	now := f.opts.Now()
	switch p.Kind {
	case KindSTP:
		st, err := DecodeSTP(body)
		if err != nil {
			f.cnt.BadBodies++
			return
		}
		f.stp[from] = stpEntry{st: st, at: now, slot: from}
	case KindEPON:
		st, err := DecodeEPON(body)
		if err != nil {
			f.cnt.BadBodies++
			return
		}
		f.epon[from] = eponEntry{st: st, at: now}
	}
	f.cnt.Publications++
}

// Bridge returns the bridge BRIDGE-MIB serves: the snapshot of the switch blade that says
// it is active (else the freshest one), with dot1dStpTimeSinceTopologyChange advanced by the
// time since it was published; false while no fresh snapshot is held.
func (f *Feed) Bridge() (stp.Snapshot, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.opts.Now()
	var best *stpEntry
	for _, e := range f.stp {
		if now.Sub(e.at) > f.opts.TTL {
			continue
		}
		switch {
		case best == nil,
			e.st.Active && !best.st.Active,
			e.st.Active == best.st.Active && (e.at.After(best.at) || (e.at.Equal(best.at) && e.slot < best.slot)):
			e := e
			best = &e
		}
	}
	if best == nil {
		return stp.Snapshot{}, false
	}
	s := best.st.Snapshot
	s.Ports = slices.Clone(s.Ports)
	if s.TopologyChanges > 0 {
		s.SinceTopologyChange += max(now.Sub(best.at), 0)
	}
	return s, true
}

// BladePONs are one EPON blade's PON ports.
type BladePONs struct {
	Slot uint8
	PONs []PON
}

// PONs returns every EPON blade's fresh table, by slot.
func (f *Feed) PONs() []BladePONs {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.opts.Now()
	out := []BladePONs{}
	for slot, e := range f.epon {
		if now.Sub(e.at) > f.opts.TTL {
			continue
		}
		out = append(out, BladePONs{Slot: slot, PONs: e.st.PONs})
	}
	slices.SortFunc(out, func(a, b BladePONs) int { return int(a.Slot) - int(b.Slot) })
	return out
}
