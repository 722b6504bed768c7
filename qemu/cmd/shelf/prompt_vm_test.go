package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY returns a pseudo-terminal pair, so `shelf up` sees a terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no /dev/ptmx: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// screen collects what the program writes to the terminal.
type screen struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *screen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *screen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// waitFor polls the screen for text appearing after offset from.
func (s *screen) waitFor(t *testing.T, from int, text string, d time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		got := s.String()
		if i := strings.Index(got[from:], text); i >= 0 {
			return from + i + len(text)
		}
		if time.Now().After(deadline) {
			t.Fatalf("terminal never showed %q; it shows:\n%s", text, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestInteractivePrompt runs `shelf up` on a terminal: the live table, then
// the shelf> prompt; status, exec, kill and quit work, and quit leaves
// nothing running.
func TestInteractivePrompt(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	e := setup(t)
	master, slave := openPTY(t)
	cmd := exec.Command(e.bin, "up", "--build", e.build, "--run", e.run, "--topology", "../../examples/single-mgmt.yaml")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	var sc screen
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := master.Read(b)
			sc.Write(b[:n])
			if err != nil {
				return
			}
		}
	}()
	pos := sc.waitFor(t, 0, "SLOT ROLE", 30*time.Second) // live table
	pos = sc.waitFor(t, pos, "shelf> ", 3*time.Minute)
	say := func(line string) { master.Write([]byte(line + "\n")) }

	say("status")
	pos = sc.waitFor(t, pos, "mgmt-s3", 30*time.Second)
	pos = sc.waitFor(t, pos, "shelf> ", 30*time.Second)
	say("exec 3 show version json")
	pos = sc.waitFor(t, pos, `"role":"mgmt"`, 30*time.Second)
	pos = sc.waitFor(t, pos, "shelf> ", 30*time.Second)
	say("cut 3 nope")
	pos = sc.waitFor(t, pos, "error: ", 30*time.Second)
	say("kill 3")
	pos = sc.waitFor(t, pos, "slot 3: pulled", 30*time.Second)
	say("quit")
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("shelf up after quit: %v\n%s", err, sc.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("shelf up did not exit after quit\n%s", sc.String())
	}
	waitGone(t, e.run)
	_ = pos
}
