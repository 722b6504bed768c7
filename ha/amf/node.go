package amf

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cgoa/cgoa/ha/clm"
	"github.com/cgoa/cgoa/ha/evt"
	"github.com/cgoa/cgoa/ha/quorum"
	"github.com/cgoa/cgoa/ha/transport"
)

// Env is how a Node reaches the outside world. The node calls these from
// its own calls (Tick, Receive, admin methods) only.
type Env struct {
	// Send sends a frame payload (to a slot or transport.Broadcast).
	// Errors are the transport's to count; the protocol tolerates loss.
	Send func(typ transport.Type, to uint8, payload []byte)
	// Publish receives every event (may be nil).
	Publish func(evt.Event)
	// NodeFailover is called when escalation fails the whole node over;
	// the blade typically reboots (may be nil).
	NodeFailover func(reason string)
	// Released is called when the node gives up a lease it may hold, before
	// any frame tells the voters (may be nil): a cached ActiveUntil must be
	// dropped then, since another unit may be granted the key at once.
	Released func(key string)
}

// Component is a role's component inside a service unit.
type Component struct {
	Name string
	Unit string
	// Health is called every health interval; an error is a failure
	// (nil func: no health check).
	Health func() error
	// Restart restarts the component (first escalation step). nil, or an
	// error, escalates to failing the unit over.
	Restart func() error
	// Ready is the component's readiness gate: false while it could not
	// take over the active assignment without losing state (a checkpoint
	// replica still resynchronising, say). A unit with a component that
	// is not ready neither takes a free active assignment nor reports
	// itself ready, so its peers do not count it as the standby. It does
	// not touch an assignment the unit already holds. It runs on the node
	// loop: no blocking. It must become true once nothing better can be
	// had (no live writer to sync from), or the group stays unassigned.
	// nil: always ready.
	Ready func() bool
	// Assign is called whenever the unit's HA state or instances change:
	// e.g. the mgmt role moves its address on Active (gratuitous ARP) and
	// drops it on anything else. It runs on the node loop: no blocking.
	// Quiescing is delivered before a graceful hand-over; the role finishes
	// in-flight work before returning.
	Assign func(Assignment)
}

type component struct {
	Component
	restarts []time.Duration
}

type unit struct {
	su         ServiceUnit
	group      *ServiceGroup
	locked     bool
	failed     bool
	comps      []*component
	state      HAState
	sis        []string
	yieldUntil time.Duration
}

type remote struct {
	held  map[string]bool
	units []UnitReport
}

type asked struct {
	at       time.Duration
	inQuorum bool
}

type announce struct {
	slot uint8
	at   time.Duration
}

// FailoverRecord describes the last move of an active assignment to a
// unit of this node.
type FailoverRecord struct {
	Group string        `json:"group"`
	From  string        `json:"from"` // previous active unit ("" if unknown)
	To    string        `json:"to"`
	At    time.Duration `json:"at_ns"`
	// Duration is from the last time this node heard the previous active
	// claim the assignment to when this node holds it: an upper bound of
	// the outage as seen from here.
	Duration time.Duration `json:"duration_ns"`
	Reason   string        `json:"reason"`
}

// Node is one blade's HA core engine: membership, leases and availability
// management. It is a pure state machine: every method takes the current
// time of an injected clock (monotonic, any origin); nothing in it reads
// a clock, sleeps or starts goroutines. The caller delivers received
// frames with Receive, calls Tick at NextDeadline, and serialises all
// calls (ha.Runner does this for real blades, the simulation for tests).
type Node struct {
	cfg    Config
	self   uint8
	inc    uint64
	env    Env
	voters quorum.Voters
	timing quorum.Timing
	mem    *clm.Membership
	lessor *quorum.Lessor
	lessee *quorum.Lessee

	assigns []*assignment
	byKey   map[string]*assignment
	units   map[string]*unit // local units
	order   []string         // local unit names, config order

	remotes map[uint8]*remote
	// version counts the changes to what GroupStatus reports of a unit's
	// placement: its HA state, its instances, whether it is known here, its
	// readiness as its blade reports it (Version).
	version    uint64
	requesters map[string]map[uint8]asked
	announced  map[string]announce

	nextHB, nextHealth time.Duration
	// renewals are this voter's replies to holders renewing a key they
	// hold: they go out together in its next beat or lease message (or
	// when the oldest has waited an interval) instead of one frame per
	// requester. Under emulation every frame costs a millisecond of a
	// blade's CPU; a renewal's vote counts from its request's send time,
	// so the wait (at most an interval, of a lease of Misses >= 3
	// intervals) only uses some of its margin.
	renewals    []quorum.Reply
	renewalsDue time.Duration
	// Wire generations of the peers: the incarnation of each slot last
	// seen sending a beat (transport.TypeBeat), and a heartbeat of the
	// format before it (TypeHeartbeat). While a member that sends only the
	// old frames is up, this node sends the old frames as well, beside a
	// heartbeat-only beat that tells its own generation (a mixed shelf in
	// a rolling upgrade). oldWire makes this node one of the old
	// generation (mixed-shelf tests).
	beatFrom, oldFrom map[uint8]uint64
	oldWire           bool
	// bad counts frames whose payload did not decode; lastBad is the last
	// such error (badPayload).
	bad           uint64
	lastBad       string
	inQuorum      bool
	unitFailovers []time.Duration

	extracting      bool
	extractKeys     []string
	extractDone     func(ok bool)
	extractDeadline time.Duration

	// Carrier fencing (fence.go): this blade's own report, when it is
	// sent next, whether every own channel is down, the others' reports
	// and the slots fenced now.
	linksSet  bool
	linksDown []uint8
	nextLinks time.Duration
	isolated  bool
	reports   map[uint8]linkReport
	fenced    map[uint8]bool

	last    *FailoverRecord
	stopped bool
}

