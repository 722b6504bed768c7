package vm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/term"
)

// fakeBlade plays the firmware's side of the console with a real
// x/term Terminal, so echo and line endings are exactly what the firmware's
// terminal produces.
func fakeBlade(t *testing.T, conn net.Conn, role string, slot int) {
	t.Helper()
	go func() {
		defer conn.Close()
		for boot := 0; ; boot++ {
			fmt.Fprintf(conn, "[    1.0] some kernel line\r\nCGOA 0.1.0 role=%s shelf=1 slot=%d ready\r\n", role, slot)
			tm := term.NewTerminal(conn, fmt.Sprintf("%s-s%d> ", role, slot))
			reboot := false
			for !reboot {
				line, err := tm.ReadLine()
				if err != nil {
					return
				}
				switch {
				case line == "show version json":
					fmt.Fprintf(tm, "{\"role\":%q,\"version\":\"0.1.0\"}\n", role)
				case line == "":
				case line == "multi":
					fmt.Fprint(tm, "one\ntwo\n\nfour\n")
				case line == "reboot":
					reboot = true
				case strings.HasPrefix(line, "echo "):
					fmt.Fprintln(tm, strings.TrimPrefix(line, "echo "))
				default:
					fmt.Fprintf(tm, "error: unknown command %q\nusage: help | show ... | reboot\n", line)
				}
			}
		}
	}()
}

func newTestConsole(t *testing.T) *Console {
	a, b := net.Pipe()
	fakeBlade(t, b, "mgmt", 3)
	c := NewConsole(a)
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.WaitBoot(ctx, 1); err != nil {
		t.Fatalf("WaitBoot(1) = %v", err)
	}
	return c
}

func execCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestConsoleExec(t *testing.T) {
	c := newTestConsole(t)
	if got := c.Prompt(); got != "mgmt-s3> " {
		t.Errorf("Prompt() = %q, want %q", got, "mgmt-s3> ")
	}
	if b := c.Banner(); b.Role != "mgmt" || b.Slot != "3" || b.Version != "0.1.0" {
		t.Errorf("Banner() = %+v", b)
	}
	tests := []struct {
		line, want string
	}{
		{"show version json", `{"role":"mgmt","version":"0.1.0"}`},
		{"multi", "one\ntwo\n\nfour"},
		{"", ""},
		{"echo mgmt-s3> inside", "mgmt-s3> inside"},
		// Longer than the terminal's 80 columns: x/term wraps the echo.
		{"echo " + strings.Repeat("x", 150), strings.Repeat("x", 150)},
	}
	for _, tt := range tests {
		got, err := c.Exec(execCtx(t), tt.line)
		if err != nil || got != tt.want {
			t.Errorf("Exec(%q) = %q, %v, want %q", tt.line, got, err, tt.want)
		}
	}
}

func TestConsoleExecError(t *testing.T) {
	c := newTestConsole(t)
	out, err := c.Exec(execCtx(t), "frobnicate now")
	var ce *CommandError
	if !errors.As(err, &ce) {
		t.Fatalf("Exec(frobnicate) = %q, %v, want *CommandError", out, err)
	}
	if !strings.HasPrefix(out, "error: unknown command") || !strings.Contains(out, "\nusage: ") {
		t.Errorf("Exec(frobnicate) output = %q, want error and usage lines", out)
	}
	if _, err := c.Exec(execCtx(t), "bad\rline"); err == nil {
		t.Errorf("Exec with a line break = nil error, want error")
	}
	// The console still works after an error.
	if got, err := c.Exec(execCtx(t), "echo ok"); err != nil || got != "ok" {
		t.Errorf("Exec(echo ok) after error = %q, %v", got, err)
	}
}

func TestConsoleReboot(t *testing.T) {
	c := newTestConsole(t)
	// reboot never returns a prompt of its own boot; the next boot's does.
	if _, err := c.Exec(execCtx(t), "reboot"); err != nil {
		t.Fatalf("Exec(reboot) = %v", err)
	}
	if err := c.WaitBoot(execCtx(t), 2); err != nil {
		t.Fatalf("WaitBoot(2) = %v", err)
	}
	if got := c.Boots(); got != 2 {
		t.Errorf("Boots() = %d, want 2", got)
	}
	if got, err := c.Exec(execCtx(t), "echo again"); err != nil || got != "again" {
		t.Errorf("Exec(echo again) = %q, %v", got, err)
	}
}

func TestConsoleTimeoutAndClose(t *testing.T) {
	a, b := net.Pipe()
	c := NewConsole(a)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.WaitBoot(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitBoot on a silent console = %v, want DeadlineExceeded", err)
	}
	if _, err := c.Exec(execCtx(t), "show version"); err == nil {
		t.Errorf("Exec before the prompt = nil error, want error")
	}
	b.Close()
	if err := c.WaitBoot(execCtx(t), 1); !errors.Is(err, ErrConsoleClosed) {
		t.Errorf("WaitBoot on a closed console = %v, want ErrConsoleClosed", err)
	}
}

type sink struct{ ch chan []byte }

func (s sink) Write(p []byte) (int, error) { s.ch <- append([]byte(nil), p...); return len(p), nil }

func TestConsoleAttach(t *testing.T) {
	c := newTestConsole(t)
	s := sink{make(chan []byte, 100)}
	detach, err := c.Attach(s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(execCtx(t), "echo x"); !errors.Is(err, ErrBusy) {
		t.Errorf("Exec while attached = %v, want ErrBusy", err)
	}
	if _, err := c.Attach(s); !errors.Is(err, ErrBusy) {
		t.Errorf("second Attach = %v, want ErrBusy", err)
	}
	c.Write([]byte("echo typed\r"))
	var got strings.Builder
	deadline := time.After(5 * time.Second)
	for !strings.Contains(got.String(), "typed\r\nmgmt-s3> ") {
		select {
		case b := <-s.ch:
			got.Write(b)
		case <-deadline:
			t.Fatalf("attached output = %q, want the command's output and prompt", got.String())
		}
	}
	detach()
	if out, err := c.Exec(execCtx(t), "echo back"); err != nil || out != "back" {
		t.Errorf("Exec after detach = %q, %v", out, err)
	}
}

func TestReply(t *testing.T) {
	tests := []struct {
		got, line string
		want      string
		done      bool
	}{
		{"show x\r\nout\r\np> ", "show x", "out", true},
		{"show x\r\nout\r\n", "show x", "", false},
		{"show x\r\nou", "show x", "", false},
		{"sh\x1b[Kow x\r\np> ", "show x", "", true},
		{"garbage\r\nout\r\np> ", "show x", "out", true},
		{"show x\r\nval p> ", "show x", "", false},
	}
	for _, tt := range tests {
		got, done := reply(tt.got, tt.line, "p> ")
		if got != tt.want || done != tt.done {
			t.Errorf("reply(%q, %q) = %q, %v, want %q, %v", tt.got, tt.line, got, done, tt.want, tt.done)
		}
	}
}
