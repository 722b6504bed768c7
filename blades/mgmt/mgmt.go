// Package mgmt is the management blade role: it manages the shelf (SNMP agent, management
// address, operator access). It is protected 1:1 by the HA core: the mgmt blades form the 2N
// service group "mgmt", and the active one holds the management address (see Service) and
// runs the shelf's SNMP agent on it (see SNMP), whose state the standby holds through the
// checkpoint service (ha/ckpt) so that a failover is invisible to managers.
//
// Components of unit mgmt-<slot>: "mgmt-address" (the address, its gratuitous ARP and the
// UDP probe responder) and "mgmt-snmp" (checkpoint writer/replica role and the agent).
// The other roles publish their state to both mgmt blades over the HA transport
// (blades/statefeed): the agent serves the active switch blade's bridge as BRIDGE-MIB and the
// EPON blades' OLTs and ONUs as DOT3-EPON-MIB (ifIndex: see EPONIfIndex), and sends newRoot,
// topologyChange and the CGOA-EPON-MIB ONU notifications from the feed's events.
//
// The SNMP section holds USM passphrases and communities, so it is sealed (AES-256-GCM under a
// key derived with HKDF from the shelf key, see SealCheckpoint) before it crosses the backplane;
// a section that fails to open is refused and counted, and the agent starts as a new engine.
//
// Console: show mgmt, show snmp, snmp user|community|target add|del, show ckpt.
package mgmt

import (
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/cgoa/cgoa/blades/blade"
	"github.com/cgoa/cgoa/blades/shelf"
	"github.com/cgoa/cgoa/blades/statefeed"
	"github.com/cgoa/cgoa/blades/switch/hubpath"
	"github.com/cgoa/cgoa/ha"
	"github.com/cgoa/cgoa/ha/amf"
	"github.com/cgoa/cgoa/ha/ckpt"
	"github.com/cgoa/cgoa/ha/transport"
	"github.com/cgoa/cgoa/snmpagent"
	"github.com/cgoa/cgoa/snmpagent/mib/ifmib"
)

// BasePorts are the node blade's backplane ports the management address lives on.
var BasePorts = []string{"base0", "base1"}

// SNMPPort is the agent's UDP port on the management address.
const SNMPPort = 161

// CkptFrameType is the HA transport frame type of the mgmt group's checkpoint stream.
const CkptFrameType = transport.TypeUser + 9

// Role returns the management blade role for the firmware.
func Role() blade.Role {
	return blade.Role{Name: "mgmt", HA: startHA}
}

func startHA(b *blade.Blade, h *ha.Blade) error {
	// The management address sits on both base channels: its traffic leaves toward the
	// active hub (show hubpath).
	path := hubpath.Follow(b, h)
	svc := NewService(b, h, BasePorts)
	svc.Preferred = path.Current
	unit := shelf.UnitName(shelf.GroupMgmt, b.HW.Identity.Slot)
	if err := h.Register(amf.Component{Name: "mgmt-address", Unit: unit, Assign: svc.Assign}); err != nil {
		return err
	}
	b.Supervise(b.Context(), "mgmt-probe", svc.Serve)
	b.Console.View([]string{"show", "mgmt"}, "", "management address and probe counters", 0, 0,
		func([]string) (any, error) {
			return map[string]any{"address": svc.addr.String(), "active": h.Active(shelf.GroupMgmt, ""),
				"probes_answered": svc.Probes.Load(), "probes_refused": svc.Refused.Load(), "garps": svc.GARPs.Load(),
				"neighbour_saves": svc.NeighSaves.Load()}, nil
		}, func(w io.Writer, v any) {
			m := v.(map[string]any)
			fmt.Fprintf(w, "management address %s, active %v, probes answered %d, refused %d, gratuitous ARPs %d, neighbour tables checkpointed %d\n",
				m["address"], m["active"], m["probes_answered"], m["probes_refused"], m["garps"], m["neighbour_saves"])
		})
	return startSNMP(b, h, unit, svc)
}

// shelfKeyer is the HA core giving roles the shelf key to derive their own keys from.
type shelfKeyer interface{ ShelfKey() transport.Key }

// startSNMP wires the SNMP agent: the checkpoint node (writer on the active blade, replica on
// the standby, as the AMF says), the agent's component, its console commands.
func startSNMP(b *blade.Blade, h *ha.Blade, unit string, svc *Service) error {
	id := b.HW.Identity
	node, err := ckpt.AttachBlade(h, CkptFrameType, ckpt.Options{Self: uint8(id.Slot), KeepAlive: shelf.CkptKeepAlive})
	if err != nil {
		return err
	}
	ctx := b.Context()
	stopTrack := node.Track(h, shelf.GroupMgmt, time.Second)
	go func() {
		<-ctx.Done()
		stopTrack()
		node.Close()
	}()
	store := newCkptStore(node)
	go store.Watch(ctx, 100*time.Millisecond)
	svc.KeepNeighbors(ctx, node)
	var ck Checkpoint = store
	if ks, ok := any(h).(shelfKeyer); ok {
		if ck, err = SealCheckpoint(store, ks.ShelfKey()); err != nil {
			return err
		}
	} else {
		b.Log.Errorf("snmp: the HA core gives no shelf key: the SNMP checkpoint (USM secrets, communities) crosses the backplane unencrypted")
	}
	inv := newInventory(b, h)
	feed := statefeed.NewFeed(statefeed.Options{})
	if err := feed.Attach(h); err != nil {
		return err
	}
	var s *SNMP
	s = NewSNMP(SNMPConfig{
		Addr:      netip.AddrPortFrom(shelf.MgmtService.Addr(), SNMPPort),
		Ckpt:      ck,
		Active:    func() bool { return h.Active(shelf.GroupMgmt, "") },
		Ports:     ifmib.PortsFunc(b.HW.Ports.List),
		Admin:     b.HW.Ports.SetAdmin,
		Inventory: inv,
		IfIndex: func(slot int, port string) (uint32, bool) {
			if slot != id.Slot {
				return 0, false
			}
			return s.Interfaces().IfIndex(port)
		},
		HA:   h,
		Feed: feed,
		System: snmpagent.System{
			Descr: fmt.Sprintf("CGOA shelf %d management agent", id.Shelf),
			Name:  fmt.Sprintf("cgoa-shelf%d", id.Shelf),
		},
		Defaults: DefaultConfig,
		Logf:     b.Log.Printf,
		Errorf:   b.Log.Errorf,
	})
	h.Events().Subscribe(s.HAMIB().Observe)
	h.Events().Subscribe(s.HAEvent)
	err = h.Register(amf.Component{Name: "mgmt-snmp", Unit: unit, Ready: node.Ready, Assign: func(a amf.Assignment) {
		// On the HA loop: only quick state changes here; the agent starts in Run.
		active := a.State == amf.Active
		node.Do(func(cs *ckpt.Service, now time.Duration) {
			if !active {
				cs.Demote()
				return
			}
			if !cs.Active() {
				cs.Promote(now)
				if err := cs.Open(now, ckptName, ckptRetention); err != nil {
					b.Log.Errorf("snmp: checkpoint %s: %v", ckptName, err)
				}
			}
		})
		s.SetActive(active)
	}})
	if err != nil {
		return err
	}
	b.Supervise(ctx, "snmp-agent", s.Run)
	s.RegisterCommands(b.Console)
	b.Console.View([]string{"show", "ckpt"}, "", "checkpoint service: role, sequence, replicas, ring", 0, 0,
		func([]string) (any, error) { return node.Status(), nil },
		func(w io.Writer, v any) { _ = ckpt.WriteStatus(w, v.(ckpt.Status)) })
	return nil
}
