package shelf_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cgoa/cgoa/blades/shelf"
	"github.com/cgoa/cgoa/qemu/farend"
	"github.com/cgoa/cgoa/qemu/shelftest"
	"github.com/cgoa/cgoa/qemu/topology"
)

type haView struct {
	InQuorum bool `json:"in_quorum"`
	Groups   []struct {
		Name  string `json:"name"`
		Units []struct {
			Name  string `json:"name"`
			Node  int    `json:"node"`
			State string `json:"state"`
		} `json:"units"`
	} `json:"groups"`
}

// activeOn reports whether slot's own view has its mgmt unit active.
func activeOn(sh *shelftest.Shelf, slot int) (bool, error) {
	out, err := sh.TryExec(slot, "show ha json")
	if err != nil {
		return false, err
	}
	var v haView
	if err := jsonUnmarshal(out, &v); err != nil {
		return false, err
	}
	for _, g := range v.Groups {
		for _, u := range g.Units {
			if g.Name == "mgmt" && u.Node == slot {
				return u.State == "active", nil
			}
		}
	}
	return false, fmt.Errorf("slot %d: no mgmt unit in show ha", slot)
}

// TestShelfServices boots the default shelf and checks the services the blades run on it:
// the HA core (every blade in quorum, one active mgmt blade answering the management
// address from the core network, failover when it is pulled, and no second active when it
// is cut off), and the EPON blade registering the emulated ONUs on both PON ports.
func TestShelfServices(t *testing.T) {
	topo := topology.Default()
	sh := shelftest.Boot(t, topo)

	// HA: all five blades join one quorum.
	for _, b := range topo.Blades {
		shelftest.Eventually(t, 30*time.Second, fmt.Sprintf("slot %d in quorum", b.Slot), func() error {
			var v haView
			out, err := sh.TryExec(b.Slot, "show ha json")
			if err != nil {
				return err
			}
			if err := jsonUnmarshal(out, &v); err != nil {
				return err
			}
			if !v.InQuorum {
				return fmt.Errorf("slot %d not in quorum", b.Slot)
			}
			return nil
		})
	}

	// EPON: both PONs register their emulated ONUs, ranged no shorter than their fibre.
	for _, pon := range []string{"pon0", "pon1"} {
		shelftest.Eventually(t, 60*time.Second, "ONUs registered on "+pon, func() error {
			var v struct {
				ONUs []struct {
					MAC   string  `json:"mac"`
					State string  `json:"state"`
					RTTUs float64 `json:"rtt_us"`
				} `json:"onus"`
			}
			out, err := sh.TryExec(5, "show onu "+pon+" json")
			if err != nil {
				return err
			}
			if err := jsonUnmarshal(out, &v); err != nil {
				return err
			}
			reg := 0
			for i, u := range v.ONUs {
				if u.State != "registered" {
					continue
				}
				reg++
				_ = i
				if u.RTTUs <= 0 {
					return fmt.Errorf("%s ONU %s RTT %.1f us", pon, u.MAC, u.RTTUs)
				}
			}
			if reg != farend.DefaultONUs {
				return fmt.Errorf("%s: %d of %d ONUs registered", pon, reg, farend.DefaultONUs)
			}
			return nil
		})
	}

	// The management address answers from the core network, from exactly one mgmt blade.
	up, ok := sh.Uplink("uplink-s1")
	if !ok {
		t.Fatal("no uplink-s1 far end")
	}
	p := farend.NewProber(up, net.HardwareAddr{0x02, 0xc0, 0, 0, 0, 0xfa}, netip.MustParseAddr("169.254.3.250"),
		netip.AddrPortFrom(shelf.MgmtService.Addr(), shelf.ProbePort))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx, 10*time.Millisecond)
	shelftest.Eventually(t, 30*time.Second, "management address answers", func() error {
		if a := p.Last(); a.Text == "" {
			return fmt.Errorf("no answer yet")
		}
		return nil
	})
	var active int
	fmt.Sscanf(p.Last().Text, "active %d", &active)
	if active != 3 && active != 4 {
		t.Fatalf("answer %q, want active 3 or 4", p.Last().Text)
	}
	other := 7 - active
	if a, err := activeOn(sh, other); err != nil || a {
		t.Fatalf("slot %d also believes it is active (%v)", other, err)
	}

	// Pull the active mgmt blade: the other takes the address and answers.
	killed := time.Now()
	sh.Kill(t, active)
	want := fmt.Sprintf("active %d", other)
	shelftest.Eventually(t, 30*time.Second, "standby answers after the kill", func() error {
		if a := p.Last(); a.Text != want || a.At.Before(killed) {
			return fmt.Errorf("last answer %q at %v", a.Text, a.At)
		}
		return nil
	})
	gap, _ := farend.Gap(p.Answers(), killed.Add(-time.Second), p.Last().At)
	t.Logf("failover: outage seen by the core-network prober %v", gap.Round(time.Millisecond))

	// Bring it back: it rejoins as standby, one active remains.
	sh.Restart(t, active)
	shelftest.Eventually(t, 30*time.Second, "restarted blade in quorum as standby", func() error {
		a, err := activeOn(sh, active)
		if err != nil {
			return err
		}
		if a {
			return fmt.Errorf("slot %d active again next to slot %d", active, other)
		}
		out, err := sh.TryExec(active, "show ha")
		if err != nil || !strings.Contains(out, "in quorum: yes") {
			return fmt.Errorf("slot %d not in quorum: %v", active, err)
		}
		return nil
	})

	// Cut the active blade off the backplane: it must give the assignment up by itself (it is
	// a minority), and the other blade takes it; never both.
	sh.Cut(t, other, "base0")
	sh.Cut(t, other, "base1")
	shelftest.Eventually(t, 30*time.Second, "isolated blade steps down", func() error {
		a, err := activeOn(sh, other)
		if err != nil {
			return err
		}
		if a {
			return fmt.Errorf("isolated slot %d still active", other)
		}
		return nil
	})
	shelftest.Eventually(t, 30*time.Second, "the connected blade takes over", func() error {
		a, err := activeOn(sh, active)
		if err != nil {
			return err
		}
		if !a {
			return fmt.Errorf("slot %d not active", active)
		}
		if iso, err := activeOn(sh, other); err == nil && iso {
			return fmt.Errorf("two actives: slots %d and %d", active, other)
		}
		return nil
	})
}
