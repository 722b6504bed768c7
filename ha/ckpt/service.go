package ckpt

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unsafe"
)

// Options configure a Service.
type Options struct {
	// Self is this blade's slot.
	Self uint8
	// Ring is the replication stream's budget in bytes (default 4 MiB).
	Ring int
	// MaxFrame is the largest message (default MaxFrame, the HA
	// transport's payload limit).
	MaxFrame int
	// Window is how many frames may be in flight to one replica (default 64,
	// the HA transport's replay window).
	Window int
	// RTO is the retransmission timeout (default 20 ms).
	RTO time.Duration
	// KeepAlive is the idle poll interval to each replica (default 100 ms).
	KeepAlive time.Duration
	// AckEvery makes a replica ack every so many frames (default 16).
	AckEvery int
	// Reliable says the path delivers in order and loses only what it
	// drops itself, the replica nacking at the gap (a Link): the writer
	// goes back only on a nack, not on the reply to a poll (which over a
	// slow path only says the frames in flight have not arrived yet).
	Reliable bool
	// Runs makes the writer send the ring's records in runs (KindRun:
	// consecutive records whole in a frame, as they lie in the ring) and
	// not one frame per record: with Offer a run is one piece of the
	// ring, and no header is built per record. Every replica takes
	// both. Records larger than a frame are still sent in fragments.
	Runs bool
	// SyncLease is how long a replica's claim to be in sync lasts after
	// the ack the writer last answered with "in sync" (default 1 s; Track
	// sets it from the HA lease: syncLeaseFor). A writer that drops a replica from its
	// set keeps holding synchronous writes for it until that lease has run
	// out on the writer's side, so a replica that still believes itself in
	// sync (it was stopped, or cut off) never lacks an acknowledged
	// synchronous write. It must exceed the time from a writer's death to
	// the AMF noticing it, plus KeepAlive, or a standby is no longer Ready
	// when it is promoted (the gate then opens anyway: no live writer).
	SyncLease time.Duration
	// Send sends one message to a slot. It must not call back into the
	// Service.
	Send func(to uint8, msg []byte)
	// Room, if set, is the largest message Send takes for slot to right
	// now; the Service does not send larger ones (it sends them later,
	// at Pump or Tick). A Link's Room: nothing is ever dropped for lack
	// of queue.
	Room func(to uint8) int
	// Offer, if set, sends a stream frame of the ring record at position
	// pos (head, then data straight from the ring: the path may keep
	// referring to data until Reclaim) if it has room for it now, and
	// reports whether it did; if not, the Service sends it later (Pump,
	// Tick). A Link's Offer.
	Offer func(to uint8, head, data []byte, pos uint64) bool
	// Reclaim, if set, is called before the ring reuses the bytes of
	// the records before position before: a path that still refers to
	// such data (Offer) must copy it out or be done with it before
	// returning. A Link's Reclaim.
	Reclaim func(before uint64)
}

// MaxFrame is the default message size limit: the HA transport's payload
// limit (transport.MaxPayload).
const MaxFrame = 1430

// DefaultRing is the default ring budget.
const DefaultRing = 4 << 20

// Errors.
var (
	ErrNotActive    = errors.New("ckpt: not the active writer")
	ErrNoCheckpoint = errors.New("ckpt: no such checkpoint")
	ErrNoSection    = errors.New("ckpt: no such section")
	ErrNotOpen      = errors.New("ckpt: checkpoint not open")
)

// Service is one blade's checkpoint service for one replication domain
// (typically a service group): the active unit's blade is the writer, the
// blades of the other units are replicas. It is a pure state machine: no
// goroutines, no clock (every call takes now), no I/O but Options.Send.
// Not safe for concurrent use; Node serialises calls.
type Service struct {
	opt   Options
	ring  *ring
	ckpts map[string]*checkpoint

	active bool
	gen    uint64 // writer: own generation; replica: the lineage followed
	seq    uint64 // writer: last record; replica: last applied
	peers  map[uint8]*peer
	order  []uint8 // sorted replica slots
	list   []*peer // the peers in that order (the hot loops: no map walk)
	clock  time.Duration
	// writer: replicas dropped from the set while in sync, whose lease
	// has not run out: synchronous writes still wait for them.
	leaving []leaver

	// replica side
	rxN      uint64 // in-order frames taken from the writer's stream
	asm      *assembly
	asmStore assembly
	staging  map[string]*checkpoint
	// The checkpoint last looked up (lookup) and ckptsVer when it was;
	// ckptsVer counts the changes to ckpts (checkpoints added, dropped,
	// the map replaced).
	lastCkpt          *checkpoint
	lastVer, ckptsVer uint64
	stageSeq          uint64
	synced            bool // the writer's last message counted us in sync
	lease             time.Duration
	orphan            bool // no live writer: readiness frozen when it went
	ackNum            uint32
	ackTimes          [64]time.Duration // when acks ackNum-63..ackNum were sent
	writer            uint8             // slot the current lineage comes from
	nackN             uint64
	sinceAck          int
	free              [][]byte          // spare section buffers (bounded)
	names             map[string]string // interned checkpoint and section names
	// the two names intern returned last; recentNext is the slot the next
	// new one takes (the other was hit more recently)
	recentNames [2]string
	recentNext  int

	buf []byte
	c   Counters
	// runMarks: the marks of the run being sent (sendRun), kept once
	// it is sent.
	runMarks [maxRun / recHeader / markEvery]mark
	onEvict  func(*record)
	// onApply, if set (tests), sees every section value a replica takes
	// (stream record or snapshot section).
	onApply func(section string, data []byte)
}

// Counters count the service's traffic and faults.
type Counters struct {
	Records     uint64 `json:"records"`
	Frames      uint64 `json:"frames_sent"`
	Retransmits uint64 `json:"retransmits"`
	Polls       uint64 `json:"polls"` // writer: acks asked for (retransmission timer, keep-alive)
	Resyncs     uint64 `json:"resyncs"`
	Applied     uint64 `json:"applied"`
	Bad         uint64 `json:"bad_messages"`
	Stale       uint64 `json:"stale"`
	OutOfOrder  uint64 `json:"out_of_order"`
}

type checkpoint struct {
	name      string
	retention time.Duration
	openers   int
	idleSince time.Duration
	sections  map[string]*sectionData
	bytes     int
}

// sectionData holds a section's data; the map holds a pointer to it so
// that rewriting a section is one look-up and no store of its name.
type sectionData struct{ data []byte }

type assembly struct {
	op      Op
	flags   uint8
	seq     uint64
	ckpt    string
	section string
	total   int
	buf     []byte
	snap    bool
}

// cursor is a position in the stream sent to one replica.
type cursor struct {
	n    uint64 // stream frame index of the frame at this position
	snap bool   // in a snapshot (else in the ring)
	pos  uint64 // ring: record position
	item int    // snapshot: 0 begin, 1..len(items) items, len+1 end
	frag uint32
}