// NewNode returns the engine of slot self in incarnation inc (the
// transport epoch), started at now.
func NewNode(cfg Config, self uint8, inc uint64, now time.Duration, env Env) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := cfg.withDefaults()
	voters, err := quorum.NewVoters(c.Slots)
	if err != nil {
		return nil, fmt.Errorf("amf: %w", err)
	}
	timing := quorum.Timing{Lease: c.Timers.Detection(), Drift: c.Drift}
	if err := timing.Validate(); err != nil {
		return nil, fmt.Errorf("amf: %w", err)
	}
	mem, err := clm.New(self, inc, c.Slots, c.Timers)
	if err != nil {
		return nil, fmt.Errorf("amf: %w", err)
	}
	if env.Send == nil {
		return nil, errors.New("amf: Env.Send is nil")
	}
	n := &Node{
		cfg: c, self: self, inc: inc, env: env, voters: voters, timing: timing, mem: mem,
		lessor: quorum.NewLessor(self, timing, now), lessee: quorum.NewLessee(voters, timing, self, inc),
		byKey: map[string]*assignment{}, units: map[string]*unit{}, remotes: map[uint8]*remote{},
		requesters: map[string]map[uint8]asked{}, announced: map[string]announce{},
		beatFrom: map[uint8]uint64{}, oldFrom: map[uint8]uint64{},
		reports: map[uint8]linkReport{}, fenced: map[uint8]bool{}, nextLinks: never,
		nextHB: now, nextHealth: now + c.HealthInterval,
	}
	n.assigns = assignments(&n.cfg)
	for _, a := range n.assigns {
		n.byKey[a.key] = a
	}
	for gi := range n.cfg.Groups {
		g := &n.cfg.Groups[gi]
		for _, su := range g.Units {
			if su.Node == self {
				n.units[su.Name] = &unit{su: su, group: g}
				n.order = append(n.order, su.Name)
			}
		}
	}
	return n, nil
}

// Self is the node's slot.
func (n *Node) Self() uint8 { return n.self }

// Timing is the lease timing derived from the configuration.
func (n *Node) Timing() quorum.Timing { return n.timing }

// Register adds a component to a local unit.
func (n *Node) Register(c Component) error {
	u := n.units[c.Unit]
	if u == nil {
		return fmt.Errorf("amf: component %s: unit %q is not on slot %d", c.Name, c.Unit, n.self)
	}
	u.comps = append(u.comps, &component{Component: c})
	if c.Assign != nil && u.state != Unassigned {
		c.Assign(Assignment{Group: u.group.Name, Unit: u.su.Name, State: u.state, Instances: slices.Clone(u.sis)})
	}
	return nil
}

func (n *Node) publish(now time.Duration, k evt.Kind, subject, from, to, detail string) {
	if n.env.Publish != nil {
		n.env.Publish(evt.Event{At: now, Node: n.self, Kind: k, Subject: subject, From: from, To: to, Detail: detail})
	}
}

// NextDeadline is when Tick must be called next, given the time now.
func (n *Node) NextDeadline(now time.Duration) time.Duration {
	d := min(n.nextHB, n.nextHealth)
	if len(n.renewals) > 0 {
		d = min(d, n.renewalsDue)
	}
	if t, ok := n.mem.NextDeadline(); ok {
		d = min(d, t)
	}
	for _, k := range n.lessee.Keys() {
		if e := n.lessee.Expiry(k); e > now && e < d && n.stateUses(k) {
			d = e
		}
	}
	if n.extracting && n.extractDone != nil {
		d = min(d, n.extractDeadline)
	}
	if t, ok := n.lessor.NextDue(); ok && t > now {
		d = min(d, t)
	}
	if n.linksSet {
		d = min(d, n.nextLinks)
	}
	if t, ok := n.nextFenceCheck(now); ok {
		d = min(d, t)
	}
	return d
}

// stateUses reports whether a lease expiry changes some HA state, so its
// instant must be a tick: a role is told to stop at the lease's end.
func (n *Node) stateUses(key string) bool {
	if key == nodeKey(n.self) {
		return true
	}
	_, ok := n.byKey[key]
	return ok
}

// Tick runs timers: failure detection, health checks, heartbeats and
// lease requests, and steps down from expired leases.
func (n *Node) Tick(now time.Duration) {
	if n.stopped {
		return
	}
	for _, c := range n.mem.Tick(now) {
		n.membershipChange(now, c)
	}
	n.fence(now) // a reporter failed, or a report ran out
	n.linksTick(now)
	n.grantDue(now)
	if now >= n.nextHealth {
		n.nextHealth = now + n.cfg.HealthInterval
		n.checkHealth(now)
	}
	n.update(now)
	if now >= n.nextHB {
		n.nextHB = now + n.cfg.Timers.Interval
		n.beat(now)
	} else {
		n.kick(now)
	}
	if r := n.takeRenewals(now, false); len(r) > 0 {
		n.env.Send(transport.TypeLease, transport.Broadcast, MarshalLease(LeaseMsg{Replies: r}))
	}
	n.checkExtraction(now)
}

func (n *Node) membershipChange(now time.Duration, c clm.Change) {
	if c.Kind != clm.Joined {
		delete(n.remotes, c.Slot)
	}
	n.version++
	n.publish(now, evt.Membership, strconv.Itoa(int(c.Slot)), "", c.Kind.String(), fmt.Sprintf("incarnation %d", c.Inc))
}

// Receive handles one accepted frame.
func (n *Node) Receive(now time.Duration, f transport.Frame) {
	if n.stopped || n.fenced[f.From] {
		return // a fenced slot's frames still in flight are stale
	}
	switch f.Type {
	case transport.TypeLinks:
		n.receiveLinks(now, f)
	case transport.TypeHeartbeat:
		hb, err := UnmarshalHeartbeat(f.Payload)
		if err != nil {
			n.badPayload(f, err)
			return
		}
		n.oldFrom[f.From] = f.Epoch
		if !n.heartbeat(now, f, hb) {
			return
		}
	case transport.TypeBeat:
		if n.oldWire {
			return
		}
		hb, m, err := UnmarshalBeat(f.Payload, f.From, f.Epoch)
		if err != nil {
			n.badPayload(f, err)
			return
		}
		n.beatFrom[f.From] = f.Epoch
		n.heartbeat(now, f, hb)
		n.lease(now, f.From, m)
	case transport.TypeLease:
		m, err := UnmarshalLease(f.Payload, f.From, f.Epoch)
		if err != nil {
			n.badPayload(f, err)
			return
		}
		n.lease(now, f.From, m)
	case transport.TypeLeave:
		for _, c := range n.mem.Leave(now, f.From, f.Epoch) {
			n.membershipChange(now, c)
		}
	case transport.TypeAdmin:
		a, err := UnmarshalAdmin(f.Payload)
		if err != nil {
			n.badPayload(f, err)
			return
		}
		n.applyAdmin(now, a, fmt.Sprintf("from slot %d", f.From))
	default:
		return
	}
	n.update(now)
	n.kick(now)
	n.checkExtraction(now)
}

// badPayload counts an authenticated frame whose payload did not decode
// (a member's bug, or a firmware generation this one does not speak): it
// is dropped, and show ha shows the count and the last error.
func (n *Node) badPayload(f transport.Frame, err error) {
	n.bad++
	n.lastBad = fmt.Sprintf("%v (type %d from slot %d)", err, f.Type, f.From)
}

// sameReport says whether two reports of a unit show the same placement.
func sameReport(a, b UnitReport) bool {
	return a.Name == b.Name && a.Ready == b.Ready && a.State == b.State && slices.Equal(a.Instances, b.Instances)
}

// Version counts the changes to the units' placement as this node sees
// them: a local unit's HA state or instances, a remote unit's report
// (state, instances, readiness), a member joining, failing, leaving or
// being fenced. It moves whenever ckpt.GroupRoles of a GroupStatus can;
// a role that follows a group (its writer, the active hub) re-reads the
// group when it moves instead of polling (ha.Blade.Changed). Local
// readiness and lock states (the Oper column) are not counted.
func (n *Node) Version() uint64 { return n.version }

// heartbeat handles the heartbeat of member f.From (either frame
// generation); false: it comes from an older life of the sender.
func (n *Node) heartbeat(now time.Duration, f transport.Frame, hb Heartbeat) bool {
	for _, c := range n.mem.Receive(now, clm.Heartbeat{From: f.From, Inc: f.Epoch, Hear: hb.Hear}) {
		n.membershipChange(now, c)
	}
	if n.mem.Inc(f.From) != f.Epoch {
		return false // an older life of the sender
	}
	r := &remote{held: map[string]bool{}, units: hb.Units}
	for _, k := range hb.Held {
		r.held[k] = true
		n.announced[k] = announce{f.From, now}
	}
	if old := n.remotes[f.From]; old == nil || !slices.EqualFunc(old.units, r.units, sameReport) {
		n.version++
	}
	n.remotes[f.From] = r
	return true
}

// lease handles the lease message of member from: as a voter its
// requests and releases, as a requester the replies for it.
func (n *Node) lease(now time.Duration, from uint8, m LeaseMsg) {
	var out LeaseMsg
	for _, q := range m.Requests {
		n.noteRequester(now, q)
		renewal := q.Holding && n.lessor.Holder(q.Key, now) == q.From
		rep := n.lessor.Request(now, q, n.preferred(now, q.Key, q.From))
		if renewal && rep.Granted {
			n.queueRenewal(now, rep)
			continue
		}
		// A grant that moves a key, or a refusal, goes out at once:
		// failover and split-vote resolution must not wait.
		out.Replies = append(out.Replies, rep)
	}
	for _, p := range m.Replies {
		if p.To == n.self {
			n.lessee.Reply(now, p)
		}
	}
	for _, r := range m.Releases {
		n.lessor.Release(r)
		// It no longer asks: its last requests must not keep it preferred
		// for two more intervals, or a handover (switchover, lock) waits
		// that long for the voters to grant the next unit.
		delete(n.requesters[r.Key], from)
	}
	if len(out.Replies) > 0 {
		n.env.Send(transport.TypeLease, from, MarshalLease(out))
	}
}

// queueRenewal keeps a renewal for the next batch.
func (n *Node) queueRenewal(now time.Duration, rep quorum.Reply) {
	if len(n.renewals) == 0 {
		// The next beat (due within an interval) takes them; this is
		// the bound if the beat is late.
		n.renewalsDue = now + n.cfg.Timers.Interval
	}
	n.renewals = append(n.renewals, rep)
}

// maxRenewals bounds one batch (a reply is ~30 bytes; frames stay far
// below the transport's payload limit).
const maxRenewals = 32

// takeRenewals returns the queued renewals if they must go now (due, or
// force: a lease message is going out anyway) and forgets them.
func (n *Node) takeRenewals(now time.Duration, force bool) []quorum.Reply {
	if len(n.renewals) == 0 || (!force && now < n.renewalsDue && len(n.renewals) < maxRenewals) {
		return nil
	}
	r := n.renewals
	n.renewals = nil
	return r
}

// grantDue answers requests this voter refused only because another
// holder's promise was running, now that it has ended.
func (n *Node) grantDue(now time.Duration) {
	for _, q := range n.lessor.Due(now, 2*n.cfg.Timers.Interval) {
		if !n.preferred(now, q.Key, q.From) {
			continue
		}
		rep := n.lessor.Request(now, q, true)
		if !rep.Granted {
			continue
		}
		if q.From == n.self {
			n.lessee.Reply(now, rep)
			continue
		}
		n.env.Send(transport.TypeLease, q.From, MarshalLease(LeaseMsg{Replies: []quorum.Reply{rep}}))
	}
}

func (n *Node) noteRequester(now time.Duration, q quorum.Request) {
	m := n.requesters[q.Key]
	if m == nil {
		m = map[uint8]asked{}
		n.requesters[q.Key] = m
	}
	m[q.From] = asked{now, q.InQuorum}
}

// preferred is the succession policy of this voter: grant a free key to
// the first unit in the key's succession order whose node asked for it
// within the last two heartbeat intervals, is two-way connected to us and
// said it is in the quorum partition (so it can win; under asymmetric
// faults a higher-ranked unit that cannot reach a quorum must not block a
// lower-ranked one that can). If no asking unit is in the quorum, the
// first connected one is preferred.
func (n *Node) preferred(now time.Duration, key string, from uint8) bool {
	if key == nodeKey(from) {
		return n.mem.Connected(from)
	}
	a := n.byKey[key]
	if a == nil {
		return false
	}
	recent := n.requesters[key]
	for _, needQuorum := range []bool{true, false} {
		for _, u := range a.order {
			q, ok := recent[u.Node]
			if ok && now-q.at <= 2*n.cfg.Timers.Interval && n.mem.Connected(u.Node) && (q.inQuorum || !needQuorum) {
				return u.Node == from
			}
		}
	}
	return false
}

func (n *Node) operational(u *unit) bool { return !u.locked && !u.failed && !n.extracting }

// ready reports whether every component of u passes its readiness gate.
func (n *Node) ready(u *unit) bool {
	for _, c := range u.comps {
		if c.Ready != nil && !c.Ready() {
			return false
		}
	}
	return true
}

// localUnit is this node's unit in a's succession order, if any.
func (n *Node) localUnit(a *assignment) *unit {
	for _, su := range a.order {
		if su.Node == n.self {
			return n.units[su.Name]
		}
	}
	return nil
}

// heldElsewhere reports whether a live member announces holding key.
func (n *Node) heldElsewhere(key string) bool {
	for slot, r := range n.remotes {
		if r.held[key] && n.mem.Up(slot) {
			return true
		}
	}
	return false
}

