package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cgoa/cgoa/qemu/vm"
)

// buildFirmware builds this role's firmware binary once per test run.
func buildFirmware(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "firmware-"+role.Name)
	cmd := exec.Command("go", "build", "-tags", role.Name, "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build -tags %s: %v\n%s", role.Name, err, out)
	}
	return bin
}

// TestProcessModeRejectsBadFlags: bad flags give exit status 2 and a message, never a crash.
func TestProcessModeRejectsBadFlags(t *testing.T) {
	bin := buildFirmware(t)
	for _, args := range [][]string{{}, {"-slot", "17"}, {"-slot", "3", "-shelf", "0"}, {"-slot", "3", "-console", "serial"}} {
		var stderr bytes.Buffer
		cmd := exec.Command(bin, args...)
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.HasPrefix(stderr.String(), "firmware: ") {
			t.Errorf("firmware %q: %v, stderr %q; want exit status 2 and a firmware: message", args, err, stderr.String())
		}
	}
}

// netns is a network namespace the test made; it is deleted on cleanup.
type netns string

func newNetns(t *testing.T) netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("process-mode tests in network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("process-mode tests need iproute2's ip")
	}
	name := netns(fmt.Sprintf("cgoa-fw-%s-%d", role.Name, os.Getpid()))
	run(t, "ip", "netns", "add", string(name))
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", string(name)).Run() })
	return name
}

func (n netns) ip(t *testing.T, args ...string) {
	t.Helper()
	run(t, append([]string{"ip", "-n", string(n)}, args...)...)
}

func run(t *testing.T, argv ...string) {
	t.Helper()
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
}

type portsJSON struct {
	Ports []struct {
		Name    string `json:"name"`
		OperUp  bool   `json:"oper_up"`
		Carrier bool   `json:"carrier"`
	} `json:"ports"`
}

// TestProcessModeInNetns runs the firmware as a process in a namespace with two veth ports,
// drives its console over a unix socket, and checks identity, ports, link changes, panic
// recovery, bad commands and poweroff.
func TestProcessModeInNetns(t *testing.T) {
	ns := newNetns(t)
	bin := buildFirmware(t)
	for _, p := range []string{"base0", "base1"} {
		ns.ip(t, "link", "add", p, "type", "veth", "peer", "name", p+"-far")
		ns.ip(t, "link", "set", p, "up")
		ns.ip(t, "link", "set", p+"-far", "up")
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "console.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.Command("ip", "netns", "exec", string(ns), bin, "-shelf", "2", "-slot", "3",
		"-console", "unix:"+sock, "-state", filepath.Join(dir, "state"))
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	con, err := vm.DialConsole(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	defer con.Close()
	if err := con.WaitBoot(ctx, 1); err != nil {
		t.Fatalf("%v; stderr: %s", err, stderr.String())
	}
	if got, want := con.Prompt(), role.Name+"-s3> "; got != want {
		t.Errorf("prompt = %q, want %q", got, want)
	}
	execJSON := func(line string, v any) {
		t.Helper()
		out, err := con.Exec(ctx, line)
		if err != nil {
			t.Fatalf("exec %q: %v", line, err)
		}
		if err := json.Unmarshal([]byte(out), v); err != nil {
			t.Fatalf("exec %q: output %q is not JSON: %v", line, out, err)
		}
	}
	var ver struct{ Role, Version string }
	execJSON("show version json", &ver)
	if ver.Role != role.Name || ver.Version == "" {
		t.Errorf("show version json = %+v, want role %s", ver, role.Name)
	}
	var slot struct {
		Shelf, Slot    int
		Hostname       string
		Source, Serial string
	}
	execJSON("show slot json", &slot)
	if slot.Shelf != 2 || slot.Slot != 3 || slot.Source != "flags" || slot.Hostname != role.Name+"-s3" {
		t.Errorf("show slot json = %+v, want shelf 2 slot 3 from flags", slot)
	}
	var hw struct {
		Mode     string
		Watchdog struct{ Present bool }
		IPMI     struct{ Present bool }
		Hotswap  struct{ State string }
	}
	execJSON("show hardware json", &hw)
	if hw.Mode != "process" || hw.Watchdog.Present || hw.IPMI.Present || hw.Hotswap.State != "M4" {
		t.Errorf("show hardware json = %+v, want process mode, no watchdog, no IPMI, M4", hw)
	}
	portUp := func(name string) (bool, bool) {
		var ps portsJSON
		execJSON("show ports json", &ps)
		for _, p := range ps.Ports {
			if p.Name == name {
				return p.OperUp && p.Carrier, true
			}
		}
		return false, false
	}
	waitPort := func(name string, want bool) {
		t.Helper()
		for {
			up, ok := portUp(name)
			if !ok {
				t.Fatalf("show ports json: no port %s", name)
			}
			if up == want {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("port %s: up=%v, want %v", name, up, want)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	waitPort("base0", true)
	waitPort("base1", true)
	ns.ip(t, "link", "set", "base0-far", "down") // the far end loses power: carrier drops
	waitPort("base0", false)
	waitPort("base1", true)
	ns.ip(t, "link", "set", "base0-far", "up")
	waitPort("base0", true)

	if _, err := con.Exec(ctx, "debug panic"); err != nil {
		t.Fatalf("debug panic: %v", err)
	}
	var comps struct {
		Panics int `json:"panics_recovered"`
	}
	execJSON("show components json", &comps)
	if comps.Panics != 1 {
		t.Errorf("panics_recovered = %d after debug panic, want 1", comps.Panics)
	}
	var ce *vm.CommandError
	if _, err := con.Exec(ctx, "show ports nosuchport"); !errors.As(err, &ce) {
		t.Errorf("show ports nosuchport = %v, want a console error", err)
	}
	if _, err := con.Exec(ctx, "show log 0"); !errors.As(err, &ce) {
		t.Errorf("show log 0 = %v, want a console error", err)
	}
	var lg struct {
		Entries []struct{ Msg string }
	}
	execJSON("show log 200 json", &lg)
	found := false
	for _, e := range lg.Entries {
		found = found || strings.Contains(e.Msg, "component debug-panic: panic recovered")
	}
	if !found {
		t.Errorf("show log: no record of the recovered panic in %d entries", len(lg.Entries))
	}
	// poweroff ends a process-mode blade with status 0.
	_, _ = con.Exec(ctx, "poweroff")
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Errorf("after poweroff the firmware exited with %v, want status 0", err)
		}
	case <-ctx.Done():
		t.Fatalf("firmware still running after poweroff")
	}
	if b, err := os.ReadFile(filepath.Join(dir, "state", "firmware.log")); err != nil || !bytes.Contains(b, []byte("poweroff requested")) {
		t.Errorf("state/firmware.log = %q, %v; want the poweroff recorded", b, err)
	}
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }
