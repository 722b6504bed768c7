package hal

import (
	"strings"
	"testing"
)

const sampleDep = `kernel/net/bridge/bridge.ko: kernel/net/802/stp.ko kernel/net/llc/llc.ko
kernel/net/802/stp.ko: kernel/net/llc/llc.ko
kernel/net/llc/llc.ko:
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/drivers/watchdog/i6300esb.ko:
`

func TestDependencyOrder(t *testing.T) {
	all, err := ParseModulesDep(strings.NewReader(sampleDep))
	if err != nil {
		t.Fatalf("ParseModulesDep: %v", err)
	}
	order, err := DependencyOrder(all, []string{"bridge", "virtio-net", "i6300esb"})
	if err != nil {
		t.Fatalf("DependencyOrder: %v", err)
	}
	pos := map[string]int{}
	for i, m := range order {
		pos[m.Name()] = i
	}
	if len(order) != 7 {
		t.Fatalf("DependencyOrder gave %d modules, want 7: %v", len(order), pos)
	}
	for _, m := range all {
		for _, d := range m.Deps {
			if pos[ModuleName(d)] >= pos[m.Name()] {
				t.Errorf("%s loads at %d, before its dependency %s at %d", m.Name(), pos[m.Name()], ModuleName(d), pos[ModuleName(d)])
			}
		}
	}
}

func TestDependencyOrderErrors(t *testing.T) {
	cyc, _ := ParseModulesDep(strings.NewReader("a.ko: b.ko\nb.ko: a.ko\n"))
	if _, err := DependencyOrder(cyc, []string{"a"}); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("DependencyOrder(cycle) = %v, want a cycle error", err)
	}
	missing, _ := ParseModulesDep(strings.NewReader("a.ko: gone.ko\n"))
	if _, err := DependencyOrder(missing, []string{"a"}); err == nil || !strings.Contains(err.Error(), "gone.ko") {
		t.Errorf("DependencyOrder(missing dep) = %v, want an error naming gone.ko", err)
	}
	if _, err := DependencyOrder(missing, []string{"nosuch"}); err == nil {
		t.Errorf("DependencyOrder(unknown name) = nil error")
	}
	if _, err := ParseModulesDep(strings.NewReader("ok.ko:\nthis line is broken\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("ParseModulesDep(bad line) = %v, want an error naming line 2", err)
	}
}

func FuzzParseModulesDep(f *testing.F) {
	f.Add(sampleDep)
	f.Add("a.ko: a.ko\n")
	f.Fuzz(func(t *testing.T, s string) {
		all, err := ParseModulesDep(strings.NewReader(s))
		if err != nil {
			return
		}
		var names []string
		for _, m := range all {
			names = append(names, m.Name())
		}
		_, _ = DependencyOrder(all, names)
	})
}
