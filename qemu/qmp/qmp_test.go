package qmp

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// startQEMU starts a paused QEMU with no kernel and a QMP socket, and
// returns the socket path. QEMU is killed when the test ends.
func startQEMU(t *testing.T, extra ...string) (string, *exec.Cmd) {
	t.Helper()
	bin, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		if os.Getenv("CGOA_REQUIRE_VM") == "1" {
			t.Fatal("CGOA_REQUIRE_VM=1 but qemu-system-x86_64 is not installed")
		}
		t.Skip("qemu-system-x86_64 not installed (apt-get install qemu-system-x86): skipping QMP test")
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "qmp.sock")
	args := append([]string{"-machine", "pc,accel=tcg", "-nodefaults", "-no-user-config", "-display", "none", "-S",
		"-qmp", "unix:" + sock + ",server=on,wait=off"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting qemu: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	return sock, cmd
}

func dial(t *testing.T, sock string) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := Dial(ctx, sock)
	if err != nil {
		t.Fatalf("Dial(%s) = %v", sock, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestStatusStopCont(t *testing.T) {
	sock, _ := startQEMU(t)
	c := dial(t, sock)
	if g := c.Greeting(); g.QMP.Version.QEMU.Major == 0 {
		t.Errorf("Greeting() = %+v, want a QEMU version", g)
	}
	st, err := c.Status(ctx(t))
	if err != nil || st.Running || st.Status != "prelaunch" {
		t.Fatalf("Status() = %+v, %v, want prelaunch, not running", st, err)
	}
	if err := c.Execute(ctx(t), "cont", nil, nil); err != nil {
		t.Fatalf("cont: %v", err)
	}
	waitEvent(t, c, "RESUME")
	st, err = c.Status(ctx(t))
	if err != nil || !st.Running {
		t.Fatalf("Status() after cont = %+v, %v, want running", st, err)
	}
	if err := c.Execute(ctx(t), "stop", nil, nil); err != nil {
		t.Fatalf("stop: %v", err)
	}
	waitEvent(t, c, "STOP")
	st, err = c.Status(ctx(t))
	if err != nil || st.Running || st.Status != "paused" {
		t.Fatalf("Status() after stop = %+v, %v, want paused", st, err)
	}
}

func waitEvent(t *testing.T, c *Client, name string) Event {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				t.Fatalf("event stream closed waiting for %s", name)
			}
			if ev.Name == name {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s event", name)
		}
	}
}

func TestErrorReplyAndSetLink(t *testing.T) {
	sock, _ := startQEMU(t, "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,id=base0")
	c := dial(t, sock)
	err := c.Execute(ctx(t), "no-such-command", nil, nil)
	var qe *Error
	if !errors.As(err, &qe) || qe.Class != "CommandNotFound" {
		t.Fatalf("Execute(no-such-command) = %v, want CommandNotFound", err)
	}
	if err := c.SetLink(ctx(t), "base0", false); err != nil {
		t.Fatalf("SetLink(base0, false) = %v", err)
	}
	err = c.SetLink(ctx(t), "nope", false)
	if !errors.As(err, &qe) || qe.Class != "DeviceNotFound" || qe.Command != "set_link" {
		t.Fatalf("SetLink(nope) = %v, want DeviceNotFound from set_link", err)
	}
}

func TestConcurrentExecute(t *testing.T) {
	sock, _ := startQEMU(t)
	c := dial(t, sock)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var names []struct {
				Name string `json:"name"`
			}
			if err := c.Execute(ctx(t), "query-commands", nil, &names); err != nil {
				errs <- err
				return
			}
			if len(names) < 10 {
				errs <- errors.New("query-commands returned too few commands")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestQuitClosesClient(t *testing.T) {
	sock, _ := startQEMU(t)
	c := dial(t, sock)
	if err := c.Execute(ctx(t), "quit", nil, nil); err != nil && !errors.Is(err, ErrClosed) {
		t.Fatalf("quit: %v", err)
	}
	select {
	case <-c.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("connection still open after quit")
	}
	if err := c.Execute(ctx(t), "query-status", nil, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Execute after quit = %v, want ErrClosed", err)
	}
}

func TestDialTimeout(t *testing.T) {
	c, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := Dial(c, filepath.Join(t.TempDir(), "none.sock")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial(missing) = %v, want DeadlineExceeded", err)
	}
}