type snapItem struct {
	ckpt      string
	section   string
	create    bool
	retention time.Duration
	data      []byte
}

type snapshot struct {
	seq   uint64
	head  uint64 // ring position after the snapshot's sequence
	items []snapItem
	// inRing: the items whose data is a record in the ring, by the
	// record's offset in the ring's buffer; evicted copies such data
	// out before the ring reuses it.
	inRing map[uint64]int
}

// leaver is a replica dropped from the set while in sync.
type leaver struct {
	slot  uint8
	acked uint64
	until time.Duration
	peer  *peer // taken back as it was if the replica returns to the set
}

type peer struct {
	slot     uint8
	ackNum   uint32        // number of its last ack (echoed: the lease's anchor)
	grantAt  time.Duration // when that ack arrived
	known    bool          // its position is known (an ack of our generation)
	base     cursor
	next     cursor
	snap     *snapshot
	acked    uint64 // last record applied (our generation)
	ackN     uint64
	top      uint64 // highest frame index sent
	lastAck  time.Duration
	lastSent time.Duration
	lastPoll time.Duration
	joinSeq  uint64
	synced   bool
	full     bool // its path had no room: wait for Pump or Tick
	// marks: the cursor of every markEvery-th ring frame sent, by frame
	// index, so an ack moves base from the nearest mark instead of
	// decoding every frame it acknowledges (a 256 KiB ack is 256 1 KiB
	// records).
	marks [markSlots]mark
}

// A mark is the cursor of ring frame n (see peer.marks).
type mark struct {
	n    uint64
	pos  uint64
	frag uint32
}

const (
	markEvery = 16
	markSlots = 256 // 4096 frames: a Link's window
)

// markAt returns the latest mark at or before frame n (n in the ring
// stream sent since p.base), if one is kept.
func (p *peer) markAt(n uint64) (cursor, bool) {
	k := n / markEvery * markEvery
	if k <= p.base.n {
		return cursor{}, false
	}
	m := p.marks[k/markEvery%markSlots]
	if m.n != k {
		return cursor{}, false
	}
	return cursor{n: m.n, pos: m.pos, frag: m.frag}, true
}

// New returns a Service; it starts as a replica following nobody.
func New(opt Options) *Service {
	if opt.Ring <= 0 {
		opt.Ring = DefaultRing
	}
	if opt.MaxFrame <= 0 {
		opt.MaxFrame = MaxFrame
	}
	if opt.Window <= 0 {
		opt.Window = 64
	}
	if opt.RTO <= 0 {
		opt.RTO = 20 * time.Millisecond
	}
	if opt.KeepAlive <= 0 {
		opt.KeepAlive = 100 * time.Millisecond
	}
	if opt.AckEvery <= 0 {
		opt.AckEvery = 16
	}
	if opt.SyncLease <= 0 {
		opt.SyncLease = time.Second
	}
	s := &Service{opt: opt, ring: newRing(opt.Ring), ckpts: map[string]*checkpoint{}, peers: map[uint8]*peer{},
		buf: make([]byte, 0, min(opt.MaxFrame, 4<<10))}
	s.ring.reclaim = s.reclaim
	return s
}

// reclaim: the ring is about to reuse the bytes of the records before
// position before (Options.Reclaim).
func (s *Service) reclaim(before uint64) {
	if s.opt.Reclaim != nil {
		s.opt.Reclaim(before)
	}
}

// Active reports whether this service is the writer.
func (s *Service) Active() bool { return s.active }

// Seq is the last record written (writer) or applied (replica).
func (s *Service) Seq() uint64 { return s.seq }

// Gen is the generation written (writer) or followed (replica).
func (s *Service) Gen() uint64 { return s.gen }

// Ready reports whether this replica may be promoted without losing an
// acknowledged synchronous write: it follows a writer, which counted it
// in sync in its last message, and the lease of that claim has not run
// out (SyncLease; once told the writer is gone, Follow(0), the claim is
// the one it had then). The writer is always ready.
func (s *Service) Ready() bool {
	return s.active || (s.gen != 0 && s.synced && (s.orphan || s.clock < s.lease))
}

// Follow tells a replica which slot is the writer now (the active
// unit's blade, as the AMF says); 0: no live writer (the AMF shows no
// active unit). A replica that learns of a new writer is not Ready until
// that writer counts it in sync: the records it holds may be a tail the
// new writer never had. One told that the writer is gone keeps the claim
// it had at that instant: no writer is left to acknowledge anything
// without it.
func (s *Service) Follow(writer uint8) {
	if s.active {
		return
	}
	if writer == 0 {
		if !s.orphan {
			s.synced = s.synced && s.clock < s.lease
			s.orphan = true
		}
		return
	}
	s.orphan = false
	if writer != s.writer {
		s.writer = writer
		s.synced = false
	}
}

// SetSyncLease changes Options.SyncLease (Track sets it from the HA
// timers).
func (s *Service) SetSyncLease(d time.Duration) {
	if d > 0 {
		s.opt.SyncLease = d
	}
}

// Promote makes this service the writer (its unit became active). It
// continues from the sections and sequence it has applied, under a new
// generation larger than any it has seen. Every replica is resynced
// unless it already has exactly this state.
func (s *Service) Promote(now time.Duration) {
	if s.active {
		return
	}
	s.active = true
	s.gen = (s.gen>>8+1)<<8 | uint64(s.opt.Self)
	s.asm, s.staging = nil, nil
	s.own()
	s.ring.reset()
	s.leaving = nil
	for _, c := range s.ckpts {
		c.openers = 0
		c.idleSince = now
	}
	for _, p := range s.peers {
		*p = peer{slot: p.slot, joinSeq: s.seq}
	}
}

// Demote makes this service a replica again (its unit is no longer
// active): it waits for the next writer's stream. Until it follows
// another writer it is Ready: it has every record it wrote.
func (s *Service) Demote() {
	if !s.active {
		return
	}
	s.active = false
	s.own() // a replica's sections are its own buffers (apply recycles them)
	// It holds every record of its own lineage: promoted again before
	// another writer appears (an assignment that flapped), it loses
	// nothing. Follow of another writer clears the claim.
	s.synced, s.orphan, s.writer = true, true, s.opt.Self
	s.rxN = 0
	s.peers = map[uint8]*peer{}
	s.order, s.list = nil, nil
	s.leaving = nil
}

