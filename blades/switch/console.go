package switchblade

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/cgoa/cgoa/blades/console"
	"github.com/cgoa/cgoa/netstack/bridge"
	"github.com/cgoa/cgoa/stp"
)

// View is `show stp`: the bridge as this hub runs it (active) or holds it
// from the active's checkpoints (standby, Held).
type View struct {
	Mode   Mode          `json:"mode"`
	Role   string        `json:"role"`
	Bridge *stp.Snapshot `json:"bridge,omitempty"`
	// Held: Bridge is the active hub's state as last checkpointed, aged
	// by CheckpointAge (this hub is the standby).
	Held          bool          `json:"held"`
	CheckpointAge time.Duration `json:"checkpoint_age,omitempty"`
	Takeover      *restoreInfo  `json:"last_takeover,omitempty"`
	// Provisional: this hub took over when isl0 lost carrier and waits for HA to confirm.
	Provisional bool          `json:"provisional,omitempty"`
	Counters    AgentCounters `json:"counters"`
	Error       string        `json:"error,omitempty"`
}

// AgentCounters are the agent's own counters.
type AgentCounters struct {
	CheckpointWrites uint64                 `json:"checkpoint_writes"`
	CheckpointErrors uint64                 `json:"checkpoint_errors"`
	Restores         uint64                 `json:"restores"`
	RestoreFailures  uint64                 `json:"restore_failures"`
	FastTakeovers    uint64                 `json:"fast_takeovers"` // on isl0 carrier loss
	FastReverts      uint64                 `json:"fast_reverts"`   // HA did not confirm in time
	Shell            *bridge.BridgeCounters `json:"shell,omitempty"`
}

// PortRow is one line of `show stp ports`.
type PortRow struct {
	stp.PortSnapshot
	Shell *bridge.PortCounters `json:"shell,omitempty"`
}

// Status returns `show stp`.
func (a *Agent) Status() View {
	a.mu.Lock()
	v := View{Mode: a.mode, Role: string(a.role), Error: a.lastErr, Provisional: a.provisional}
	sb, br := a.sb, a.br
	if a.role == roleActive && !a.restore.At.IsZero() {
		r := a.restore
		v.Takeover = &r
	}
	a.mu.Unlock()
	v.Counters = AgentCounters{CheckpointWrites: a.ckptWrites.Load(), CheckpointErrors: a.ckptErrors.Load(),
		Restores: a.restores.Load(), RestoreFailures: a.restoreFails.Load(),
		FastTakeovers: a.fastTakeovers.Load(), FastReverts: a.fastReverts.Load()}
	if br != nil {
		c := br.BridgeCounters()
		v.Counters.Shell = &c
	}
	if sb != nil {
		s := sb.Snapshot()
		v.Bridge = &s
		return v
	}
	if v.Mode == Protected {
		s, age, err := a.heldSnapshot()
		if err != nil {
			v.Error = "checkpoint: " + err.Error()
		}
		if s != nil {
			v.Bridge, v.Held, v.CheckpointAge = s, true, age
		}
	}
	return v
}

// Ports returns `show stp ports`.
func (a *Agent) Ports() []PortRow {
	v := a.Status()
	a.mu.Lock()
	br := a.br
	active := a.role == roleActive
	a.mu.Unlock()
	var rows []PortRow
	if v.Bridge == nil {
		return rows
	}
	for _, p := range v.Bridge.Ports {
		r := PortRow{PortSnapshot: p}
		if br != nil && active {
			if c, err := br.Counters(p.Number); err == nil {
				r.Shell = &c
			}
		}
		rows = append(rows, r)
	}
	return rows
}

// running returns the bridge this hub runs, or errNotActive.
func (a *Agent) running() (*stp.Bridge, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.sb == nil {
		return nil, errNotActive
	}
	return a.sb, nil
}

// SetPriority sets the bridge priority (0..61440 in steps of 4096, as
// 802.1D-2004 has it) on the running bridge and for bridges started later.
func (a *Agent) SetPriority(p uint16) error {
	if p%4096 != 0 {
		return fmt.Errorf("stp: priority %d: want a multiple of 4096 (0..61440)", p)
	}
	sb, err := a.running()
	if err != nil {
		return err
	}
	if err := sb.SetBridgePriority(p); err != nil {
		return err
	}
	a.mu.Lock()
	a.set.Priority = p
	a.mu.Unlock()
	return nil
}

