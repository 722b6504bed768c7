// Package epon is the EPON blade role: an IEEE 802.3ah OLT on each PON port (MPCP discovery,
// registration and ranging, dynamic bandwidth allocation, OAM), protected N+M across the
// shelf's EPON blades. The OLT control, DBA and simulator live in the subpackages; this
// package runs one OLT per PON NIC of the blade and gives the console `show pon`,
// `show onu [PON]` and `onu deregister PON ONU`. With the HA core up, the blade publishes its
// PON/ONU tables and ONU events to the mgmt blades (blades/statefeed).
//
// Upstream data (every frame of a registered LLID that is not MPCP or OAM) leaves the blade
// unchanged on its base channel toward the hub active in the `switch` group, which bridges it
// to the shelf's uplinks (Upstream, following blades/switch/hubpath; `show upstream`,
// `show hubpath`).
//
// Every OLT alarm (ONU registered, deregistered, MPCP timeout, OAM up or lost, dying gasp,
// link fault, critical and link events, loopback) goes to the blade log (`show log`; info
// alarms at level info, major and critical ones at level error) and to each hook added
// with OnAlarm, which is where SNMP traps subscribe:
//
//	e := epon.New()
//	e.OnAlarm(func(a olt.Alarm) { traps.Send(...) })
//	role := e.Role()
package epon

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/cgoa/cgoa/blades/blade"
	"github.com/cgoa/cgoa/blades/epon/olt"
	"github.com/cgoa/cgoa/blades/switch/hubpath"
	"github.com/cgoa/cgoa/ha"
	"github.com/cgoa/cgoa/netstack/ponlink"
)

// Role returns the EPON blade role for the firmware (New().Role(): no alarm hooks but
// the blade log).
func Role() blade.Role { return New().Role() }

// EPON is the EPON blade role with its alarm hooks.
type EPON struct {
	mu    sync.Mutex
	hooks []func(olt.Alarm)
	pons  *pons
	up    *Upstream
}

// New returns the role, to add alarm hooks to before the blade starts.
func New() *EPON { return &EPON{} }

// Role is the blade role running e.
func (e *EPON) Role() blade.Role {
	return blade.Role{Name: "epon", Start: e.start, HA: e.startHA}
}

// startHA publishes the blade's OLT/ONU tables and ONU events to the mgmt blades over the HA
// transport (blades/statefeed), which serve them as DOT3-EPON-MIB and traps.
func (e *EPON) startHA(b *blade.Blade, h *ha.Blade) error {
	e.mu.Lock()
	p, up := e.pons, e.up
	e.mu.Unlock()
	if p == nil {
		return fmt.Errorf("epon: state feed: the role has not started")
	}
	// Upstream data leaves on the base channel toward the active hub.
	path := hubpath.Follow(b, h)
	up.SetVia(path.Current)
	feed := NewEPONFeed(h, func() []OLTSource {
		var out []OLTSource
		for _, o := range p.sorted() {
			out = append(out, o)
		}
		return out
	})
	e.OnAlarm(feed.Alarm)
	b.Supervise(b.Context(), "epon-feed", feed.Run)
	return nil
}

// OnAlarm adds a hook every OLT alarm of the blade is passed to, after the blade log. Hooks
// run on the PON port's goroutine: a slow one delays that port's MPCP, so hand the alarm
// off (a channel) for anything that blocks. Safe to call at any time.
func (e *EPON) OnAlarm(h func(olt.Alarm)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.hooks = append(e.hooks, h)
}

// publish logs an alarm and passes it to the hooks.
func (e *EPON) publish(log *blade.Log, a olt.Alarm) {
	if log != nil {
		if a.Severity == "info" {
			log.Printf("epon %s: alarm: %v", a.PON, a)
		} else {
			log.Errorf("epon %s: alarm: %v", a.PON, a)
		}
	}
	e.mu.Lock()
	hooks := e.hooks
	e.mu.Unlock()
	for _, h := range hooks {
		h(a)
	}
}

// Blade-side timing for a PON emulated through QEMU under TCG: GATEs go out 5 ms ahead of
// their windows and round trips up to 30 ms are ranged, since a frame crosses the guest
// kernel, QEMU and the host emulator's socket; idle ONUs are polled every 40 ms rather than
// every 1 ms (inside the 50 ms within which an ONU is to send its REPORTs, far inside the
// 1 s MPCP timeout), so an idle PON does not eat the emulated CPU the other blades share:
// each poll is a GATE and a REPORT through the guest kernel, QEMU and the host, and at
// 10 ms the two PONs took a third of the EPON blade's CPU at rest. An ONU with traffic
// queued is granted again as soon as its window ends, whatever the idle poll. The idle polls
// go on a 10 ms grid (every 40 to 50 ms), so each PON polls its idle ONUs in one wake-up.
const (
	gateLead = 5 * olt.QuantaPerSecond / 1000
	maxRTT   = 30 * olt.QuantaPerSecond / 1000
	idlePoll = 40 * olt.QuantaPerSecond / 1000
	idleGrid = 10 * olt.QuantaPerSecond / 1000
)

type pons struct {
	mu   sync.Mutex
	olts map[string]*olt.OLT
	nics map[string]*ponlink.NIC
	role *EPON
	up   *Upstream // upstream data frames to the backplane
	// clock is every PON's: one time base puts the idle polls of all of them on the same
	// grid instants, one wake-up of the blade for all.
	clock *olt.MonotonicClock
}