// wants lists the lease keys this node should request now.
func (n *Node) wants(now time.Duration) []string {
	if n.isolated {
		return nil // no channel has carrier: hold nothing (fence.go)
	}
	var keys []string
	if n.voters.Has(n.self) {
		keys = append(keys, nodeKey(n.self))
	}
	type cand struct {
		key  string
		rank int
	}
	free := map[*unit][]cand{}
	for _, a := range n.assigns {
		u := n.localUnit(a)
		if u == nil || !n.operational(u) || now < u.yieldUntil {
			continue
		}
		if n.lessee.Holds(a.key, now) {
			keys = append(keys, a.key)
			continue
		}
		if !n.ready(u) || n.heldElsewhere(a.key) {
			continue
		}
		rank := slices.IndexFunc(a.order, func(s ServiceUnit) bool { return s.Name == u.su.Name })
		free[u] = append(free[u], cand{a.key, rank})
	}
	for _, name := range n.order {
		u := n.units[name]
		cs := free[u]
		if len(cs) == 0 {
			continue
		}
		room := len(cs)
		if u.group.Model != TwoN {
			held := 0
			for _, a := range n.assigns {
				if a.group == u.group && n.lessee.Holds(a.key, now) {
					held++
				}
			}
			room = u.group.PerUnit - held
		}
		sort.SliceStable(cs, func(i, j int) bool { return cs[i].rank < cs[j].rank })
		for i := 0; i < len(cs) && i < room; i++ {
			keys = append(keys, cs[i].key)
		}
	}
	return keys
}

// sendRequests asks the voters (itself included) for every wanted key and
// releases keys no longer wanted, in a lease frame of its own (sent at
// once: a key became wanted).
func (n *Node) sendRequests(now time.Duration) {
	if m := n.requestMsg(now); !m.empty() {
		m.Replies = n.takeRenewals(now, true)
		n.env.Send(transport.TypeLease, transport.Broadcast, MarshalLease(m))
	}
	n.update(now)
}

// beat sends the interval's heartbeat with the interval's lease message
// (requests, releases and the queued renewals) in the same frame.
func (n *Node) beat(now time.Duration) {
	m := n.requestMsg(now)
	m.Replies = n.takeRenewals(now, true)
	n.sendHeartbeat(now, m)
	n.update(now)
}

// requestMsg asks the voters (itself included, answered here at once)
// for every wanted key and releases the keys no longer wanted.
func (n *Node) requestMsg(now time.Duration) LeaseMsg {
	want := n.wants(now)
	var m LeaseMsg
	for _, k := range n.lessee.Keys() {
		if !slices.Contains(want, k) {
			m.Releases = append(m.Releases, n.release(k))
		}
	}
	inQ := n.lessee.Holds(nodeKey(n.self), now)
	for _, k := range want {
		q := n.lessee.Request(now, k)
		q.InQuorum = inQ
		m.Requests = append(m.Requests, q)
		if n.voters.Has(n.self) {
			n.noteRequester(now, q)
			n.lessee.Reply(now, n.lessor.Request(now, q, n.preferred(now, k, n.self)))
		}
	}
	return m
}

// kick sends requests at once when a key became wanted that is not being
// pursued yet (the holder failed, was released, a unit was unlocked), so
// failover does not wait for the next heartbeat.
func (n *Node) kick(now time.Duration) {
	pursued := n.lessee.Keys()
	for _, k := range n.wants(now) {
		if !slices.Contains(pursued, k) {
			n.sendRequests(now)
			return
		}
	}
}

// release drops key locally (own voter included) and returns the message.
func (n *Node) release(key string) quorum.Release {
	r := n.lessee.Release(key)
	if n.env.Released != nil {
		n.env.Released(key)
	}
	n.lessor.Release(r)
	delete(n.requesters[key], n.self)
	return r
}

// sendHeartbeat sends this member's heartbeat with m in one beat frame;
// on a mixed shelf (mixed) as the old frames too.
func (n *Node) sendHeartbeat(now time.Duration, m LeaseMsg) {
	hb := n.heartbeatMsg(now)
	if !n.oldWire && !n.mixed() {
		n.env.Send(transport.TypeBeat, transport.Broadcast, MarshalBeat(hb, m))
		return
	}
	n.env.Send(transport.TypeHeartbeat, transport.Broadcast, MarshalHeartbeat(hb))
	if !n.oldWire {
		n.env.Send(transport.TypeBeat, transport.Broadcast, MarshalBeat(hb, LeaseMsg{}))
	}
	if !m.empty() {
		n.env.Send(transport.TypeLease, transport.Broadcast, MarshalLease(m))
	}
}

// mixed reports whether a member that speaks only the frames from before
// TypeBeat is up: it needs heartbeats and lease messages as separate
// frames.
func (n *Node) mixed() bool {
	for slot, inc := range n.oldFrom {
		if n.beatFrom[slot] != inc && n.mem.Inc(slot) == inc && n.mem.Up(slot) {
			return true
		}
	}
	return false
}

