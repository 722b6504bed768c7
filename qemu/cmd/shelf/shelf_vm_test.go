package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgoa/cgoa/qemu/shelf"
	"github.com/cgoa/cgoa/qemu/shelftest"
	"github.com/cgoa/cgoa/qemu/topology"
)

// buildShelf compiles this command for the test.
func buildShelf(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "shelf")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// qemuOf lists QEMU processes whose command line mentions dir.
func qemuOf(dir string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), "qemu-system") && strings.Contains(string(b), dir) {
			pids = append(pids, pid)
		}
	}
	return pids
}

type env struct {
	t     *testing.T
	bin   string
	build string
	run   string
}

func (e env) shelf(args ...string) (string, error) {
	args = append(args[:1:1], append([]string{"--build", e.build, "--run", e.run}, args[1:]...)...)
	cmd := exec.Command(e.bin, args...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func setup(t *testing.T) env {
	a := shelftest.Need(t, topology.Switch, topology.Mgmt)
	run, err := os.MkdirTemp("", "shelfcmd-")
	if err != nil {
		t.Fatal(err)
	}
	e := env{t: t, bin: buildShelf(t), build: a.Build, run: run}
	t.Cleanup(func() {
		// Whatever happened, leave nothing running.
		if b, err := os.ReadFile(shelf.PidPath(run)); err == nil {
			if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pid > 0 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		for _, pid := range qemuOf(run) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		if t.Failed() {
			for _, f := range []string{"supervisor.log", "slot1.log", "slot3.log"} {
				b, _ := os.ReadFile(filepath.Join(run, f))
				t.Logf("===== %s =====\n%s", f, b)
			}
		}
		os.RemoveAll(run)
	})
	return e
}

func waitGone(t *testing.T, run string) {
	t.Helper()
	err := shelftest.Poll(20*time.Second, func() error {
		if pids := qemuOf(run); len(pids) > 0 {
			return errors.New("qemu still running: " + strconv.Itoa(len(pids)))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestDetachedShelf drives the command as a user does: up --detach, status,
// exec (exit status follows console errors), cut, down; nothing is left.
func TestDetachedShelf(t *testing.T) {
	e := setup(t)
	topo := "../../examples/single-mgmt.yaml"
	if out, err := e.shelf("up", "--detach", "--topology", topo); err != nil {
		t.Fatalf("shelf up --detach: %v\n%s", err, out)
	}
	out, err := e.shelf("status", "--json")
	if err != nil {
		t.Fatalf("shelf status --json: %v\n%s", err, out)
	}
	var st shelf.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil || !st.AllUp() || len(st.Blades) != 2 {
		t.Fatalf("shelf status --json = %s (%v), want 2 blades up", out, err)
	}
	out, err = e.shelf("exec", "3", "show", "version", "json")
	if err != nil || !strings.Contains(out, `"role":"mgmt"`) {
		t.Errorf("shelf exec 3 show version json = %q, %v", out, err)
	}
	out, err = e.shelf("exec", "3", "no-such-command")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.HasPrefix(out, "error: ") {
		t.Errorf("shelf exec 3 no-such-command = %q, %v, want exit 1 and the error line", out, err)
	}
	// An interactive console session through the supervisor; exec is
	// refused meanwhile and works again after detaching.
	conn, err := (shelf.Client{RunDir: e.run}).Console(t.Context(), 3)
	if err != nil {
		t.Fatalf("Console(3) = %v", err)
	}
	conn.Write([]byte("show version json\r"))
	var got []byte
	buf := make([]byte, 1024)
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	for !strings.Contains(string(got), `"role":"mgmt"`) {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("console read: %v; got %q", err, got)
		}
		got = append(got, buf[:n]...)
	}
	if out, err := e.shelf("exec", "3", "show", "version"); err == nil {
		t.Errorf("shelf exec during a console session = %q, nil error, want busy", out)
	}
	conn.Close()
	err = shelftest.Poll(10*time.Second, func() error {
		_, err := e.shelf("exec", "3", "show", "version")
		return err
	})
	if err != nil {
		t.Errorf("shelf exec after detaching: %v", err)
	}
	// shelf flash of a corrupted image: refused with the blade's reason, nothing written.
	img, err := os.ReadFile(filepath.Join(e.build, "images", "mgmt.img"))
	if err != nil {
		t.Fatal(err)
	}
	img[len(img)/2] ^= 0x01
	bad := filepath.Join(t.TempDir(), "corrupted.img")
	os.WriteFile(bad, img, 0o644)
	flashFile := filepath.Join(e.run, "slot3.flash")
	before, err := os.ReadFile(flashFile)
	if err != nil {
		t.Fatalf("no flash file for slot 3: %v", err)
	}
	out, err = e.shelf("flash", "3", bad, "--reboot")
	if err == nil || !strings.Contains(out, "digest mismatch") {
		t.Errorf("shelf flash 3 corrupted.img = %q, %v, want a refusal naming the digest mismatch", out, err)
	}
	if after, _ := os.ReadFile(flashFile); !bytes.Equal(before, after) {
		t.Errorf("slot 3's flash changed although the image was refused")
	}
	if out, err := e.shelf("cut", "3", "nope0"); err == nil {
		t.Errorf("shelf cut 3 nope0 = %q, nil error, want error", out)
	}
	if out, err := e.shelf("kill", "3"); err != nil {
		t.Errorf("shelf kill 3: %v\n%s", err, out)
	}
	if out, err := e.shelf("down"); err != nil {
		t.Fatalf("shelf down: %v\n%s", err, out)
	}
	waitGone(t, e.run)
	if _, err := os.Stat(shelf.ControlPath(e.run)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("control socket left after down: %v", err)
	}
}

// TestForegroundSIGTERM: a foreground `shelf up` stops every VM on SIGTERM.
func TestForegroundSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	e := setup(t)
	cmd := exec.Command(e.bin, "up", "--build", e.build, "--run", e.run, "--topology", "../../examples/single-mgmt.yaml")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	cl := shelf.Client{RunDir: e.run}
	err := shelftest.Poll(3*time.Minute, func() error {
		select {
		case err := <-exited:
			t.Fatalf("shelf up exited early: %v\n%s", err, out.String())
		default:
		}
		resp, err := cl.Call(t.Context(), shelf.Request{Op: "status"})
		if err != nil {
			return err
		}
		if !resp.Status.AllUp() {
			return errors.New("not all up")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("shelf never came up: %v\n%s", err, out.String())
	}
	if len(qemuOf(e.run)) != 2 {
		t.Fatalf("qemu processes = %v, want 2", qemuOf(e.run))
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("shelf up did not exit on SIGTERM\n%s", out.String())
	}
	waitGone(t, e.run)
}