func (e *EPON) start(b *blade.Blade) error {
	ports, err := b.HW.Ports.List()
	if err != nil {
		return err
	}
	var base []string
	for _, pt := range ports {
		if pt.Name == "base0" || pt.Name == "base1" {
			base = append(base, pt.Name)
		}
	}
	slices.Sort(base)
	up := NewUpstream(base, "", UpstreamQueue)
	p := &pons{olts: map[string]*olt.OLT{}, nics: map[string]*ponlink.NIC{}, role: e, up: up, clock: olt.NewMonotonicClock()}
	e.mu.Lock()
	e.pons, e.up = p, up
	e.mu.Unlock()
	b.Supervise(b.Context(), "epon-upstream", up.Run)
	for _, pt := range ports {
		if !strings.HasPrefix(pt.Name, "pon") {
			continue
		}
		name := pt.Name
		mac, _ := net.ParseMAC(pt.MAC)
		b.Supervise(b.Context(), "olt-"+name, func(ctx context.Context) error {
			return p.run(ctx, b, name, mac)
		})
	}
	p.registerCommands(b)
	return nil
}

// run opens the PON NIC and serves its OLT until ctx ends.
func (p *pons) run(ctx context.Context, b *blade.Blade, name string, mac net.HardwareAddr) error {
	if err := b.HW.Ports.SetAdmin(name, true); err != nil {
		return err
	}
	nic, err := ponlink.OpenNIC(name)
	if err != nil {
		return err
	}
	defer nic.Close()
	clock := p.clock
	cfg := olt.EmulatedLink(olt.Config{Name: name, MAC: mac, GateLead: gateLead, MaxRTT: maxRTT, IdlePoll: idlePoll, IdleGrid: idleGrid})
	o, err := olt.New(cfg, clock, olt.LinkPort{Conn: nic})
	if err != nil {
		return err
	}
	o.OnAlarm = func(a olt.Alarm) { p.role.publish(b.Log, a) }
	o.OnData = func(_ uint16, frame []byte, _ int64) { p.up.Frame(frame) }
	p.mu.Lock()
	p.olts[name] = o
	p.nics[name] = nic
	p.mu.Unlock()
	b.Log.Printf("epon %s: OLT up (%s DBA)", name, o.ShowPON().DBA)
	go func() {
		<-ctx.Done()
		nic.Close()
	}()
	err = olt.Serve(ctx, o, nic, clock)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (p *pons) sorted() []*olt.OLT {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*olt.OLT
	for _, o := range p.olts {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out
}

func (p *pons) get(name string) (*olt.OLT, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	o, ok := p.olts[name]
	if !ok {
		return nil, fmt.Errorf("no PON port %q with a running OLT", name)
	}
	return o, nil
}

func (p *pons) registerCommands(b *blade.Blade) {
	c := b.Console
	c.View([]string{"show", "pon"}, "", "PON ports: DBA, registered ONUs, MPCP counters", 0, 0,
		func([]string) (any, error) {
			out := []olt.PONView{}
			drops := map[string]uint64{}
			for _, o := range p.sorted() {
				out = append(out, o.ShowPON())
				p.mu.Lock()
				nic := p.nics[o.Name()]
				p.mu.Unlock()
				if nic != nil {
					drops[o.Name()] = nic.Drops()
				}
			}
			// nic_drops: upstream frames the PON NIC's socket dropped
			// (receive buffer full) before the OLT saw them.
			return map[string]any{"pons": out, "nic_drops": drops}, nil
		}, func(w io.Writer, v any) {
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PON\tMAC\tDBA\tREGISTERED\tREGISTERING\tMAX")
			for _, pv := range v.(map[string]any)["pons"].([]olt.PONView) {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\n", pv.Name, pv.MAC, pv.DBA, pv.Registered, pv.Pending, pv.MaxONUs)
			}
			tw.Flush()
		})
	c.View([]string{"show", "onu"}, "[PON]", "ONUs: LLID, MAC, state, RTT and distance, SLA, counters", 0, 1,
		func(args []string) (any, error) {
			list := p.sorted()
			if len(args) == 1 {
				o, err := p.get(args[0])
				if err != nil {
					return nil, err
				}
				list = []*olt.OLT{o}
			}
			out := []olt.ONUView{}
			for _, o := range list {
				out = append(out, o.ShowONUs()...)
			}
			return map[string]any{"onus": out}, nil
		}, func(w io.Writer, v any) {
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PON\tLLID\tMAC\tSTATE\tRTT us\tkm\tOAM\tRX DATA\tLOST")
			for _, u := range v.(map[string]any)["onus"].([]olt.ONUView) {
				fmt.Fprintf(tw, "%s\t%#x\t%s\t%s\t%.1f\t%.2f\t%s\t%d\t%d\n", u.PON, u.LLID, u.MAC, u.State, u.RTTUs, u.DistanceKm, u.OAM,
					u.Stats.RxDataFrames, u.Stats.RxDataLost)
			}
			tw.Flush()
		})
	c.View([]string{"show", "upstream"}, "", "ONU upstream data forwarded to the backplane: channel, counters", 0, 0,
		func([]string) (any, error) { return p.up.View(), nil }, writeUpstream)
	c.Action([]string{"onu", "deregister"}, "PON LLID|MAC", "deregister an ONU (it may register again)", 2, 2,
		func(w io.Writer, args []string) error {
			o, err := p.get(args[0])
			if err != nil {
				return err
			}
			if err := o.Deregister(args[1]); err != nil {
				return err
			}
			fmt.Fprintf(w, "%s: ONU %s deregistered\n", args[0], args[1])
			return nil
		})
}