func (n *Node) heartbeatMsg(now time.Duration) Heartbeat {
	hb := Heartbeat{Hear: n.mem.Heartbeat().Hear}
	for _, k := range n.lessee.Keys() {
		if n.lessee.Holds(k, now) && k != nodeKey(n.self) {
			hb.Held = append(hb.Held, k)
		}
	}
	for _, name := range n.order {
		u := n.units[name]
		// A unit handing over is not ready, so the others see the next
		// unit as standby and do not wait for it.
		ready := n.operational(u) && now >= u.yieldUntil && n.ready(u)
		hb.Units = append(hb.Units, UnitReport{Name: name, Ready: ready, State: u.state, Instances: u.sis})
	}
	return hb
}

// update derives every local unit's HA state from the leases held now and
// tells the roles about changes.
func (n *Node) update(now time.Duration) {
	inQ := n.lessee.Holds(nodeKey(n.self), now)
	if inQ != n.inQuorum {
		n.inQuorum = inQ
		to := "minority"
		if inQ {
			to = "quorum"
		}
		n.publish(now, evt.Quorum, strconv.Itoa(int(n.self)), "", to, "")
	}
	for _, name := range n.order {
		u := n.units[name]
		g := u.group
		op := n.operational(u)
		st, sis := Unassigned, []string(nil)
		switch g.Model {
		case TwoN:
			switch {
			case op && n.lessee.Holds(groupKey(g.Name), now):
				st, sis = Active, g.Instances
			case op && n.isStandby(u):
				st = Standby
			}
		case NPlusM, NoRedundancy:
			for _, a := range n.assigns {
				if a.group == g && n.lessee.Holds(a.key, now) {
					sis = append(sis, a.si)
				}
			}
			switch {
			case op && len(sis) > 0:
				st = Active
			case op && g.Model == NPlusM:
				st, sis = Standby, nil
			default:
				sis = nil
			}
		case NWayActive:
			if op && inQ {
				st, sis = Active, g.Instances
			}
		}
		n.setState(now, u, st, sis)
	}
}

// isStandby reports whether u is the first ready unit after the active in
// its 2N group's succession order, as far as this node knows.
func (n *Node) isStandby(u *unit) bool {
	key := groupKey(u.group.Name)
	for _, su := range u.group.Units {
		if su.Name == u.su.Name {
			return true
		}
		r := n.remotes[su.Node]
		if r == nil || !n.mem.Connected(su.Node) || r.held[key] {
			continue
		}
		for _, rep := range r.units {
			if rep.Name == su.Name && rep.Ready {
				return false
			}
		}
	}
	return false
}

func (n *Node) setState(now time.Duration, u *unit, st HAState, sis []string) {
	if st == u.state && slices.Equal(sis, u.sis) {
		return
	}
	old := u.state
	effective := time.Duration(0)
	if old == Active && st != Active {
		effective = n.activeEnd(u, now)
	}
	u.state, u.sis = st, slices.Clone(sis)
	n.version++
	if n.env.Publish != nil {
		n.env.Publish(evt.Event{At: now, Effective: effective, Node: n.self, Kind: evt.Assignment, Subject: u.su.Name, Group: u.group.Name,
			From: old.String(), To: st.String(), Detail: fmt.Sprintf("instances %v", sis)})
	}
	if st == Active && old != Active {
		n.noteFailover(now, u)
	}
	a := Assignment{Group: u.group.Name, Unit: u.su.Name, State: st, Instances: slices.Clone(sis)}
	for _, c := range u.comps {
		if c.Assign != nil {
			c.Assign(a)
		}
	}
}

// activeEnd is when u's active assignment really ended: the end of the
// lease behind it if that has passed (the role is told at the tick after),
// else now (released, locked, failed).
func (n *Node) activeEnd(u *unit, now time.Duration) time.Duration {
	var keys []string
	switch u.group.Model {
	case TwoN:
		keys = []string{groupKey(u.group.Name)}
	case NWayActive:
		keys = []string{nodeKey(n.self)}
	default:
		for _, si := range u.sis {
			keys = append(keys, instanceKey(u.group.Name, si))
		}
	}
	end := time.Duration(0)
	for _, k := range keys {
		e := n.lessee.Expiry(k)
		if e == 0 || e > now {
			return now
		}
		end = max(end, e)
	}
	if end == 0 {
		return now
	}
	return end
}

func (n *Node) noteFailover(now time.Duration, u *unit) {
	rec := FailoverRecord{Group: u.group.Name, To: u.su.Name, At: now, Reason: "assignment"}
	for _, a := range n.assigns {
		if a.group != u.group || !n.lessee.Holds(a.key, now) {
			continue
		}
		an, ok := n.announced[a.key]
		if !ok || an.slot == n.self {
			continue
		}
		for _, su := range a.order {
			if su.Node == an.slot {
				rec.From = su.Name
			}
		}
		rec.Duration = now - an.at
		// The previous holder still in the view handed over on purpose
		// (switchover, lock, hot-swap, fault); otherwise it was lost.
		rec.Reason = "failover"
		if n.mem.Up(an.slot) {
			rec.Reason = "handover"
		}
		delete(n.announced, a.key)
	}
	if rec.From == "" {
		return // first assignment, not a failover
	}
	n.last = &rec
	if n.env.Publish != nil {
		n.env.Publish(evt.Event{At: now, Node: n.self, Kind: evt.Failover, Subject: u.group.Name, Group: u.group.Name,
			From: rec.From, To: rec.To, Detail: fmt.Sprintf("%s in %v", rec.Reason, rec.Duration)})
	}
}