// SetReplicas sets the slots that replicate this service (the blades of
// the other units of the group that are up, as the AMF and membership
// say). Synchronous writes wait for every one of them. A new replica is
// resynced; it counts as in sync once it has every record written when it
// was added.
func (s *Service) SetReplicas(now time.Duration, slots []uint8) {
	keep := map[uint8]*peer{}
	s.order = s.order[:0]
	for _, sl := range slots {
		if sl == s.opt.Self {
			continue
		}
		p := s.peers[sl]
		if p == nil {
			// A replica back within its lease (the AMF's view flickered)
			// is still in sync: nothing was acknowledged without it.
			for i, l := range s.leaving {
				if l.slot == sl && l.until > now {
					p = l.peer
					p.acked = max(p.acked, l.acked)
					s.leaving = slices.Delete(s.leaving, i, i+1)
					break
				}
			}
		}
		if p == nil {
			p = &peer{slot: sl, joinSeq: s.seq}
		}
		keep[sl] = p
		s.order = append(s.order, sl)
	}
	slices.Sort(s.order)
	s.order = slices.Compact(s.order)
	for sl, p := range s.peers {
		// A replica leaving while in sync may still believe so: its
		// lease runs out SyncLease after the ack we last answered.
		if keep[sl] == nil && s.active && p.synced && p.grantAt+s.opt.SyncLease > now {
			s.leaving = append(s.leaving, leaver{slot: sl, acked: p.acked, until: p.grantAt + s.opt.SyncLease, peer: p})
		}
	}
	s.peers = keep
	s.list = s.list[:0]
	for _, sl := range s.order {
		s.list = append(s.list, keep[sl])
	}
	if s.active {
		s.pump(now)
	}
}

// Replicas lists the replica slots.
func (s *Service) Replicas() []uint8 { return slices.Clone(s.order) }

// Durable is the highest sequence every replica has applied (the last
// written if there are none): a synchronous write of seq is complete when
// Durable() >= seq.
func (s *Service) Durable() uint64 {
	d := s.seq
	for _, p := range s.list {
		if !p.known {
			return 0
		}
		d = min(d, p.acked)
	}
	for _, l := range s.leaving {
		if l.until > s.clock {
			d = min(d, l.acked)
		}
	}
	return d
}

// Open opens (creating if needed) a checkpoint on the writer. A
// checkpoint nobody holds open is dropped after its retention.
func (s *Service) Open(now time.Duration, name string, retention time.Duration) error {
	if !s.active {
		return ErrNotActive
	}
	if name == "" || len(name) > MaxName {
		return fmt.Errorf("ckpt: open %q: %w", name, ErrName)
	}
	c := s.ckpts[name]
	if c == nil {
		c = &checkpoint{name: name, retention: retention, sections: map[string]*sectionData{}}
		var r [8]byte
		putMillis(r[:], retention)
		if _, _, err := s.record(now, OpCreate, 0, name, "", r[:]); err != nil {
			return err
		}
		s.ckpts[name] = c
		s.ckptsVer++
	}
	c.openers++
	return nil
}

// Close releases one opener; with none left the retention time starts.
func (s *Service) Close(now time.Duration, name string) error {
	c := s.ckpts[name]
	if c == nil {
		return fmt.Errorf("ckpt: close %q: %w", name, ErrNoCheckpoint)
	}
	if c.openers == 0 {
		return fmt.Errorf("ckpt: close %q: %w", name, ErrNotOpen)
	}
	c.openers--
	if c.openers == 0 {
		c.idleSince = now
	}
	return nil
}

// Write replaces section's data in checkpoint ckpt and queues the record
// for the replicas. It returns the record's sequence: for a synchronous
// write the caller waits until Durable() reaches it. data is copied.
func (s *Service) Write(now time.Duration, ckpt, section string, data []byte, sync bool) (uint64, error) {
	c, err := s.writable(ckpt, section)
	if err != nil {
		return 0, err
	}
	var flags uint8
	if sync {
		flags = FlagSync
	}
	seq, stored, err := s.record(now, OpWrite, flags, ckpt, section, data)
	if err != nil {
		return 0, err
	}
	// The section's value is the record's data in the ring (one copy of
	// the bytes, not two): it is copied out only if the ring evicts the
	// record while it is still the section's value (evicted).
	v := c.sections[section]
	if v == nil {
		v = &sectionData{}
		c.sections[section] = v
	}
	old := v.data
	c.bytes += len(data) - len(old)
	s.ring.supersede(old, len(ckpt)+len(section))
	if !s.snapshotting() {
		s.recycle(old) // nothing else shares it (a ring slice is not kept)
	}
	v.data = stored
	return seq, nil
}

// evicted keeps a section whose value is the record the ring is about to
// overwrite: its bytes move to a buffer of their own.
func (s *Service) evicted(rec *record) {
	if rec.op != OpWrite || len(rec.data) == 0 {
		return
	}
	var kept []byte // the data copied out, shared by all that need it
	if s.snapshotting() {
		off := s.ring.off(rec.pos)
		s.snapshots(func(sn *snapshot) {
			if i, ok := sn.inRing[off]; ok {
				if kept == nil {
					kept = append(s.buffer(len(rec.data)), rec.data...)
				}
				sn.items[i].data = kept
				delete(sn.inRing, off)
			}
		})
	}
	if s.ring.superseded(rec.pos) {
		return
	}
	c := s.ckpts[string(rec.ckpt)]
	if c == nil {
		return
	}
	if v := c.sections[string(rec.section)]; v != nil && len(v.data) > 0 && &v.data[0] == &rec.data[0] {
		if kept == nil {
			kept = append(s.buffer(len(v.data)), v.data...)
		}
		v.data = kept
	}
}

// own moves every section still kept in the ring to a buffer of its own
// (before the ring is reset).
func (s *Service) own() {
	for _, c := range s.ckpts {
		for _, v := range c.sections {
			if s.ring.holds(v.data) {
				v.data = append(s.buffer(len(v.data)), v.data...)
			}
		}
	}
}

// Delete removes a section.
func (s *Service) Delete(now time.Duration, ckpt, section string, sync bool) (uint64, error) {
	c, err := s.writable(ckpt, section)
	if err != nil {
		return 0, err
	}
	v, ok := c.sections[section]
	if !ok {
		return 0, fmt.Errorf("ckpt: delete %s/%s: %w", ckpt, section, ErrNoSection)
	}
	old := v.data
	var flags uint8
	if sync {
		flags = FlagSync
	}
	seq, _, err := s.record(now, OpDelete, flags, ckpt, section, nil)
	if err != nil {
		return 0, err
	}
	c.bytes -= len(old)
	delete(c.sections, section)
	s.ring.supersede(old, len(ckpt)+len(section))
	if !s.snapshotting() {
		s.recycle(old)
	}
	return seq, nil
}

// lookup returns checkpoint name (nil: none): a stream's writes go to
// one checkpoint or a few, and comparing its name costs less than a
// look-up in the map (hashing the name).
func (s *Service) lookup(name string) *checkpoint {
	if c := s.lastCkpt; c != nil && s.lastVer == s.ckptsVer && c.name == name {
		return c
	}
	c := s.ckpts[name]
	if c != nil {
		s.lastCkpt, s.lastVer = c, s.ckptsVer
	}
	return c
}

