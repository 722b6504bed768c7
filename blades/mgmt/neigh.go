package mgmt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/cgoa/cgoa/blades/shelf"
	"github.com/cgoa/cgoa/ha/ckpt"
	"github.com/cgoa/cgoa/ha/ckpt/kstate"
)

// ckptNeigh is the section of the mgmt checkpoint that holds the active blade's ARP entries
// for the management subnet (kstate.CaptureNeighbors).
const ckptNeigh = "neigh"

// neighMinGap is the least time between two captures: a burst of neighbour events (a host
// scanning the subnet) costs one capture per gap, not one per event.
const neighMinGap = 100 * time.Millisecond

// KeepNeighbors carries the management subnet's ARP entries to the standby through node's
// checkpoint: while this blade is active it captures them on every neighbour change (netlink
// events; a backstop every 5 s) and writes them asynchronously when they differ; the standby
// installs them as they change (within a second), and Assign installs what is left before it
// raises the address, so the first answers to the hosts that talked to the old active leave at
// once instead of after an ARP round trip each (over the hubs of an emulated shelf, tens of
// milliseconds of the outage).
func (s *Service) KeepNeighbors(ctx context.Context, node *ckpt.Node) {
	sec := ckpt.NewSection(node, ckptName, ckptNeigh)
	s.mu.Lock()
	s.neigh = sec
	s.mu.Unlock()
	go s.captureNeighbors(ctx, sec)
}

func (s *Service) captureNeighbors(ctx context.Context, sec *ckpt.Section) {
	kick := make(chan struct{}, 1)
	watch, err := rtnetlink.Dial(&netlink.Config{Groups: 1 << (unix.RTNLGRP_NEIGH - 1)})
	if err != nil {
		s.b.Log.Errorf("mgmt: neighbour events: %v (captured every 5 s instead)", err)
	} else {
		defer watch.Close()
		go func() {
			<-ctx.Done()
			watch.SetReadDeadline(time.Unix(1, 0))
		}()
		go func() {
			for {
				if _, _, err := watch.Receive(); err != nil && ctx.Err() != nil {
					return
				}
				select {
				case kick <- struct{}{}:
				default:
				}
			}
		}()
	}
	// The backstop: a capture every 5 s on the active; on the standby a look every second
	// at the replicated section (a copy and a compare; netlink only when it changed), so a
	// blade that just rejoined has the entries in place before it can be asked to take over.
	backstop := time.NewTicker(time.Second)
	defer backstop.Stop()
	ticks := 0
	var last []byte
	for {
		event := false
		select {
		case <-ctx.Done():
			return
		case <-kick:
			event = true
		case <-backstop.C:
			ticks++
		}
		active := s.h.Active(shelf.GroupMgmt, "")
		if active && !event && ticks%5 != 0 && len(last) > 0 {
			continue // the active's backstop is every fifth second
		}
		if !active {
			last = nil // written afresh when this blade is active again
			// The standby installs what the active recorded ahead of a takeover, so that
			// the takeover itself has nothing to install.
			s.mu.Lock()
			if !s.holding {
				s.installNeighbors()
			}
			s.mu.Unlock()
			continue
		}
		b, err := kstate.CaptureNeighbors(0, s.ports, s.addr.Masked())
		if err != nil {
			s.b.Log.Errorf("mgmt: %v", err)
		} else if !bytes.Equal(b, last) {
			wctx, cancel := context.WithTimeout(ctx, time.Second)
			err = sec.Save(wctx, b, false)
			cancel()
			if err == nil {
				last = b
				s.NeighSaves.Add(1)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(neighMinGap): // the gap between captures, not a wait for an event
		}
	}
}

// installNeighbors installs the neighbours the active recorded, if they changed since the
// last install (s.mu held), and returns how many entries it added.
func (s *Service) installNeighbors() int {
	if s.neigh == nil {
		return 0
	}
	data, _, err := s.neigh.Load()
	if err != nil || data == nil || bytes.Equal(data, s.installed) {
		return 0
	}
	spread, err := onEveryPort(data, s.ports)
	if err != nil {
		s.b.Log.Errorf("mgmt: %v", err)
		return 0
	}
	n, err := kstate.RestoreNeighbors(0, spread)
	if err != nil {
		s.b.Log.Errorf("mgmt: %v", err)
		return n
	}
	s.installed = data
	return n
}

// onEveryPort returns a neighbours section with each host of section on every one of ports.
// The active answers through the channel hubpath prefers, which need not be the one it had
// a host's entry on (the old active may have preferred the other), and the hosts are on one
// LAN that both hubs reach: a host's MAC is the same through either port.
func onEveryPort(section []byte, ports []string) ([]byte, error) {
	ns, err := kstate.DecodeNeighbors(section)
	if err != nil {
		return nil, err
	}
	type key struct {
		addr netip.Addr
		dev  string
	}
	seen := map[key]bool{}
	var out kstate.Neighbors
	for _, n := range ns.Neighbors {
		for _, p := range ports {
			if k := (key{n.Addr, p}); !seen[k] {
				seen[k] = true
				out.Neighbors = append(out.Neighbors, kstate.Neighbor{Addr: n.Addr, MAC: n.MAC, Dev: p})
			}
		}
	}
	if len(out.Neighbors) > kstate.MaxNeighbors {
		return nil, fmt.Errorf("mgmt: %d neighbours on %d ports, more than a section holds (%d)", len(out.Neighbors), len(ports), kstate.MaxNeighbors)
	}
	return json.Marshal(out)
}
