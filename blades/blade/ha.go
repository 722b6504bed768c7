package blade

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/cgoa/cgoa/blades/shelf"
	"github.com/cgoa/cgoa/ha"
	"github.com/cgoa/cgoa/ha/clm"
	"github.com/cgoa/cgoa/ha/transport"
	"github.com/cgoa/cgoa/hal"
)

// HAConfig is how the firmware brings the HA core up on a blade.
type HAConfig struct {
	Map    []shelf.Member
	Key    []byte
	Timers clm.Timers
	// Ports are the interfaces the HA frames travel on: base0 and base1 on a node blade, the
	// backplane bridge on a hub. Each gets the blade's address on its base plane(s).
	Ports []string
	// Planes[i] are the base planes whose addresses port i carries.
	Planes [][]int
}

// StartHA assigns the blade's base-plane addresses, starts the HA core and registers its
// console commands. The role's HA hook (Role.HA) runs after it.
func (b *Blade) StartHA(ctx context.Context, cfg HAConfig) error {
	id := b.HW.Identity
	conf, err := shelf.HAConfig(id.Shelf, cfg.Map, cfg.Timers)
	if err != nil {
		return err
	}
	member := false
	for _, m := range cfg.Map {
		member = member || m.Slot == id.Slot
	}
	if !member {
		return fmt.Errorf("ha: slot %d is not in the shelf map %s", id.Slot, shelf.FormatMap(cfg.Map))
	}
	var paths []transport.UDPPath
	var used []string
	for i, port := range cfg.Ports {
		// A shelf with one hub wires base0 only: HA runs on the paths the blade has.
		if _, err := b.HW.Ports.Get(port); err != nil {
			b.Log.Printf("ha: no %s on this blade: one path fewer", port)
			continue
		}
		used = append(used, port)
		if err := b.HW.Ports.SetAdmin(port, true); err != nil {
			return err
		}
		for _, p := range cfg.Planes[i] {
			if err := b.HW.Ports.AddAddress(port, shelf.PlaneAddr(p, id.Slot).String()); err != nil {
				return err
			}
		}
		paths = append(paths, haPath(port, cfg.Planes[i], id.Slot))
	}
	if len(paths) == 0 {
		return fmt.Errorf("ha: none of the base ports %v is on this blade", cfg.Ports)
	}
	h, err := ha.Start(ha.Options{Config: conf, Slot: uint8(id.Slot), Key: cfg.Key, Paths: paths,
		NodeFailover: func(reason string) {
			b.Log.Errorf("ha: node failover: %s; rebooting", reason)
			go func() { _ = b.cfg.Reboot(false) }()
		}})
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.HA = h
	b.mu.Unlock()
	// The carrier of the backplane channels feeds the HA core's fencing: a blade pulled or
	// cut off at every channel is failed over at once, not after the detection time.
	if w, err := hal.OpenChannelWatch(id.Slot); err != nil {
		b.Log.Errorf("ha: no carrier watch, failures are found by heartbeats only: %v", err)
	} else {
		go func() {
			if err := w.Run(ctx, func(down []uint8) {
				b.Log.Printf("ha: backplane channels without carrier: slots %v", down)
				h.SetLinks(down)
			}); err != nil {
				b.Log.Errorf("ha: carrier watch: %v", err)
			}
		}()
	}
	go func() {
		<-ctx.Done()
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = h.Close(cctx)
	}()
	h.Events().Subscribe(func(e evtEvent) { b.Log.Printf("ha: %v", e) })
	// An opened handle hands every active assignment over before the blade is released.
	b.HW.HotSwap.OnRequest(func(s hal.HotSwapState) {
		if s != hal.M5 {
			return
		}
		h.HandleOpen(func(handedOver bool) {
			if !handedOver {
				b.Log.Errorf("hot-swap: no unit could take over; the blade stays in M5 until the handle closes")
				return
			}
			if err := b.HW.HotSwap.Deactivate(b.cfg.Now()); err != nil {
				b.Log.Errorf("hot-swap: %v", err)
				return
			}
			b.Log.Printf("hot-swap: services handed over; blade released (M1): it may be pulled")
		})
	})
	b.registerHACommands(h)
	if b.cfg.Role.HA != nil {
		if err := b.cfg.Role.HA(b, h); err != nil {
			return fmt.Errorf("role %s: %w", b.cfg.Role.Name, err)
		}
	}
	b.Log.Printf("ha: started: shelf %d, %d members, timers %v x %d, paths %v", id.Shelf, len(cfg.Map), cfg.Timers.Interval, cfg.Timers.Misses, used)
	return nil
}

// HAJoined reports whether the HA core runs and this blade is in the quorum partition.
func (b *Blade) HAJoined() bool {
	b.mu.Lock()
	h := b.HA
	b.mu.Unlock()
	return h != nil && h.Status().InQuorum
}

func (b *Blade) registerHACommands(h *ha.Blade) {
	c := b.Console
	c.View([]string{"show", "ha"}, "", "membership, quorum, service groups and units, last failover", 0, 0,
		func([]string) (any, error) { return h.Status(), nil },
		func(w io.Writer, v any) { _ = ha.WriteStatus(w, v.(ha.Status)) })
	admin := func(words []string, arg, help string, f func(string) error, done string) {
		c.Action(words, arg, help, 1, 1, func(w io.Writer, args []string) error {
			if err := f(args[0]); err != nil {
				return err
			}
			fmt.Fprintf(w, done+"\n", args[0])
			return nil
		})
	}
	admin([]string{"ha", "switchover"}, "SG", "hand a service group's active assignment to its standby", h.Switchover, "switchover of %s started")
	admin([]string{"ha", "lock"}, "SU", "take a service unit out of service", h.Lock, "%s locked")
	admin([]string{"ha", "unlock"}, "SU", "return a service unit to service", h.Unlock, "%s unlocked")
	admin([]string{"ha", "repair"}, "SU", "clear a unit's failure after escalation", h.Repair, "%s repaired")
}