func (s *Service) writable(ckpt, section string) (*checkpoint, error) {
	if !s.active {
		return nil, ErrNotActive
	}
	c := s.lookup(ckpt)
	if c == nil {
		return nil, fmt.Errorf("ckpt: %s: %w", ckpt, ErrNoCheckpoint)
	}
	if section == "" || len(section) > MaxName {
		return nil, fmt.Errorf("ckpt: section %q: %w", section, ErrName)
	}
	if chunk(s.opt.MaxFrame, ckpt, section) < 64 {
		return nil, fmt.Errorf("ckpt: names %s/%s leave no room in a frame: %w", ckpt, section, ErrName)
	}
	return c, nil
}

// Read returns a section's data. The slice is the stored one: the caller
// must not modify it and must copy it if it keeps it past the next call.
func (s *Service) Read(ckpt, section string) ([]byte, error) {
	c := s.ckpts[ckpt]
	if c == nil {
		return nil, fmt.Errorf("ckpt: %s: %w", ckpt, ErrNoCheckpoint)
	}
	v, ok := c.sections[section]
	if !ok {
		return nil, fmt.Errorf("ckpt: %s/%s: %w", ckpt, section, ErrNoSection)
	}
	return v.data, nil
}

// Sections calls f for every section of ckpt in name order until f
// returns false. data is the stored slice (see Read).
func (s *Service) Sections(ckpt string, f func(section string, data []byte) bool) error {
	c := s.ckpts[ckpt]
	if c == nil {
		return fmt.Errorf("ckpt: %s: %w", ckpt, ErrNoCheckpoint)
	}
	for _, name := range sortedKeys(c.sections) {
		if !f(name, c.sections[name].data) {
			break
		}
	}
	return nil
}

// Checkpoints lists the checkpoint names in order.
func (s *Service) Checkpoints() []string { return sortedKeys(s.ckpts) }

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func putMillis(b []byte, d time.Duration) {
	ms := uint64(d / time.Millisecond)
	for i := 7; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
}

func getMillis(b []byte) time.Duration {
	if len(b) < 8 {
		return 0
	}
	var ms uint64
	for _, x := range b[:8] {
		ms = ms<<8 | uint64(x)
	}
	return time.Duration(min(ms, uint64(1<<62)/uint64(time.Millisecond))) * time.Millisecond
}

// record appends one record to the ring and sends what the windows
// allow; it returns the record's sequence and its data in the ring.
func (s *Service) record(now time.Duration, op Op, flags uint8, ckpt, section string, data []byte) (uint64, []byte, error) {
	if s.onEvict == nil {
		s.onEvict = s.evicted // one method value, not one per record
	}
	// evicted needs a superseded record only for a snapshot in progress.
	s.ring.seeSuperseded = s.snapshotting()
	stored, err := s.ring.append(op, flags, s.seq+1, ckpt, section, data, s.onEvict)
	if err != nil {
		return 0, nil, fmt.Errorf("ckpt: %s/%s: %d bytes: %w", ckpt, section, len(data), err)
	}
	s.seq++
	s.c.Records++
	s.pump(now)
	return s.seq, stored, nil
}

func (s *Service) snapshotting() bool {
	for _, p := range s.list {
		if p.snap != nil {
			return true
		}
	}
	for _, l := range s.leaving {
		if l.peer.snap != nil {
			return true // taken back as it was if it returns
		}
	}
	return false
}

// snapshots calls f for every snapshot in progress (of the replicas and
// of those leaving, which may come back and go on with theirs).
func (s *Service) snapshots(f func(*snapshot)) {
	for _, p := range s.list {
		if p.snap != nil {
			f(p.snap)
		}
	}
	for _, l := range s.leaving {
		if l.peer.snap != nil {
			f(l.peer.snap)
		}
	}
}

// Tick runs timers: retention of unopened checkpoints, retransmission and
// keep-alive polls. Call it every few milliseconds (or at NextDeadline).
func (s *Service) Tick(now time.Duration) {
	s.clock = max(s.clock, now)
	if !s.active {
		return
	}
	s.leaving = slices.DeleteFunc(s.leaving, func(l leaver) bool { return l.until <= now })
	for _, p := range s.list {
		p.full = false // the path may have room by now
	}
	for _, name := range sortedKeys(s.ckpts) {
		c := s.ckpts[name]
		if c.openers == 0 && now-c.idleSince >= c.retention {
			if _, _, err := s.record(now, OpDrop, 0, name, "", nil); err == nil {
				delete(s.ckpts, name)
				s.ckptsVer++
			}
		}
	}
	for _, p := range s.list {
		// Unacknowledged frames, or an unknown replica: poll; the reply
		// says where it is and the writer goes back to there.
		waiting := !p.known || p.next.n > p.base.n
		if (waiting && now-p.lastAck >= s.opt.RTO && now-p.lastPoll >= s.opt.RTO) || now-p.lastPoll >= s.opt.KeepAlive {
			s.poll(now, p)
		}
	}
	s.pump(now)
}

// NextDeadline is when Tick should run next.
// A writer with anything under way (frames to be acknowledged, a replica
// to find or resync, a path without room, records not yet sent) is ticked
// every RTO/2; an idle one only at its next keep-alive poll, retention
// expiry or leaver's end, so an idle blade is not woken a hundred times a
// second (under emulation each wake-up costs the blade's CPU).
func (s *Service) NextDeadline(now time.Duration) time.Duration {
	if !s.active {
		return now + s.opt.KeepAlive
	}
	busy := now + min(s.opt.RTO/2, s.opt.KeepAlive)
	d := now + s.opt.KeepAlive
	for _, p := range s.list {
		if p.full || !p.known || p.snap != nil || p.next.snap || p.next.n > p.base.n || p.next.pos < s.ring.head {
			return busy
		}
		d = min(d, p.lastPoll+s.opt.KeepAlive)
	}
	for _, l := range s.leaving {
		d = min(d, l.until)
	}
	for _, c := range s.ckpts {
		if c.openers == 0 {
			d = min(d, c.idleSince+c.retention)
		}
	}
	return max(d, now)
}

func (s *Service) poll(now time.Duration, p *peer) {
	p.lastPoll = now
	s.c.Polls++
	m := Msg{Kind: KindPoll, Gen: s.gen, Seq: s.seq, Ckpt: "", N: p.next.n, Index: p.ackNum}
	if p.synced {
		m.Flags |= FlagSynced
	}
	s.send(p.slot, &m)
}

func (s *Service) send(to uint8, m *Msg) {
	b, err := AppendMsg(s.buf[:0], m)
	if err != nil {
		return
	}
	s.buf = b[:0] // keep what it grew to
	if s.opt.Room != nil && s.opt.Room(to) < len(b) {
		return // a full queue: frames are flowing; timers send it again
	}
	s.c.Frames++
	s.opt.Send(to, b)
}

