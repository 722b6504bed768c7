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

// oneFailover is the least outage bound of a rolling upgrade: one failover of the mgmt
// group on the TCG shelf found by heartbeats (a hung blade: detection time 5 x 200 ms,
// qshelf.DefaultHATimers, plus the scheduling slack of emulated blades on two cores). A
// pulled blade is fenced by carrier and fails over faster (the kill the test also measures
// on the same shelf); the bound is the larger of the two, since a hang is a failover too.
const oneFailover = 1500 * time.Millisecond

type logWriter struct{ t *testing.T }

func (l logWriter) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// upgradeYAML is the shelf of the rolling-upgrade test: the two hubs and the mgmt pair it
// upgrades. The default shelf's EPON blade has no part in it; leaving it out leaves the
// emulation one blade's CPU more (five TCG blades share two cores).
const upgradeYAML = `name: upgrade
shelf: 1
slots:
  - {slot: 1, role: switch}
  - {slot: 2, role: switch}
  - {slot: 3, role: mgmt}
  - {slot: 4, role: mgmt}
`

// TestRollingUpgrade upgrades the mgmt pair with `shelf upgrade mgmt` while the core-network
// prober probes the management address every 10 ms: the service moves exactly once (the
// switchover), the longest gap in answers is no longer than one failover, and both blades end
// up running the new image, confirmed.
func TestRollingUpgrade(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: boots a shelf and reboots two blades")
	}
	topo, err := topology.Parse("upgrade", []byte(upgradeYAML))
	if err != nil {
		t.Fatal(err)
	}
	sh := shelftest.Boot(t, topo)
	ti := newTestImages(t, shelftest.Need(t, topology.Mgmt), "mgmt")
	img := ti.version("0.2.0")

	up, ok := sh.Uplink("uplink-s1")
	if !ok {
		t.Fatal("no uplink-s1 far end")
	}
	p := farend.NewProber(up, net.HardwareAddr{0x02, 0xc0, 0, 0, 0, 0xfb}, netip.MustParseAddr("169.254.3.251"),
		netip.AddrPortFrom(shelf.MgmtService.Addr(), shelf.ProbePort))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx, 10*time.Millisecond)
	shelftest.Eventually(t, 60*time.Second, "management address answers", func() error {
		if p.Last().Text == "" {
			return fmt.Errorf("no answer yet")
		}
		return nil
	})
	before := p.Last().Text

	start := time.Now()
	uctx, ucancel := context.WithTimeout(ctx, 20*time.Minute)
	steps, err := sh.Upgrade(uctx, topology.Mgmt, img, logWriter{t})
	ucancel()
	for _, s := range steps {
		t.Logf("slot %d: %s: %v", s.Slot, s.What, s.Took.Round(100*time.Millisecond))
	}
	if err != nil {
		t.Fatalf("Upgrade(mgmt) = %v", err)
	}
	end := time.Now()
	t.Logf("rolling upgrade of the mgmt pair took %v", end.Sub(start).Round(time.Second))
	shelftest.Eventually(t, 10*time.Second, "an answer after the upgrade", func() error {
		if p.Last().At.Before(end) {
			return fmt.Errorf("last answer at %v", p.Last().At)
		}
		return nil
	})

	answers := p.Answers()
	gap, err := farend.Gap(answers, start, end)
	if err != nil {
		t.Fatal(err)
	}
	moves := 0
	last := before
	prev := start
	for _, a := range answers {
		if a.At.Before(start) {
			continue
		}
		if d := a.At.Sub(prev); d == gap {
			t.Logf("longest gap: %v, from +%v", d.Round(time.Millisecond), prev.Sub(start).Round(time.Millisecond))
		}
		prev = a.At
		if a.Text != last {
			moves++
			t.Logf("service moved at +%v: %q -> %q", a.At.Sub(start).Round(time.Millisecond), last, a.Text)
			last = a.Text
		}
	}
	for _, b := range topo.Blades {
		if b.Role != topology.Mgmt {
			continue
		}
		bank, version, trial, err := sh.RunningVersion(ctx, b.Slot)
		if err != nil || version != "0.2.0" || trial {
			t.Errorf("slot %d after the upgrade: bank %s version %q trial open %v (%v), want 0.2.0 confirmed", b.Slot, bank, version, trial, err)
		}
	}
	// One failover, measured on the same shelf: pull the active mgmt blade.
	var active int
	fmt.Sscanf(last, "active %d", &active)
	other := 7 - active
	killed := time.Now()
	sh.Kill(t, active)
	want := fmt.Sprintf("active %d", other)
	shelftest.Eventually(t, 30*time.Second, "standby answers after the kill", func() error {
		if a := p.Last(); a.Text != want || a.At.Before(killed) {
			return fmt.Errorf("last answer %q", a.Text)
		}
		return nil
	})
	failover, _ := farend.Gap(p.Answers(), killed, p.Last().At)
	bound := max(oneFailover, failover)
	t.Logf("rolling upgrade: longest gap in 10 ms probes of the management address %v; one failover (kill of slot %d) on the same shelf %v; bound %v; the service moved %d time(s)",
		gap.Round(time.Millisecond), active, failover.Round(time.Millisecond), bound, moves)
	if gap > bound {
		t.Errorf("outage during the rolling upgrade %v, want at most one failover (%v)", gap.Round(time.Millisecond), bound)
	}
	if moves != 1 {
		t.Errorf("the service moved %d times during the upgrade, want once (the switchover)", moves)
	}
}
