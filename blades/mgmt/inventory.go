package mgmt

import (
	"fmt"
	"slices"
	"sync"

	"github.com/cgoa/cgoa/blades/blade"
	"github.com/cgoa/cgoa/blades/shelf"
	"github.com/cgoa/cgoa/ha"
	"github.com/cgoa/cgoa/ha/amf"
	"github.com/cgoa/cgoa/ha/clm"
	"github.com/cgoa/cgoa/snmpagent/mib/entitymib"
)

// roleOfGroup maps the HA service groups to the blade roles that form them.
var roleOfGroup = map[string]string{shelf.GroupMgmt: "mgmt", shelf.GroupSwitch: "switch", shelf.GroupOLT: "epon"}

// inventory is ENTITY-MIB's view of the shelf: every slot of the HA configuration with its
// role, present while the HA membership has it up; this blade's FRU data from its IPMI
// controller and its ports. Other blades' FRU data does not reach the mgmt blade yet.
type inventory struct {
	b *blade.Blade
	h *ha.Blade

	once sync.Once
	fru  entitymib.FRU
}

func newInventory(b *blade.Blade, h *ha.Blade) *inventory { return &inventory{b: b, h: h} }

func (inv *inventory) self() entitymib.FRU {
	// The IPMI controller's identity does not change while the blade runs: ask it once.
	inv.once.Do(func() {
		id := inv.b.HW.Identity
		inv.fru = entitymib.FRUFromIPMI(inv.b.HW.BMC.Status(), id.Serial, fmt.Sprintf("CGOA %s blade", id.Role))
		inv.fru.SoftwareRev = inv.b.Banner()
	})
	return inv.fru
}

func (inv *inventory) Shelf() (entitymib.Shelf, error) {
	st := inv.h.Status()
	return shelfOf(st.Status.Self, st.View.Members, st.Groups, inv.self, inv.ports), nil
}

func (inv *inventory) ports() []string {
	ps, err := inv.b.HW.Ports.List()
	if err != nil {
		return nil
	}
	var names []string
	for _, p := range ps {
		names = append(names, p.Name)
	}
	slices.Sort(names)
	return names
}

// shelfOf builds the inventory from the HA view: slots from the service groups' units,
// presence from the membership.
func shelfOf(self uint8, members []clm.Member, groups []amf.GroupStatus, selfFRU func() entitymib.FRU, selfPorts func() []string) entitymib.Shelf {
	up := map[uint8]bool{}
	for _, m := range members {
		up[m.Slot] = m.Up
	}
	sh := entitymib.Shelf{Descr: "CGOA ATCA shelf"}
	for _, g := range groups {
		for _, u := range g.Units {
			sl := entitymib.Slot{Number: int(u.Node), Present: up[u.Node] || u.Node == self, Role: roleOfGroup[g.Name]}
			if u.Node == self {
				sl.Blade, sl.Ports = selfFRU(), selfPorts()
			}
			sh.Slots = append(sh.Slots, sl)
		}
	}
	slices.SortFunc(sh.Slots, func(a, b entitymib.Slot) int { return a.Number - b.Number })
	sh.Slots = slices.CompactFunc(sh.Slots, func(a, b entitymib.Slot) bool { return a.Number == b.Number })
	return sh
}