// Receive handles one message from slot from.
func (s *Service) Receive(now time.Duration, from uint8, b []byte) error {
	s.clock = max(s.clock, now)
	m, err := unmarshal(b, s.intern)
	if err != nil {
		s.c.Bad++
		return err
	}
	if m.Kind == KindAck {
		if s.active {
			s.ack(now, from, &m)
		}
		return nil
	}
	if s.active {
		if m.Gen > s.gen {
			s.c.Stale++ // a newer writer exists: the AMF will demote us
		}
		return nil
	}
	if m.Kind == KindRun {
		return s.takeRun(now, from, &m)
	}
	return s.take(now, from, &m)
}

// takeRunWrite takes record r of a run, frame n, if it is the common
// case: the next write of the lineage followed, to a checkpoint held,
// no record or snapshot being assembled. It does what take and apply do
// for such a frame, without a Msg or an assembly per record; false
// leaves the record to take.
func (s *Service) takeRunWrite(from uint8, m *Msg, r *runRecord, n uint64) bool {
	if r.op != OpWrite || m.Gen != s.gen || from != s.writer || n != s.rxN+1 || r.seq != s.seq+1 || s.asm != nil || s.staging != nil {
		return false
	}
	c := s.lookup(view(r.ckpt))
	if c == nil {
		return false // take reports it
	}
	name := view(r.section)
	v := c.sections[name]
	if v == nil {
		v = &sectionData{}
		c.sections[s.keep(name)] = v
	}
	old := v.data
	c.bytes += len(r.data) - len(old)
	if cap(old) >= len(r.data) && !s.ring.holds(old) {
		// Rewritten where it lies (what recycle and buffer would do
		// with it, without the two steps): nothing else shares a
		// replica's section buffer.
		v.data = append(old[:0], r.data...)
	} else {
		v.data = append(s.buffer(len(r.data)), r.data...)
		s.recycle(old)
	}
	if s.onApply != nil {
		s.onApply(strings.Clone(name), v.data)
	}
	s.seq = r.seq
	s.c.Applied++
	s.inSyncEcho(m.Flags, m.Index)
	s.rxN = n
	s.sinceAck++
	if s.sinceAck >= s.opt.AckEvery || r.flags&FlagSync != 0 {
		s.sendAck(from, 0)
	}
	return true
}

// takeRun takes the records of a run in order, each as the frame it
// stands for, and stops at the first that is not next in the stream
// (take has nacked it, or it is another lineage's).
func (s *Service) takeRun(now time.Duration, from uint8, m *Msg) error {
	b := m.Data
	var i uint32
	var r runRecord
	for ; len(b) > 0; i++ {
		rest, err := nextRunRecord(b, &r)
		if err != nil {
			s.c.Bad++
			return err
		}
		if s.takeRunWrite(from, m, &r, m.N+uint64(i)) {
			b = rest
			continue
		}
		// The names are views of the run (no look-up to intern them:
		// apply looks the section up anyway, and keeps a name only
		// through keep).
		rm := Msg{Kind: KindData, Flags: m.Flags&^FlagSync | r.flags&FlagSync, Op: r.op, Gen: m.Gen, Seq: r.seq,
			N: m.N + uint64(i), Index: m.Index, Total: uint32(len(r.data)), Ckpt: view(r.ckpt), Section: view(r.section), Data: r.data}
		before := s.rxN
		if err := s.take(now, from, &rm); err != nil {
			return err
		}
		if s.rxN == before && rm.N > before {
			return nil
		}
		b = rest
	}
	if i != m.Frag {
		s.c.Bad++
		return fmt.Errorf("%w: %d records, header says %d", ErrBadRun, i, m.Frag)
	}
	return nil
}

// --- writer side ---

func (s *Service) ack(now time.Duration, from uint8, m *Msg) {
	for i := range s.leaving {
		if l := &s.leaving[i]; l.slot == from && m.Gen == s.gen {
			l.acked = max(l.acked, m.Seq)
		}
	}
	p := s.peers[from]
	if p == nil {
		return
	}
	p.lastAck = now
	p.ackNum, p.grantAt = m.Index, now
	if m.Gen != s.gen {
		// A replica of another lineage (or restarted): resync it, unless
		// a resync is under way (the snapshot's begin is retransmitted).
		if !p.next.snap || p.base.item > 0 || !p.base.snap {
			s.startSnapshot(now, p, m.N+1)
		} else if m.Flags&(FlagNack|FlagReply) != 0 {
			p.next = p.base // resend the snapshot's begin
		}
		s.pump(now)
		return
	}
	if !p.known {
		if m.Seq == s.seq && m.N > 0 {
			p.known = true
			p.acked = m.Seq
			p.ackN = m.N
			p.base = cursor{n: m.N + 1, pos: s.ring.head}
			p.next = p.base
			s.markSynced(p)
			s.pump(now)
			return
		}
		s.startSnapshot(now, p, m.N+1)
		s.pump(now)
		return
	}
	if m.N > p.top {
		// It took frames we never sent in this stream: resync.
		s.startSnapshot(now, p, m.N+1)
		s.pump(now)
		return
	}
	if m.N > p.ackN || p.ackN == 0 {
		p.ackN = m.N
	}
	if m.Seq > p.acked {
		p.acked = m.Seq
	}
	if !p.base.snap && m.N >= p.base.n && m.N < p.next.n {
		// Start from the nearest mark: every frame up to m.N was
		// taken, so none of those before the mark needs decoding (nor
		// to be still in the ring).
		if c, ok := p.markAt(m.N); ok && c.pos >= s.ring.tail && c.pos < s.ring.head {
			p.base = c
		}
	}
	for p.base.n <= m.N {
		if !s.advance(&p.base, p) {
			s.startSnapshot(now, p, m.N+1)
			s.pump(now)
			return
		}
	}
	if p.next.n < p.base.n {
		p.next = p.base // it took what a go-back was about to resend
	}
	if p.snap != nil && !p.base.snap {
		p.snap = nil // the snapshot is taken: release its references
	}
	goBack := uint8(FlagNack)
	if !s.opt.Reliable {
		goBack |= FlagReply
	}
	if m.Flags&goBack != 0 && m.N+1 < p.next.n {
		s.c.Retransmits++
		p.next = p.base
	}
	s.markSynced(p)
	s.pump(now)
}

func (s *Service) markSynced(p *peer) {
	if !p.synced && p.acked >= p.joinSeq {
		p.synced = true
		s.poll(p.lastAck, p) // tell it
	}
}

