// Package hubpath keeps a node blade's traffic on its channel toward the hub that runs the
// shelf's data path. A node blade has base0 to hub slot 1 and base1 to hub slot 2; the HA
// transport uses both (one plane address on each), but an address a node blade puts on both
// channels (the management address) leaves through whichever connected route the kernel
// lists first, and the core network sends to whichever MAC it last heard. Path prefers the
// channel toward the hub whose unit is active in the `switch` service group, or the other
// one while that channel has no carrier (the hub was pulled; the HA core notices later):
// the connected route of each shared prefix through the preferred channel gets metric 0,
// the other metric 10 (kept as the fallback), and every shared address is announced from
// the preferred channel by gratuitous ARP whenever the choice or a carrier changes, so the
// hubs' FDBs and the core's ARP caches follow at once. No bond: the plane addresses, and so
// the HA transport's two paths, stay where they are.
//
// A node role wires it with one call after its HA hook has the ha.Blade:
//
//	hubpath.Follow(b, h) // b *blade.Blade, h *ha.Blade; runs until the blade's context ends
//
// It also gives the blade `show hubpath [json]` (View: the channel in use, the active hub,
// the carriers, counters). The mgmt blades (management address) and the EPON blades
// (upstream data, blades/epon Upstream) call it.
//
// Both hubs forward their node channels and the inter-switch link (see blades/switch), so a
// frame sent toward either live hub reaches the active hub's uplinks; the preference saves
// the hop over isl0 and keeps a node off a hub that is gone.
package hubpath

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/cgoa/cgoa/netstack/garp"
)

// Metrics of the connected routes of a shared prefix.
const (
	PreferredMetric = 0
	FallbackMetric  = 10
)

// Preferred is the index (0: base0, 1: base1) of the channel to use, given the slot of the
// active hub (1 or 2; 0 when none is known) and the channels' carriers: the one toward the
// active hub while it has carrier, else the other one if it has, else the active hub's.
func Preferred(activeHub int, carrier [2]bool) int {
	want := 0
	if activeHub == 2 {
		want = 1
	}
	if !carrier[want] && carrier[1-want] {
		return 1 - want
	}
	return want
}

// KnownHub is the active hub to follow: now, or while now is 0 (no unit of the switch group
// shows active: a hub rebooting next to the active one can make the group's status flicker
// for a heartbeat, and in the middle of a failover none is active yet) the last one known.
// Moving traffic on an unknown would send it to hub 1's channel for a moment; carrier, not
// the HA view, is what moves it off a dead hub at once.
func KnownHub(now, last int) int {
	if now == 0 {
		return last
	}
	return now
}

// Config sets a Path up.
type Config struct {
	// Ports are the channels to hub slot 1 and hub slot 2 (default base0, base1).
	Ports [2]string
	// ActiveHub returns the slot of the hub active in the switch group (0: unknown). It is
	// read when Nudge is called and every Poll; it must be cheap.
	ActiveHub func() int
	// Poll is how often ActiveHub is read without a Nudge (default 1 s): a backstop, as
	// the follower of the switch group nudges the Path on every change (Follow).
	Poll time.Duration
	// NetNS is a network namespace path to work in (tests); empty is the process's own.
	NetNS string
	Logf  func(string, ...any)
}

// Path is the running preference.
type Path struct {
	cfg Config

	Changes atomic.Uint64 // times the preferred channel changed
	GARPs   atomic.Uint64 // gratuitous ARPs sent
	Errors  atomic.Uint64 // failed route or ARP operations
	// Reconciles counts the decisions taken (each lists links, addresses and routes over
	// netlink, which costs an emulated blade milliseconds): they follow changes, not polls.
	Reconciles atomic.Uint64
	polls      atomic.Uint64 // reads of the active hub (tests)
	nudge      chan struct{}
	// garp keeps an ARP socket per channel for the announcements.
	garp *garp.Announcer

	mu   sync.Mutex
	pref int // -1 until the first decision
	last state
}

// View is what `show hubpath` prints: the channel in use and why.
type View struct {
	Current   string    `json:"current"`    // preferred channel ("" before the first decision)
	ActiveHub int       `json:"active_hub"` // slot active in the switch group (0: unknown)
	Ports     [2]string `json:"ports"`
	Carrier   [2]bool   `json:"carrier"`
	Shared    string    `json:"shared"` // addresses on both channels, whose routes it steers
	Changes   uint64    `json:"changes"`
	GARPs     uint64    `json:"garps"`
	Errors    uint64    `json:"errors"`
}

// View returns the path's state.
func (p *Path) View() View {
	p.mu.Lock()
	defer p.mu.Unlock()
	v := View{ActiveHub: p.last.hub, Ports: p.cfg.Ports, Carrier: p.last.carrier, Shared: p.last.shared,
		Changes: p.Changes.Load(), GARPs: p.GARPs.Load(), Errors: p.Errors.Load()}
	if p.pref >= 0 {
		v.Current = p.cfg.Ports[p.pref]
	}
	return v
}

// New makes a Path.
func New(cfg Config) *Path {
	if cfg.Ports[0] == "" {
		cfg.Ports = [2]string{"base0", "base1"}
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.ActiveHub == nil {
		cfg.ActiveHub = func() int { return 0 }
	}
	return &Path{cfg: cfg, pref: -1, garp: garp.New(cfg.NetNS), nudge: make(chan struct{}, 1)}
}

// Nudge has the Path read ActiveHub now (the switch group's placement changed).
func (p *Path) Nudge() {
	select {
	case p.nudge <- struct{}{}:
	default:
	}
}

// Current is the preferred channel's name ("" before the first decision).
func (p *Path) Current() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pref < 0 {
		return ""
	}
	return p.cfg.Ports[p.pref]
}

// Run keeps the preference until ctx ends.
func (p *Path) Run(ctx context.Context) error {
	nc := &netlink.Config{Groups: 1<<(unix.RTNLGRP_LINK-1) | 1<<(unix.RTNLGRP_IPV4_IFADDR-1) | 1<<(unix.RTNLGRP_IPV4_ROUTE-1)}
	var nsf *os.File
	if p.cfg.NetNS != "" {
		f, err := os.Open(p.cfg.NetNS)
		if err != nil {
			return fmt.Errorf("hubpath: %w", err)
		}
		defer f.Close()
		nsf = f
		nc.NetNS = int(f.Fd())
	}
	// The announcement sockets are opened now: a hub failover moves traffic and announces at
	// once. A channel the blade lacks (a one-hub shelf) fails here and at use, harmlessly.
	_ = p.garp.Open(p.cfg.Ports[:]...)
	defer p.garp.Close()
	watch, err := rtnetlink.Dial(nc)
	if err != nil {
		return fmt.Errorf("hubpath: watch: %w", err)
	}
	defer watch.Close()
	var cc *netlink.Config
	if nsf != nil {
		cc = &netlink.Config{NetNS: int(nsf.Fd())}
	}
	conn, err := rtnetlink.Dial(cc)
	if err != nil {
		return fmt.Errorf("hubpath: %w", err)
	}
	defer conn.Close()

	poke := make(chan struct{}, 1)
	kick := func() {
		select {
		case poke <- struct{}{}:
		default:
		}
	}
	// A carrier change is decided at once (a hub pulled: traffic moves now). Address and
	// route changes come in bursts (a takeover adds the address on each channel, and the
	// routes this Path sets echo back) and are decided once the burst is over, settle after
	// the last: each decision costs an emulated blade netlink dumps on the takeover path.
	settled := time.AfterFunc(time.Hour, kick)
	settled.Stop()
	defer settled.Stop()
	go func() {
		for {
			msgs, _, err := watch.Receive()
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				kick()
				continue
			}
			if slices.ContainsFunc(msgs, func(m rtnetlink.Message) bool { _, ok := m.(*rtnetlink.LinkMessage); return ok }) {
				kick()
			} else {
				settled.Reset(settle)
			}
		}
	}()
	go func() {
		<-ctx.Done()
		watch.SetReadDeadline(time.Unix(1, 0))
	}()
	poll := time.NewTicker(p.cfg.Poll)
	defer poll.Stop()
	// The netlink events drive the decisions; the backstop only repairs what a lost event
	// (a full socket buffer) would leave, and each pass costs an emulated blade several
	// netlink dumps.
	safety := time.NewTicker(safetyPeriod)
	defer safety.Stop()
	last := state{pref: -1}
	kick()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-poke:
		case <-safety.C:
		case <-p.nudge:
			p.polls.Add(1)
			if hub := KnownHub(p.cfg.ActiveHub(), last.hub); hub == last.hub {
				continue
			}
		case <-poll.C:
			p.polls.Add(1)
			if hub := KnownHub(p.cfg.ActiveHub(), last.hub); hub == last.hub {
				continue
			}
		}
		last = p.reconcile(conn, last)
		p.mu.Lock()
		p.last = last
		p.mu.Unlock()
	}
}

// settle is how long the Path waits after an address or route change before it decides
// (changes in a burst are decided once).
const settle = 30 * time.Millisecond

// safetyPeriod is how often the Path decides again without any event.
const safetyPeriod = 5 * time.Second

// state is what the last reconcile acted on.
type state struct {
	hub     int
	carrier [2]bool
	pref    int
	shared  string // shared addresses, for change detection
}

// reconcile decides the preferred channel and puts the routes and announcements in line.
func (p *Path) reconcile(c *rtnetlink.Conn, last state) state {
	p.Reconciles.Add(1)
	st := state{hub: KnownHub(p.cfg.ActiveHub(), last.hub)}
	var idx [2]uint32
	links, err := c.Link.List()
	if err != nil {
		p.Errors.Add(1)
		return last
	}
	for i, name := range p.cfg.Ports {
		l, err := linkByName(links, name)
		if err != nil {
			// A channel is missing (a one-hub shelf): nothing to choose. The hub read is
			// kept, so that the poll does not come back here until the active hub changes.
			last.hub = st.hub
			return last
		}
		idx[i] = l.Index
		st.carrier[i] = l.Flags&unix.IFF_UP != 0 && l.Attributes != nil &&
			(l.Attributes.OperationalState == rtnetlink.OperStateUp || l.Attributes.OperationalState == rtnetlink.OperStateUnknown)
	}
	st.pref = Preferred(st.hub, st.carrier)
	shared, err := sharedPrefixes(c, idx)
	if err != nil {
		p.Errors.Add(1)
		return last
	}
	st.shared = fmt.Sprint(shared)
	if err := p.setRoutes(c, idx, st.pref, shared); err != nil {
		p.Errors.Add(1)
		p.cfg.Logf("hubpath: routes: %v", err)
	}
	if st.pref != last.pref || st.carrier != last.carrier || st.shared != last.shared {
		if st.pref != last.pref {
			p.Changes.Add(1)
			p.cfg.Logf("hubpath: traffic via %s (active hub %d, carrier %v)", p.cfg.Ports[st.pref], st.hub, st.carrier)
		}
		p.mu.Lock()
		p.pref = st.pref
		p.mu.Unlock()
		if len(shared) > 0 && st.carrier[st.pref] {
			if err := p.announce(p.cfg.Ports[st.pref], shared); err != nil {
				p.Errors.Add(1)
				p.cfg.Logf("hubpath: gratuitous ARP: %v", err)
			}
		}
	}
	return st
}

func linkByName(ls []rtnetlink.LinkMessage, name string) (rtnetlink.LinkMessage, error) {
	for _, l := range ls {
		if l.Attributes != nil && l.Attributes.Name == name {
			return l, nil
		}
	}
	return rtnetlink.LinkMessage{}, fmt.Errorf("no %s", name)
}

// sharedPrefixes lists the IPv4 addresses (with their prefix length) on both channels.
func sharedPrefixes(c *rtnetlink.Conn, idx [2]uint32) ([]netip.Prefix, error) {
	as, err := c.Address.List()
	if err != nil {
		return nil, err
	}
	on := [2]map[netip.Prefix]bool{{}, {}}
	for _, a := range as {
		if a.Family != unix.AF_INET || a.Attributes == nil {
			continue
		}
		ip, ok := netip.AddrFromSlice(a.Attributes.Address.To4())
		if !ok {
			continue
		}
		for i := range idx {
			if a.Index == idx[i] {
				on[i][netip.PrefixFrom(ip, int(a.PrefixLength))] = true
			}
		}
	}
	var out []netip.Prefix
	for pfx := range on[0] {
		if on[1][pfx] {
			out = append(out, pfx)
		}
	}
	return out, nil
}

// setRoutes gives each shared prefix's connected route through the preferred channel metric
// 0 and through the other FallbackMetric, replacing the routes the kernel made.
func (p *Path) setRoutes(c *rtnetlink.Conn, idx [2]uint32, pref int, shared []netip.Prefix) error {
	if len(shared) == 0 {
		return nil
	}
	rs, err := c.Route.List()
	if err != nil {
		return err
	}
	var errs []error
	for _, pfx := range shared {
		net := pfx.Masked()
		for i := range idx {
			want := uint32(FallbackMetric)
			if i == pref {
				want = PreferredMetric
			}
			have := false
			for _, r := range rs {
				if r.Family != unix.AF_INET || r.Attributes.Table != unix.RT_TABLE_MAIN || r.Attributes.OutIface != idx[i] ||
					int(r.DstLength) != net.Bits() || r.Attributes.Dst == nil || !r.Attributes.Dst.Equal(net.Addr().AsSlice()) {
					continue
				}
				if r.Attributes.Priority == want && !have {
					have = true
					continue
				}
				del := r
				if err := c.Route.Delete(&del); err != nil && !errors.Is(err, unix.ESRCH) {
					errs = append(errs, fmt.Errorf("delete %v dev %d metric %d: %w", net, idx[i], r.Attributes.Priority, err))
				}
			}
			if have {
				continue
			}
			err := c.Route.Add(&rtnetlink.RouteMessage{
				Family: unix.AF_INET, DstLength: uint8(net.Bits()), Table: unix.RT_TABLE_MAIN,
				Protocol: unix.RTPROT_KERNEL, Scope: unix.RT_SCOPE_LINK, Type: unix.RTN_UNICAST,
				Attributes: rtnetlink.RouteAttributes{Dst: net.Addr().AsSlice(), OutIface: idx[i], Priority: want,
					Src: pfx.Addr().AsSlice(), Table: unix.RT_TABLE_MAIN},
			})
			if err != nil && !errors.Is(err, unix.EEXIST) {
				errs = append(errs, fmt.Errorf("add %v dev %d metric %d: %w", net, idx[i], want, err))
			}
		}
	}
	return errors.Join(errs...)
}

// announce sends a gratuitous ARP reply for each shared address from port.
func (p *Path) announce(port string, shared []netip.Prefix) error {
	addrs := make([]netip.Addr, len(shared))
	for i, pfx := range shared {
		addrs[i] = pfx.Addr()
	}
	n, err := p.garp.Announce(port, addrs...)
	p.GARPs.Add(uint64(n))
	return err
}