// SetTimers sets the timers the bridge uses when it is root.
func (a *Agent) SetTimers(maxAge, hello, fwd time.Duration) error {
	if err := stp.CheckTimers(maxAge, hello, fwd); err != nil {
		return err
	}
	sb, err := a.running()
	if err != nil {
		return err
	}
	if err := sb.SetTimers(maxAge, hello, fwd); err != nil {
		return err
	}
	a.mu.Lock()
	a.set.MaxAge, a.set.Hello, a.set.FwdDelay = maxAge, hello, fwd
	a.mu.Unlock()
	return nil
}

// SetPort sets a port's path cost ("cost") or priority ("priority").
func (a *Agent) SetPort(name, what string, value uint64) error {
	sb, err := a.running()
	if err != nil {
		return err
	}
	var num uint16
	for _, p := range sb.Snapshot().Ports {
		if p.Name == name {
			num = p.Number
		}
	}
	if num == 0 {
		return fmt.Errorf("stp: port %q: %w", name, stp.ErrNoPort)
	}
	switch what {
	case "cost":
		if value < 1 || value > 200_000_000 {
			return fmt.Errorf("stp: port %s: cost %d: %w (1..200000000)", name, value, stp.ErrBadPathCost)
		}
		if err := sb.SetPortPathCost(num, uint32(value)); err != nil {
			return err
		}
		a.mu.Lock()
		a.set.PortCost[name] = uint32(value)
		a.mu.Unlock()
	case "priority":
		if value > 240 || value%16 != 0 {
			return fmt.Errorf("stp: port %s: priority %d: want a multiple of 16 (0..240)", name, value)
		}
		if err := sb.SetPortPriority(num, uint8(value)); err != nil {
			return err
		}
		a.mu.Lock()
		a.set.PortPrio[name] = uint8(value)
		a.mu.Unlock()
	default:
		return fmt.Errorf("stp: port %s: %q: want cost or priority: %w", name, what, console.ErrUsage)
	}
	return nil
}

func parseUint(s string, bits int) (uint64, error) {
	v, err := strconv.ParseUint(s, 10, bits)
	if err != nil {
		return 0, fmt.Errorf("%q: want a number: %w", s, console.ErrUsage)
	}
	return v, nil
}

func parseSeconds(s string) (time.Duration, error) {
	v, err := strconv.ParseUint(s, 10, 8)
	if err != nil {
		return 0, fmt.Errorf("%q: want whole seconds: %w", s, console.ErrUsage)
	}
	return time.Duration(v) * time.Second, nil
}

// RegisterCommands adds the STP console commands.
func (a *Agent) RegisterCommands(c *console.Console) {
	c.View([]string{"show", "stp"}, "", "spanning tree: mode, role, bridge and root, timers, topology changes", 0, 0,
		func([]string) (any, error) { return a.Status(), nil },
		func(w io.Writer, v any) { writeView(w, v.(View)) })
	c.View([]string{"show", "stp", "ports"}, "", "spanning tree ports: role, state, cost, designated bridge and port, BPDU counters", 0, 0,
		func([]string) (any, error) { return a.Ports(), nil },
		func(w io.Writer, v any) { writePorts(w, v.([]PortRow)) })
	c.Action([]string{"stp", "priority"}, "N", "bridge priority (multiple of 4096)", 1, 1, func(w io.Writer, args []string) error {
		v, err := parseUint(args[0], 16)
		if err != nil {
			return err
		}
		if err := a.SetPriority(uint16(v)); err != nil {
			return err
		}
		fmt.Fprintf(w, "bridge priority %d\n", v)
		return nil
	})
	c.Action([]string{"stp", "port"}, "PORT cost N|priority N", "port path cost or priority", 3, 3, func(w io.Writer, args []string) error {
		v, err := parseUint(args[2], 32)
		if err != nil {
			return err
		}
		if err := a.SetPort(args[0], args[1], v); err != nil {
			return err
		}
		fmt.Fprintf(w, "port %s %s %d\n", args[0], args[1], v)
		return nil
	})
	c.Action([]string{"stp", "timers"}, "MAXAGE HELLO FWDDELAY", "timers used as root, in seconds", 3, 3, func(w io.Writer, args []string) error {
		var d [3]time.Duration
		for i := range d {
			var err error
			if d[i], err = parseSeconds(args[i]); err != nil {
				return err
			}
		}
		if err := a.SetTimers(d[0], d[1], d[2]); err != nil {
			return err
		}
		fmt.Fprintf(w, "timers: max age %v, hello %v, forward delay %v\n", d[0], d[1], d[2])
		return nil
	})
	c.Action([]string{"stp", "mode"}, "protected|independent|off", "protected: one logical bridge protected 1:1 across the hubs; independent: each hub a plain 802.1D bridge; off: no spanning tree (loop-free wiring only)", 1, 1, func(w io.Writer, args []string) error {
		m, err := ParseMode(args[0])
		if err != nil {
			return fmt.Errorf("%w: %w", err, console.ErrUsage)
		}
		if err := a.SetMode(m); err != nil {
			return err
		}
		fmt.Fprintf(w, "stp mode %s\n", m)
		return nil
	})
}