func (s *Service) startSnapshot(now time.Duration, p *peer, n uint64) {
	s.c.Resyncs++
	// The snapshot shares the sections' data: buffers (immutable while a
	// snapshot is in progress: none is recycled) and records in the ring
	// (evicted copies them out for it before the ring reuses them).
	// Sized at once: a resync of many small sections makes no garbage
	// growing these.
	n0, inRing := 0, 0
	for _, c := range s.ckpts {
		n0 += 1 + len(c.sections)
		for _, v := range c.sections {
			if s.ring.holds(v.data) {
				inRing++
			}
		}
	}
	sn := &snapshot{seq: s.seq, head: s.ring.head, items: make([]snapItem, 0, n0)}
	if inRing > 0 {
		sn.inRing = make(map[uint64]int, inRing)
	}
	for _, name := range sortedKeys(s.ckpts) {
		c := s.ckpts[name]
		sn.items = append(sn.items, snapItem{ckpt: name, create: true, retention: c.retention})
		for _, sec := range sortedKeys(c.sections) {
			d := c.sections[sec].data
			if off, ok := s.ring.recordAt(d, len(name)+len(sec)); ok {
				sn.inRing[off] = len(sn.items)
			}
			sn.items = append(sn.items, snapItem{ckpt: name, section: sec, data: d})
		}
	}
	// Fresh frame indexes: frames of the old stream may still be in
	// flight, and an index must always mean the same frame.
	n = max(n, p.top+1, 1)
	p.known = true
	p.snap = sn
	p.base = cursor{n: n, snap: true}
	p.next = p.base
	p.ackN = n - 1
	p.synced = p.synced && p.acked >= p.joinSeq
}

// advance moves c past one frame; false if the frame is gone (evicted).
func (s *Service) advance(c *cursor, p *peer) bool {
	if c.snap {
		sn := p.snap
		if sn == nil {
			return false
		}
		if c.item >= 1 && c.item <= len(sn.items) {
			it := sn.items[c.item-1]
			if c.frag+1 < frags(len(it.data), chunk(s.opt.MaxFrame, it.ckpt, it.section)) {
				c.frag++
				c.n++
				return true
			}
		}
		c.frag = 0
		c.item++
		c.n++
		if c.item > len(sn.items)+1 {
			*c = cursor{n: c.n, pos: sn.head}
		}
		return true
	}
	if c.pos < s.ring.tail || c.pos >= s.ring.head {
		return false
	}
	rec, ok := s.ring.at(c.pos)
	if !ok {
		return false
	}
	c.n++
	if c.frag+1 < frags(len(rec.data), s.opt.MaxFrame-HeaderLen-len(rec.ckpt)-len(rec.section)) {
		c.frag++
		return true
	}
	c.frag = 0
	c.pos = rec.next
	return true
}

// pump sends to every replica what its window allows.
func (s *Service) pump(now time.Duration) {
	if !s.active {
		return
	}
	for _, p := range s.list {
		if !p.known {
			if now-p.lastPoll >= s.opt.RTO || p.lastPoll == 0 {
				s.poll(now, p)
			}
			continue
		}
		for !p.full && p.next.n-p.base.n < uint64(s.opt.Window) {
			if !p.next.snap && p.next.pos < s.ring.tail {
				// It fell behind the ring: resync from the sections.
				s.startSnapshot(now, p, p.base.n)
			}
			if s.opt.Runs && !p.next.snap && p.next.frag == 0 {
				if s.sendRun(p) {
					p.lastSent = now
					continue
				}
				if p.full || p.next.pos >= s.ring.head {
					break
				}
				// A record larger than a run's frame: in fragments.
			}
			if !s.sendAt(p) {
				break
			}
			if c := p.next; !c.snap && c.n%markEvery == 0 {
				p.marks[c.n/markEvery%markSlots] = mark{n: c.n, pos: c.pos, frag: c.frag}
			}
			p.top = max(p.top, p.next.n)
			p.lastSent = now
			if !s.advance(&p.next, p) {
				break
			}
		}
	}
}

// maxRun bounds a run's records (bytes) unless one record alone is
// larger: several runs fill a Link's batch (linkBatchBytes), so a batch
// is not cut short by a run that no longer fits.
const maxRun = 32 << 10

// sendRun sends the records from ring cursor p.next (at a record's
// start) as one KindRun message, as many as are whole in a frame and lie
// together in the ring, up to maxRun bytes and the window, and moves
// p.next past them; false if it sent nothing (nothing to send, the path
// is full, or the first record needs fragments).
func (s *Service) sendRun(p *peer) bool {
	c := p.next
	size, buf := s.ring.size(), s.ring.buf
	if c.pos >= s.ring.head {
		return false
	}
	j, indexed := s.ring.indexed(c.pos)
	if !indexed {
		if off := s.ring.off(c.pos); size-off < recHeader || be.Uint32(buf[off:]) == padMark {
			c.pos += size - off // a pad: the records go on at the buffer's start
		}
		if c.pos >= s.ring.head {
			return false
		}
		j, indexed = s.ring.indexed(c.pos)
	}
	room := uint64(s.opt.Window) - (c.n - p.base.n)
	limit := s.opt.MaxFrame - HeaderLen
	start := s.ring.off(c.pos)
	pos, k, total := c.pos, uint64(0), 0
	var flags uint8
	nmarks := 0
	for pos < s.ring.head && k < room {
		off := s.ring.off(pos)
		var n int
		if indexed {
			// The index (s.ring.idx): no header read. A record that is
			// not the next entry's lies after a pad.
			if k > 0 && (off == 0 || j == s.ring.idxN || s.ring.idxPos[j%idxSize] != pos) {
				break
			}
			l := s.ring.idxLen[j%idxSize]
			n = int(l &^ idxSync)
			if total+n > limit || (k > 0 && total+n > maxRun) {
				break
			}
			if l&idxSync != 0 {
				flags |= FlagSync
			}
			j++
		} else {
			if k > 0 && (off == 0 || size-off < recHeader || be.Uint32(buf[off:]) == padMark) {
				break // the rest lies after a pad
			}
			b := buf[off:]
			n = int(be.Uint32(b))
			if total+n > limit || (k > 0 && total+n > maxRun) {
				break
			}
			flags |= b[5] & FlagSync
		}
		if (c.n+k)%markEvery == 0 && nmarks < len(s.runMarks) {
			s.runMarks[nmarks] = mark{n: c.n + k, pos: pos}
			nmarks++
		}
		total += n
		pos += uint64(n)
		k++
	}
	if k == 0 {
		return false
	}
	if indexed {
		s.ring.idxHint = j // where the next run starts (one replica: the next call)
	}
	if p.synced {
		flags |= FlagSynced
	}
	data := buf[start : start+uint64(total)]
	h := appendHeader(s.buf[:0], KindRun, flags, 0, s.gen, be.Uint64(buf[start+8:]), c.n, p.ackNum, uint32(k), uint32(total), nil, nil)
	switch {
	case s.opt.Offer != nil:
		if !s.opt.Offer(p.slot, h, data, c.pos) {
			p.full = true
			return false
		}
	case s.opt.Room != nil && s.opt.Room(p.slot) < len(h)+len(data):
		p.full = true
		return false
	default:
		msg := append(h, data...)
		s.buf = msg[:0]
		s.opt.Send(p.slot, msg)
	}
	for _, m := range s.runMarks[:nmarks] {
		p.marks[m.n/markEvery%markSlots] = m
	}
	s.c.Frames += k
	p.top = max(p.top, c.n+k-1)
	p.next = cursor{n: c.n + k, pos: pos}
	return true
}

