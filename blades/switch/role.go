package switchblade

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
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
	id := b.HW.Identity
	node, err := ckpt.AttachBlade(h, CkptFrameType, ckpt.Options{Self: uint8(id.Slot)})
	if err != nil {
		return err
	}
	ctx := b.Context()
	stopTrack := node.Track(h, shelf.GroupSwitch, 20*time.Millisecond)
	store := newCkptStore(node)
	go store.watch(ctx, 50*time.Millisecond)
	go func() {
		<-ctx.Done()
		stopTrack()
		node.Close()
	}()
	r.agent.SetStore(store)
	// BRIDGE-MIB on the mgmt blades: the snapshot and new-root/topology-change events.
	b.Supervise(ctx, "stp-feed", func(ctx context.Context) error { return statefeed.PublishSTP(ctx, h, r.agent.Snapshot) })
	unit := shelf.UnitName(shelf.GroupSwitch, id.Slot)
	return h.Register(amf.Component{Name: "switch-stp", Unit: unit, Assign: func(a amf.Assignment) {
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
					b.Log.Errorf("stp: checkpoint %s: %v", ckptName, err)
				}
			}
		})
		r.agent.SetActive(active)
	}})
}

// ckptStore is the agent's Store in the switch group's checkpoint.
type ckptStore struct {
	node *ckpt.Node

	mu      sync.Mutex
	lastSeq uint64
	seen    time.Time // local time at which the replicated stream last moved
}

func newCkptStore(node *ckpt.Node) *ckptStore { return &ckptStore{node: node, seen: time.Now()} }

func (c *ckptStore) Save(ctx context.Context, data []byte, sync bool) error {
	_, err := c.node.Write(ctx, ckptName, ckptSection, data, sync)
	return err
}

func (c *ckptStore) Load() ([]byte, time.Time, error) {
	c.observe()
	data, err := c.node.Read(ckptName, ckptSection)
	if errors.Is(err, ckpt.ErrNoCheckpoint) || errors.Is(err, ckpt.ErrNoSection) {
		return nil, time.Time{}, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return data, c.seen, err
}

// observe notes when the replicated stream last advanced: on the standby, on its own clock,
// the moment the state it holds was current, late by at most the watch period plus the
// replication delay (so a restored state's timers run slightly behind the dead active's).
func (c *ckptStore) observe() {
	seq := c.node.Status().Seq
	c.mu.Lock()
	if seq != c.lastSeq {
		c.lastSeq, c.seen = seq, time.Now()
	}
	c.mu.Unlock()
}

func (c *ckptStore) watch(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.observe()
		}
	}
}
