package shelf_test

import (
	"testing"
	"time"

	"github.com/cgoa/cgoa/qemu/shelftest"
	"github.com/cgoa/cgoa/qemu/topology"
	"github.com/cgoa/cgoa/qemu/vm"
)

// TestDefaultShelf is issue 3's shelf test: the default shelf boots, every
// node blade sees both base links; pulling hub 1 drops base0 on every node
// blade within 2 s while base1 stays up; reinserting it brings base0 back.
func TestDefaultShelf(t *testing.T) {
	topo := topology.Default()
	sh := shelftest.Boot(t, topo)

	var nodes []int
	for _, b := range topo.Blades {
		if !b.Hub() {
			nodes = append(nodes, b.Slot)
		}
		var ver struct {
			Role string `json:"role"`
		}
		sh.ExecJSON(t, b.Slot, "show version json", &ver)
		if ver.Role != string(b.Role) {
			t.Errorf("slot %d: show version json role = %q, want %q", b.Slot, ver.Role, b.Role)
		}
	}
	// Links come up shortly after the prompt (driver probe, autoneg).
	for _, n := range nodes {
		shelftest.Eventually(t, 20*time.Second, "base0 up", sh.LinkIs(n, "base0", true))
		shelftest.Eventually(t, 20*time.Second, "base1 up", sh.LinkIs(n, "base1", true))
	}

	uplink, ok := sh.Uplink("uplink-s1")
	if !ok || !uplink.Up() {
		t.Fatalf("uplink-s1 far end = %v, %v, want up", uplink, ok)
	}
	pulled := time.Now() // the 2 s count from the kill command, not from its return
	sh.Kill(t, 1)
	for _, n := range nodes {
		if err := shelftest.Poll(2*time.Second-time.Since(pulled), sh.LinkIs(n, "base0", false)); err != nil {
			t.Errorf("slot %d: base0 not down within 2 s of pulling hub 1: %v", n, err)
		}
		t.Logf("slot %d: base0 down %v after the pull", n, time.Since(pulled).Round(time.Millisecond))
	}
	if uplink.Up() {
		t.Errorf("uplink-s1 far end still up after pulling hub 1")
	}
	for _, n := range nodes {
		if err := sh.LinkIs(n, "base1", true)(); err != nil {
			t.Errorf("slot %d after pulling hub 1: %v", n, err)
		}
	}
	if st := sh.Status(t.Context()); st.Blades[0].State != vm.Down {
		t.Errorf("status of slot 1 after kill = %s, want down", st.Blades[0].State)
	}

	sh.Restart(t, 1)
	for _, n := range nodes {
		shelftest.Eventually(t, 20*time.Second, "base0 up after restart", sh.LinkIs(n, "base0", true))
	}
	if !uplink.Up() {
		t.Errorf("uplink-s1 far end down after reinserting hub 1")
	}
}

// TestCutAndMend cuts one channel: both ends lose carrier; mending restores it.
func TestCutAndMend(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	topo, err := topology.Parse("mini", []byte("name: cut\nslots:\n  - {slot: 1, role: switch}\n  - {slot: 3, role: mgmt}\n"))
	if err != nil {
		t.Fatal(err)
	}
	sh := shelftest.Boot(t, topo)
	shelftest.Eventually(t, 20*time.Second, "base0 up", sh.LinkIs(3, "base0", true))
	shelftest.Eventually(t, 20*time.Second, "node3 up", sh.LinkIs(1, "node3", true))
	sh.Cut(t, 3, "base0")
	shelftest.Eventually(t, 2*time.Second, "base0 down after cut", sh.LinkIs(3, "base0", false))
	shelftest.Eventually(t, 2*time.Second, "hub node3 down after cut", sh.LinkIs(1, "node3", false))
	sh.Mend(t, 3, "base0")
	shelftest.Eventually(t, 5*time.Second, "base0 up after mend", sh.LinkIs(3, "base0", true))
	shelftest.Eventually(t, 5*time.Second, "hub node3 up after mend", sh.LinkIs(1, "node3", true))
}
