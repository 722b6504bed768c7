package switchblade

import (
	"context"
	"errors"
	"os"
	"strings"
	"time"

	"github.com/cgoa/cgoa/blades/blade"
	"github.com/cgoa/cgoa/blades/shelf"
	"github.com/cgoa/cgoa/blades/statefeed"
	"github.com/cgoa/cgoa/ha"
	"github.com/cgoa/cgoa/ha/amf"
	"github.com/cgoa/cgoa/ha/ckpt"
	"github.com/cgoa/cgoa/ha/transport"
)

// CkptFrameType is the HA transport frame type of the switch group's checkpoint stream.
const CkptFrameType = transport.TypeUser + 7

// Names of the switch group's checkpoint and the STP section in it.
const (
	ckptName      = "switch"
	ckptSection   = "stp"
	ckptRetention = 24 * time.Hour
)

type role struct {
	agent *Agent
}

func (r *role) start(b *blade.Blade) error {
	mode := Protected
	if b.HW.Mode != "process" {
		if m, ok, err := cmdlineMode("/proc/cmdline"); err != nil {
			b.Log.Errorf("%v; staying in %s mode", err, Protected)
		} else if ok {
			mode = m
		}
	}
	// With spanning tree the uplinks stay down until the agent has put br0 in user STP mode
	// (they come up blocking then): forwarding on them from boot could close a loop.
	if err := startBackplane(b, mode == Off); err != nil {
		return err
	}
	r.agent = NewAgent(AgentConfig{
		Shelf: b.HW.Identity.Shelf,
		NoSTP: b.HW.Mode == "process",
		Ports: func() ([]string, error) {
			ps, err := b.HW.Ports.List()
			var names []string
			for _, p := range ps {
				names = append(names, p.Name)
			}
			return names, err
		},
		Logf: b.Log.Printf,
		Errf: b.Log.Errorf,
	})
	_ = r.agent.SetMode(mode)
	r.agent.RegisterCommands(b.Console)
	ctx := b.Context()
	b.Supervise(ctx, "stp-agent", r.agent.Run)
	// Without HA (no shelf key) the hub runs the tree by itself once the blade is up.
	go func() {
		select {
		case <-ctx.Done():
		case <-b.Ready():
			if b.HA == nil {
				r.agent.SetActive(true)
			}
		}
	}()
	return nil
}

// cmdlineMode reads cgoa.stp= from the kernel command line (ok false: not given).
func cmdlineMode(path string) (Mode, bool, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", false, nil
	}
	for _, f := range strings.Fields(string(raw)) {
		if v, found := strings.CutPrefix(f, "cgoa.stp="); found {
			m, err := ParseMode(v)
			return m, err == nil, err
		}
	}
	return "", false, nil
}

// startHA registers the STP component of the hub's unit in the switch group and the
// checkpoint node that carries the bridge's state to the standby.
func (r *role) startHA(b *blade.Blade, h *ha.Blade) error {
	if r.agent == nil {
		return errors.New("stp: agent not started")
	}
	ctx := b.Context()
	if _, err := attachHA(ctx, h, b.HW.Identity.Slot, r.agent, b.Log.Errorf); err != nil {
		return err
	}
	// BRIDGE-MIB on the mgmt blades: the snapshot and new-root/topology-change events.
	b.Supervise(ctx, "stp-feed", func(ctx context.Context) error {
		return statefeed.PublishSTP(ctx, h, r.agent.Snapshot, r.agent.Changed)
	})
	return nil
}

// attachHA gives hub slot's agent its checkpoint (a ckpt node following the switch group, the
// STP section as the agent's store) and registers the unit's "switch-stp" component, until
// ctx ends. The component's readiness gate is the node's: a hub whose replica of the active's
// tree is not in sync does not take a free active assignment while an in-sync hub lives (it
// would start the shelf's bridge afresh, and the network outside would re-converge), and
// does not count as the standby meanwhile.
func attachHA(ctx context.Context, h *ha.Blade, slot int, agent *Agent, errf func(string, ...any)) (*ckpt.Node, error) {
	node, err := ckpt.AttachBlade(h, CkptFrameType, ckpt.Options{Self: uint8(slot), KeepAlive: shelf.CkptKeepAlive})
	if err != nil {
		return nil, err
	}
	stopTrack := node.Track(h, shelf.GroupSwitch, time.Second)
	store := ckpt.NewSection(node, ckptName, ckptSection)
	go store.Watch(ctx, 50*time.Millisecond)
	go func() {
		<-ctx.Done()
		stopTrack()
		node.Close()
	}()
	agent.SetStore(store)
	unit := shelf.UnitName(shelf.GroupSwitch, slot)
	err = h.Register(amf.Component{Name: "switch-stp", Unit: unit, Ready: node.Ready, Assign: func(a amf.Assignment) {
		// On the HA loop: record the wish; the agent's loop acts.
		active := a.State == amf.Active
		node.Do(func(cs *ckpt.Service, now time.Duration) {
			if !active {
				cs.Demote()
				return
			}
			if !cs.Active() {
				cs.Promote(now)
				if err := cs.Open(now, ckptName, ckptRetention); err != nil {
					errf("stp: checkpoint %s: %v", ckptName, err)
				}
			}
		})
		agent.SetActive(active)
	}})
	if err != nil {
		return nil, err
	}
	return node, nil
}
