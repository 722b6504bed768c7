// Package mgmt is the management blade role: it manages the shelf (SNMP agent, management
// address, operator access). It is protected 1:1 by the HA core: the mgmt blades form the 2N
// service group "mgmt", and the active one holds the management address (see Service).
package mgmt

import (
	"fmt"
	"io"

	"github.com/cgoa/cgoa/blades/blade"
	"github.com/cgoa/cgoa/blades/shelf"
	"github.com/cgoa/cgoa/ha"
	"github.com/cgoa/cgoa/ha/amf"
)

// BasePorts are the node blade's backplane ports the management address lives on.
var BasePorts = []string{"base0", "base1"}

// Role returns the management blade role for the firmware.
func Role() blade.Role {
	return blade.Role{Name: "mgmt", HA: startHA}
}

func startHA(b *blade.Blade, h *ha.Blade) error {
	svc := NewService(b, h, BasePorts)
	unit := shelf.UnitName(shelf.GroupMgmt, b.HW.Identity.Slot)
	if err := h.Register(amf.Component{Name: "mgmt-address", Unit: unit, Assign: svc.Assign}); err != nil {
		return err
	}
	b.Supervise(b.Context(), "mgmt-probe", svc.Serve)
	b.Console.View([]string{"show", "mgmt"}, "", "management address and probe counters", 0, 0,
		func([]string) (any, error) {
			return map[string]any{"address": svc.addr.String(), "active": h.Active(shelf.GroupMgmt, ""),
				"probes_answered": svc.Probes.Load(), "probes_refused": svc.Refused.Load(), "garps": svc.GARPs.Load()}, nil
		}, func(w io.Writer, v any) {
			m := v.(map[string]any)
			fmt.Fprintf(w, "management address %s, active %v, probes answered %d, refused %d, gratuitous ARPs %d\n",
				m["address"], m["active"], m["probes_answered"], m["probes_refused"], m["garps"])
		})
	return nil
}