// giveUp stops u's active assignments and releases their leases; graceful
// goes through quiescing and quiesced first.
func (n *Node) giveUp(now time.Duration, u *unit, graceful bool) []string {
	if graceful && u.state == Active {
		n.setState(now, u, Quiescing, u.sis)
		n.setState(now, u, Quiesced, u.sis)
	}
	var m LeaseMsg
	var keys []string
	for _, a := range n.assigns {
		if a.group == u.group && slices.Contains(n.lessee.Keys(), a.key) {
			if n.lessee.Holds(a.key, now) {
				keys = append(keys, a.key)
			}
			m.Releases = append(m.Releases, n.release(a.key))
		}
	}
	n.update(now)
	// Tell the others at once that the keys are free: the releases and
	// the heartbeat that no longer holds them, in one frame.
	n.sendHeartbeat(now, m)
	return keys
}

// Switchover moves the active assignments of group to the next unit
// gracefully. The active unit's node performs it; called on any node, it
// is forwarded to all.
func (n *Node) Switchover(now time.Duration, group string) error {
	return n.admin(now, OpSwitchover, group)
}

// Lock takes a unit out of service (gracefully handing over first).
func (n *Node) Lock(now time.Duration, unit string) error { return n.admin(now, OpLock, unit) }

// Unlock returns a locked unit to service.
func (n *Node) Unlock(now time.Duration, unit string) error { return n.admin(now, OpUnlock, unit) }

// Repair clears a unit's failure after escalation so it may serve again.
func (n *Node) Repair(now time.Duration, unit string) error { return n.admin(now, OpRepair, unit) }

// ErrUnknown is returned for admin operations on unknown names.
var ErrUnknown = errors.New("amf: unknown")

// ErrNoActive is returned for a switchover of a group none of whose units
// this node sees active: there is nothing to hand over.
var ErrNoActive = errors.New("amf: no active unit")

func (n *Node) admin(now time.Duration, op AdminOp, target string) error {
	a := Admin{Op: op, Target: target}
	if op == OpSwitchover {
		var g *ServiceGroup
		for i := range n.cfg.Groups {
			if n.cfg.Groups[i].Name == target {
				g = &n.cfg.Groups[i]
			}
		}
		if g == nil {
			return fmt.Errorf("amf: switchover %q: %w service group", target, ErrUnknown)
		}
		if g.Model == NWayActive {
			return fmt.Errorf("amf: switchover %s: model %s has nothing to switch over", target, g.Model)
		}
		// The units to hand over are the ones active now, as this node
		// sees them; a unit the switchover itself makes active keeps the
		// group, whenever the frame reaches its node.
		for _, u := range n.groupStatus(g).Units {
			if u.Known && u.State == Active {
				a.Units = append(a.Units, u.Name)
			}
		}
		if len(a.Units) == 0 {
			return fmt.Errorf("amf: switchover %s: %w seen from slot %d", target, ErrNoActive, n.self)
		}
	} else if !n.knownUnit(target) {
		return fmt.Errorf("amf: %s %q: %w service unit", op, target, ErrUnknown)
	}
	sent := a
	if n.oldWire || n.mixed() {
		sent.Units = nil // a member from before beats decodes only op and target
	}
	n.env.Send(transport.TypeAdmin, transport.Broadcast, MarshalAdmin(sent))
	n.applyAdmin(now, a, "local")
	n.kick(now)
	return nil
}

func (n *Node) knownUnit(name string) bool {
	for _, g := range n.cfg.Groups {
		for _, u := range g.Units {
			if u.Name == name {
				return true
			}
		}
	}
	return false
}

// Apply performs an admin operation on this node only (no forwarding):
// for state replicated by other means (package cfg), e.g. a restarted
// blade learning that its unit is locked.
func (n *Node) Apply(now time.Duration, op AdminOp, target string) {
	n.applyAdmin(now, Admin{Op: op, Target: target}, "replicated")
	n.kick(now)
}

// Locked reports whether a local unit is admin-locked.
func (n *Node) Locked(unit string) (locked, local bool) {
	u := n.units[unit]
	if u == nil {
		return false, false
	}
	return u.locked, true
}