// sendAt sends the frame at p.next; false if there is nothing to send.
func (s *Service) sendAt(p *peer) bool {
	c := p.next
	var m Msg
	m.Gen, m.N = s.gen, c.n
	if p.synced {
		m.Flags |= FlagSynced
	}
	if c.snap {
		sn := p.snap
		switch {
		case c.item == 0:
			m.Kind, m.Seq, m.Frag, m.Ckpt = KindSnapBegin, sn.seq, uint32(len(sn.items)), "*"
		case c.item > len(sn.items):
			m.Kind, m.Seq, m.Index, m.Ckpt = KindSnapEnd, sn.seq, uint32(len(sn.items)), "*"
		default:
			it := sn.items[c.item-1]
			m.Kind, m.Seq, m.Index, m.Ckpt, m.Section = KindSnapSection, sn.seq, uint32(c.item), it.ckpt, it.section
			m.Op = OpWrite
			data := it.data
			if it.create {
				m.Op = OpCreate
				var r [8]byte
				putMillis(r[:], it.retention)
				data = r[:]
			}
			ch := chunk(s.opt.MaxFrame, it.ckpt, it.section)
			m.Total, m.Frag = uint32(len(data)), c.frag
			lo := min(int(c.frag)*ch, len(data))
			m.Data = data[lo:min(lo+ch, len(data))]
		}
		if s.opt.Room != nil && s.opt.Room(p.slot) < m.Len() {
			p.full = true
			return false
		}
		s.send(p.slot, &m)
		return true
	}
	if c.pos >= s.ring.head {
		return false
	}
	rec, ok := s.ring.at(c.pos)
	if !ok {
		return false
	}
	ch := s.opt.MaxFrame - HeaderLen - len(rec.ckpt) - len(rec.section)
	lo := min(int(c.frag)*ch, len(rec.data))
	data := rec.data[lo:min(lo+ch, len(rec.data))]
	b := appendHeader(s.buf[:0], KindData, m.Flags|rec.flags, rec.op, s.gen, rec.seq, c.n, p.ackNum, c.frag, uint32(len(rec.data)), rec.ckpt, rec.section)
	switch {
	case s.opt.Offer != nil:
		if !s.opt.Offer(p.slot, b, data, rec.pos) {
			p.full = true
			return false
		}
	case s.opt.Room != nil && s.opt.Room(p.slot) < len(b)+len(data):
		p.full = true
		return false
	default:
		s.opt.Send(p.slot, append(b, data...))
	}
	s.c.Frames++
	return true
}

// --- replica side ---

func (s *Service) sendAck(from uint8, flags uint8) {
	s.sinceAck = 0
	seq := s.seq
	if s.staging != nil {
		seq = 0 // the sections are being replaced: it holds no record of this lineage yet
	}
	s.ackNum++
	s.ackTimes[s.ackNum%uint32(len(s.ackTimes))] = s.clock
	m := Msg{Kind: KindAck, Flags: flags, Gen: s.gen, Seq: seq, N: s.rxN, Index: s.ackNum}
	s.send(from, &m)
}

// AckPending acknowledges what a replica took since its last ack. A
// path that delivers messages in batches (a Link) calls it after each
// batch: one ack per batch rather than one per AckEvery frames.
func (s *Service) AckPending() {
	if !s.active && s.sinceAck > 0 && s.writer != 0 {
		s.sendAck(s.writer, 0)
	}
}

// Pump sends what the windows (and Options.Room) allow now: the path
// has room again (a Link's OnRoom). Writes meanwhile only queue in the
// ring: no attempt per write at a path that is full.
func (s *Service) Pump(now time.Duration) {
	s.clock = max(s.clock, now)
	for _, p := range s.list {
		p.full = false
	}
	s.pump(now)
}

// inSync takes a writer's "in sync" flag from a poll or data frame of
// the followed lineage; the lease runs from the ack it echoes.
func (s *Service) inSync(m *Msg) {
	if m.Kind != KindPoll && m.Kind != KindData {
		// Snapshot frames carry no echo.
		s.synced = m.Flags&FlagSynced != 0
		return
	}
	s.inSyncEcho(m.Flags, m.Index)
}

// inSyncEcho is inSync for a poll or data frame of flags flags echoing
// ack number k.
func (s *Service) inSyncEcho(flags uint8, k uint32) {
	s.synced = flags&FlagSynced != 0
	if s.synced && k != 0 && s.ackNum-k < uint32(len(s.ackTimes)) {
		s.lease = max(s.lease, s.ackTimes[k%uint32(len(s.ackTimes))]+s.opt.SyncLease)
	}
}

func (s *Service) take(now time.Duration, from uint8, m *Msg) error {
	if m.Kind == KindPoll {
		if m.Gen == s.gen && from == s.writer {
			s.inSync(m)
		}
		s.sendAck(from, FlagReply)
		return nil
	}
	switch {
	case m.Gen < s.gen:
		s.c.Stale++
		s.sendAck(from, FlagNack)
		return nil
	case m.Gen > s.gen || s.writer != from:
		if m.Kind != KindSnapBegin {
			if s.nackN != m.N {
				s.nackN = m.N
				s.sendAck(from, FlagNack)
			}
			s.c.OutOfOrder++
			return nil
		}
	case m.N <= s.rxN:
		return nil // duplicate (a go-back resends what we have)
	case m.N > s.rxN+1 && m.Kind != KindSnapBegin:
		s.c.OutOfOrder++
		if s.nackN != s.rxN {
			s.nackN = s.rxN
			s.sendAck(from, FlagNack)
		}
		return nil
	}
	if err := s.apply(m); err != nil {
		s.c.Bad++
		// The stream is broken (a writer bug or a forged frame that
		// passed authentication): ask for a resync.
		s.gen = 0
		s.sendAck(from, FlagNack)
		return err
	}
	if m.Kind == KindSnapBegin {
		if m.Gen != s.gen || from != s.writer {
			s.lease = 0 // a lease of another lineage means nothing here
		}
		s.gen, s.writer = m.Gen, from
	}
	s.inSync(m)
	s.rxN = m.N
	s.sinceAck++
	if s.sinceAck >= s.opt.AckEvery || m.Kind == KindSnapEnd || (s.asm == nil && m.Flags&FlagSync != 0) {
		s.sendAck(from, 0)
	}
	return nil
}