func writeView(w io.Writer, v View) {
	fmt.Fprintf(w, "mode %s, role %s", v.Mode, v.Role)
	if v.Held {
		fmt.Fprintf(w, " (holding the active's state, checkpoint %v old)", v.CheckpointAge.Round(time.Millisecond))
	}
	fmt.Fprintln(w)
	if v.Error != "" {
		fmt.Fprintf(w, "error: %s\n", v.Error)
	}
	if s := v.Bridge; s != nil {
		fmt.Fprintf(w, "bridge id %v  priority %d\n", s.ID, s.Priority)
		rp := "none (this bridge is root)"
		if !s.IsRoot {
			rp = fmt.Sprintf("%s (%d)", s.RootPortName, s.RootPort)
		}
		fmt.Fprintf(w, "root id   %v  root port %s  root cost %d\n", s.Root, rp, s.RootPathCost)
		fmt.Fprintf(w, "timers    max age %v  hello %v  forward delay %v  hold %v (as root: %v %v %v)\n",
			s.MaxAge, s.HelloTime, s.ForwardDelay, s.HoldTime, s.BridgeMaxAge, s.BridgeHelloTime, s.BridgeForwardDelay)
		fmt.Fprintf(w, "ageing    %v (in use %v)\n", s.AgeingTime, s.AgeingInUse)
		fmt.Fprintf(w, "topology  changes %d", s.TopologyChanges)
		if s.TopologyChanges > 0 {
			fmt.Fprintf(w, ", last %v ago", s.SinceTopologyChange.Round(time.Second))
		}
		fmt.Fprintf(w, ", change flag %v, detected %v\n", s.TopologyChange, s.TopologyChangeDetected)
	}
	if t := v.Takeover; t != nil {
		if t.Restored {
			fmt.Fprintf(w, "takeover  continued from a checkpoint %v old (generation %d)\n", t.Age.Round(time.Millisecond), t.Generation)
		} else {
			fmt.Fprintf(w, "takeover  started afresh (%s)\n", t.Error)
		}
	}
	c := v.Counters
	if v.Provisional {
		fmt.Fprintln(w, "provisional: took over on isl0 carrier loss, waiting for HA to confirm")
	}
	fmt.Fprintf(w, "checkpoints written %d (errors %d), restores %d (failed %d), fast takeovers %d (reverted %d)\n",
		c.CheckpointWrites, c.CheckpointErrors, c.Restores, c.RestoreFailures, c.FastTakeovers, c.FastReverts)
}

func writePorts(w io.Writer, rows []PortRow) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PORT\tNUM\tID\tROLE\tSTATE\tCOST\tDESIG BRIDGE\tDESIG PORT\tCFG IN/OUT\tTCN IN/OUT\tFWD TRANS")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%v\t%v\t%v\t%d\t%v\t%v\t%d/%d\t%d/%d\t%d\n", r.Name, r.Number, r.ID, r.Role, r.State, r.PathCost,
			r.DesignatedBridge, r.DesignatedPort, r.ConfigIn, r.ConfigOut, r.TCNIn, r.TCNOut, r.ForwardTransitions)
	}
	tw.Flush()
}