func (n *Node) applyAdmin(now time.Duration, a Admin, origin string) {
	op, target := a.Op, a.Target
	switch op {
	case OpSwitchover:
		if len(a.Units) > 0 {
			origin += ", away from " + strings.Join(a.Units, ",")
		}
		for _, name := range n.order {
			u := n.units[name]
			if u.group.Name != target || u.state != Active {
				continue
			}
			if len(a.Units) > 0 && !slices.Contains(a.Units, name) {
				// Active since the request: by this switchover, whose
				// frame reached the old active's node first. Handing the
				// group back would undo what was asked.
				origin += ", not for " + name + " (active since)"
				continue
			}
			// Stay out of the way for two leases so the next unit in
			// succession takes over; if none does, we ask again after.
			u.yieldUntil = now + 2*n.timing.Lease
			n.giveUp(now, u, true)
		}
	case OpLock:
		if u := n.units[target]; u != nil && !u.locked {
			u.locked = true
			n.giveUp(now, u, true)
		}
	case OpUnlock:
		if u := n.units[target]; u != nil {
			u.locked = false
		}
	case OpRepair:
		if u := n.units[target]; u != nil {
			u.failed = false
			for _, c := range u.comps {
				c.restarts = nil
			}
		}
	}
	if _, local := n.units[target]; local || op == OpSwitchover {
		n.publish(now, evt.Admin, target, "", op.String(), origin)
	}
	n.update(now)
}

// HandleOpen starts a graceful extraction (ATCA hot-swap handle opened):
// every local unit hands its active assignments over; done is called with
// true once a live member holds each of them, or false if that did not
// happen within two leases and two intervals (no unit could take over).
// The blade may be released after done. HandleClose cancels it.
func (n *Node) HandleOpen(now time.Duration, done func(ok bool)) {
	n.extracting = true
	n.extractKeys = nil
	for _, name := range n.order {
		n.extractKeys = append(n.extractKeys, n.giveUp(now, n.units[name], true)...)
	}
	n.extractDone = done
	n.extractDeadline = now + 2*n.timing.Lease + 2*n.cfg.Timers.Interval
	n.publish(now, evt.Admin, strconv.Itoa(int(n.self)), "", "handle-open", fmt.Sprintf("handing over %v", n.extractKeys))
	n.checkExtraction(now)
}

// HandleClose returns the node's units to service after HandleOpen.
func (n *Node) HandleClose(now time.Duration) {
	n.extracting = false
	n.extractDone = nil
	n.publish(now, evt.Admin, strconv.Itoa(int(n.self)), "", "handle-close", "")
	n.update(now)
	n.kick(now)
}

func (n *Node) checkExtraction(now time.Duration) {
	if !n.extracting || n.extractDone == nil {
		return
	}
	all := true
	for _, k := range n.extractKeys {
		if !n.heldElsewhere(k) {
			all = false
		}
	}
	if all || now >= n.extractDeadline {
		done := n.extractDone
		n.extractDone = nil
		n.publish(now, evt.Admin, strconv.Itoa(int(n.self)), "", "extraction-ready", fmt.Sprintf("handed over: %v", all))
		done(all)
	}
}

// Stop leaves the shelf gracefully: hands over, tells the others, stops.
func (n *Node) Stop(now time.Duration) {
	for _, name := range n.order {
		n.giveUp(now, n.units[name], true)
	}
	n.env.Send(transport.TypeLeave, transport.Broadcast, nil)
	n.stopped = true
}

func (n *Node) checkHealth(now time.Duration) {
	for _, name := range n.order {
		u := n.units[name]
		if u.failed {
			continue
		}
		for _, c := range u.comps {
			if c.Health == nil {
				continue
			}
			err := c.Health()
			if err == nil {
				continue
			}
			c.restarts = slices.DeleteFunc(c.restarts, func(t time.Duration) bool { return now-t > n.cfg.Escalation.Window })
			if c.Restart != nil && len(c.restarts) < n.cfg.Escalation.MaxRestarts {
				c.restarts = append(c.restarts, now)
				rerr := c.Restart()
				n.publish(now, evt.Fault, c.Name, "", "restart", fmt.Sprintf("health: %v; restart %d: %v", err, len(c.restarts), rerr))
				if rerr == nil {
					continue
				}
			}
			n.failUnit(now, u, fmt.Sprintf("component %s: %v", c.Name, err))
			break
		}
	}
}

func (n *Node) failUnit(now time.Duration, u *unit, reason string) {
	u.failed = true
	n.publish(now, evt.Fault, u.su.Name, "", "unit-failover", reason)
	n.giveUp(now, u, false)
	n.unitFailovers = slices.DeleteFunc(n.unitFailovers, func(t time.Duration) bool { return now-t > n.cfg.Escalation.Window })
	n.unitFailovers = append(n.unitFailovers, now)
	if len(n.unitFailovers) > n.cfg.Escalation.MaxUnitFailovers {
		n.unitFailovers = nil
		n.publish(now, evt.Fault, strconv.Itoa(int(n.self)), "", "node-failover", reason)
		for _, name := range n.order {
			if v := n.units[name]; !v.failed {
				v.failed = true
				n.giveUp(now, v, false)
			}
		}
		if n.env.NodeFailover != nil {
			n.env.NodeFailover(reason)
		}
	}
}