func (s *Service) apply(m *Msg) error {
	switch m.Kind {
	case KindSnapBegin:
		s.staging = map[string]*checkpoint{}
		s.stageSeq = m.Seq
		s.asm = nil
		return nil
	case KindSnapEnd:
		if s.staging == nil || m.Seq != s.stageSeq || s.asm != nil {
			return errors.New("ckpt: snapshot end without its begin")
		}
		s.ckpts, s.staging = s.staging, nil
		s.ckptsVer++
		s.seq = m.Seq
		s.c.Applied++
		return nil
	case KindSnapSection:
		if s.staging == nil {
			return errors.New("ckpt: snapshot section outside a snapshot")
		}
	}
	a, err := s.assemble(m)
	if a == nil || err != nil {
		return err
	}
	s.asm = nil
	if a.snap {
		if a.op == OpCreate {
			s.staging[a.ckpt] = &checkpoint{name: a.ckpt, retention: getMillis(a.buf), sections: map[string]*sectionData{}}
			return nil
		}
		c := s.staging[a.ckpt]
		if c == nil {
			return fmt.Errorf("ckpt: snapshot section %s/%s before its checkpoint", a.ckpt, a.section)
		}
		c.sections[a.section] = &sectionData{data: a.buf}
		c.bytes += len(a.buf)
		if s.onApply != nil {
			s.onApply(a.section, a.buf)
		}
		return nil
	}
	if a.seq != s.seq+1 {
		return fmt.Errorf("ckpt: record %d after %d", a.seq, s.seq)
	}
	s.seq = a.seq
	s.c.Applied++
	c := s.ckpts[a.ckpt]
	switch a.op {
	case OpCreate:
		if c == nil {
			name := s.keep(a.ckpt)
			s.ckpts[name] = &checkpoint{name: name, retention: getMillis(a.buf), sections: map[string]*sectionData{}}
			s.ckptsVer++
		}
	case OpDrop:
		delete(s.ckpts, a.ckpt)
		s.ckptsVer++
	case OpWrite:
		if c == nil {
			return fmt.Errorf("ckpt: write to unknown checkpoint %s", a.ckpt)
		}
		if s.onApply != nil {
			s.onApply(strings.Clone(a.section), a.buf)
		}
		v := c.sections[a.section]
		if v == nil {
			v = &sectionData{}
			c.sections[s.keep(a.section)] = v
		}
		old := v.data
		v.data = a.buf
		c.bytes += len(a.buf) - len(old)
		s.recycle(old)
	case OpDelete:
		if c == nil {
			break
		}
		if v := c.sections[a.section]; v != nil {
			c.bytes -= len(v.data)
			delete(c.sections, a.section)
			s.recycle(v.data)
		}
	}
	return nil
}

// intern returns name as a string, the same one each time (a replica
// rewriting a section makes no garbage for its name). The table is
// rebuilt from the names in use when it outgrows them.
func (s *Service) intern(name []byte) string {
	if len(name) == 0 {
		return ""
	}
	// The last two names first: a stream names its checkpoint in every
	// record (no map look-up for it), then a section.
	for i, v := range s.recentNames {
		if v == string(name) {
			s.recentNext = 1 - i
			return v
		}
	}
	v, ok := s.names[string(name)]
	if ok {
		s.recentNames[s.recentNext] = v
		s.recentNext = 1 - s.recentNext
		return v
	}
	if s.names == nil || len(s.names) > 1024+4*s.sectionCount() {
		s.names = map[string]string{}
		for cn, c := range s.ckpts {
			s.names[cn] = cn
			for sn := range c.sections {
				s.names[sn] = sn
			}
		}
	}
	v = string(name)
	s.names[v] = v
	s.recentNames[s.recentNext] = v
	s.recentNext = 1 - s.recentNext
	return v
}

// keep returns name as a string of its own (interned): name may be a
// view of a run's bytes (takeRun), valid only while the run is taken.
func (s *Service) keep(name string) string {
	return s.intern(unsafe.Slice(unsafe.StringData(name), len(name)))
}

// view is b as a string without a copy: valid only while b's bytes are
// (a run being taken), so it is used to look up, and kept only through
// keep.
func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

func (s *Service) sectionCount() int {
	n := len(s.ckpts)
	for _, c := range s.ckpts {
		n += len(c.sections)
	}
	return n
}

func (s *Service) recycle(b []byte) {
	if len(s.free) < 16 && cap(b) > 0 && !s.ring.holds(b) {
		s.free = append(s.free, b[:0])
	}
}

func (s *Service) buffer(n int) []byte {
	for i, b := range s.free {
		if cap(b) >= n {
			s.free[i] = s.free[len(s.free)-1]
			s.free = s.free[:len(s.free)-1]
			return b[:0]
		}
	}
	return make([]byte, 0, n)
}

// assemble adds a fragment; it returns the assembly when complete. A
// record is applied only whole, so a replica never holds a torn section.
func (s *Service) assemble(m *Msg) (*assembly, error) {
	snap := m.Kind == KindSnapSection
	if m.Frag == 0 {
		if s.asm != nil {
			return nil, errors.New("ckpt: new record before the last one ended")
		}
		if m.Total > 1<<30 {
			return nil, fmt.Errorf("ckpt: record of %d bytes", m.Total)
		}
		// One assembly at a time: reuse its storage (no garbage per record).
		s.asmStore = assembly{op: m.Op, flags: m.Flags, seq: m.Seq, ckpt: m.Ckpt, section: m.Section, total: int(m.Total), snap: snap,
			buf: s.buffer(int(m.Total))}
		s.asm = &s.asmStore
	} else if a := s.asm; a == nil || a.snap != snap || a.seq != m.Seq || a.ckpt != m.Ckpt || a.section != m.Section || a.total != int(m.Total) {
		return nil, errors.New("ckpt: fragment of another record")
	}
	a := s.asm
	if len(a.buf)+len(m.Data) > a.total {
		return nil, ErrBadFrag
	}
	a.buf = append(a.buf, m.Data...)
	if len(a.buf) < a.total {
		if len(m.Data) == 0 {
			return nil, ErrBadFrag
		}
		return nil, nil
	}
	return a, nil
}

func appendHeader(b []byte, kind Kind, flags uint8, op Op, gen, seq, n uint64, index, frag, total uint32, ckpt, section []byte) []byte {
	var h [HeaderLen]byte
	h[0], h[1], h[2], h[3], h[4] = byte(kind), flags, byte(op), byte(len(ckpt)), byte(len(section))
	be.PutUint64(h[5:], gen)
	be.PutUint64(h[13:], seq)
	be.PutUint64(h[21:], n)
	be.PutUint32(h[29:], index)
	be.PutUint32(h[33:], frag)
	be.PutUint32(h[37:], total)
	b = append(b, h[:]...)
	b = append(b, ckpt...)
	return append(b, section...)
}
