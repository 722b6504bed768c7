package vm

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// need returns the build artifacts or skips the test with the reason
// (fails under CGOA_REQUIRE_VM=1).
func need(t *testing.T, roles ...string) Artifacts {
	t.Helper()
	a, err := Need(roles...)
	if err != nil {
		if os.Getenv("CGOA_REQUIRE_VM") == "1" {
			t.Fatalf("CGOA_REQUIRE_VM=1 but %v", err)
		}
		t.Skipf("skipping VM test: %v", err)
	}
	return a
}

// startBlade boots one blade with no ports in a temp run dir; the VM is
// stopped and, on failure, its console log printed when the test ends.
func startBlade(t *testing.T, a Artifacts, role string, slot int) *VM {
	t.Helper()
	cfg := Config{Kernel: a.Kernel, Role: role, Shelf: 1, Slot: slot, RunDir: t.TempDir()}
	if role != "" {
		cfg.Initrd = a.Image(role)
	} else {
		// No initrd: the kernel panics. The blade line asks for a reboot on panic, which
		// -no-reboot turns into QEMU exiting; this test wants the panicked VM to stay.
		cfg.Append = "panic=0"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start(%s slot %d) = %v", role, slot, err)
	}
	t.Cleanup(func() {
		v.Stop(context.Background())
		if t.Failed() {
			t.Logf("console log of %s slot %d:\n%s", role, slot, v.Log())
		}
	})
	return v
}

func TestKernelOnlyVM(t *testing.T) {
	a := need(t)
	v := startBlade(t, a, "", 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if st := v.State(ctx); st != Booting {
		t.Errorf("State() = %s, want booting", st)
	}
	// No initrd: the kernel panics looking for a root fs; the log shows it.
	for !strings.Contains(v.Log(), "Kernel panic") {
		select {
		case <-ctx.Done():
			t.Fatalf("no kernel panic in the console log")
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := v.Hang(ctx); err != nil {
		t.Fatal(err)
	}
	if st := v.State(ctx); st != Hung {
		t.Errorf("State() after Hang = %s, want hung", st)
	}
	if err := v.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	pid := v.Pid()
	v.Stop(ctx)
	if st := v.State(ctx); st != Down {
		t.Errorf("State() after Stop = %s, want down", st)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("QEMU pid %d still exists after Stop", pid)
	}
}

func execJSON(t *testing.T, v *VM, line string, into any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := v.Console().Exec(ctx, line)
	if err != nil {
		t.Fatalf("slot %d: Exec(%q) = %q, %v", v.Config().Slot, line, out, err)
	}
	if err := json.Unmarshal([]byte(out), into); err != nil {
		t.Fatalf("slot %d: Exec(%q) = %q: not JSON: %v", v.Config().Slot, line, out, err)
	}
}

// TestBootEachRole boots each image alone and checks what it reports.
func TestBootEachRole(t *testing.T) {
	roles := []string{"mgmt", "switch", "epon"}
	a := need(t, roles...)
	slots := map[string]int{"switch": 1, "mgmt": 3, "epon": 5}
	var wg sync.WaitGroup
	for _, role := range roles {
		v := startBlade(t, a, role, slots[role])
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			if err := v.WaitBoot(ctx, 1); err != nil {
				t.Errorf("%s: %v", role, err)
				return
			}
			if st := v.State(ctx); st != Up {
				t.Errorf("%s: State() = %s, want up", role, st)
			}
			var ver struct {
				Role    string `json:"role"`
				Version string `json:"version"`
			}
			execJSON(t, v, "show version json", &ver)
			if ver.Role != role || ver.Version == "" {
				t.Errorf("%s: show version json = %+v, want role %s and a version", role, ver, role)
			}
			var hw struct {
				Watchdog struct {
					Present bool `json:"present"`
				} `json:"watchdog"`
				IPMI struct {
					Present bool `json:"present"`
				} `json:"ipmi"`
			}
			execJSON(t, v, "show hardware json", &hw)
			if !hw.Watchdog.Present || !hw.IPMI.Present {
				t.Errorf("%s: show hardware json: watchdog present %v, ipmi present %v, want both", role, hw.Watchdog.Present, hw.IPMI.Present)
			}
		}()
	}
	wg.Wait()
}

// TestWatchdogResets hangs the firmware's main loop: the i6300esb resets the machine, which
// (with -no-reboot) ends QEMU with a reset as its reason, for the shelf's boot ROM to boot
// the blade again (the shelf's tests check that it comes back to its prompt).
func TestWatchdogResets(t *testing.T) {
	a := need(t, "mgmt")
	v := startBlade(t, a, "mgmt", 3)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	if err := v.WaitBoot(ctx, 1); err != nil {
		t.Fatal(err)
	}
	hctx, hcancel := context.WithTimeout(ctx, 10*time.Second)
	// debug hang may or may not answer with a prompt before the reset.
	v.Console().Exec(hctx, "debug hang")
	hcancel()
	select {
	case <-v.Exited():
	case <-ctx.Done():
		t.Fatalf("QEMU still runs after debug hang: the watchdog did not reset the machine")
	}
	if r := v.ExitReason(); !IsReset(r) {
		t.Errorf("ExitReason() after a watchdog reset = %q, want a reset", r)
	}
	if !strings.Contains(v.Log(), "role=mgmt shelf=1 slot=3 ready") {
		t.Errorf("console log has no banner")
	}
}
