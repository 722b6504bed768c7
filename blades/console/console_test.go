package console

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func testConsole() *Console {
	c := New()
	c.View([]string{"show", "thing"}, "[NAME]", "a view", 0, 1, func(args []string) (any, error) {
		if len(args) == 1 && args[0] == "bad" {
			return nil, errors.New("no thing called bad")
		}
		return map[string]int{"n": len(args)}, nil
	}, func(w io.Writer, v any) { fmt.Fprintf(w, "n=%d\n", v.(map[string]int)["n"]) })
	c.Action([]string{"do", "it"}, "X", "an action", 1, 1, func(w io.Writer, args []string) error {
		fmt.Fprintf(w, "did %s\n", args[0])
		return nil
	})
	c.Action([]string{"boom"}, "", "panics", 0, 0, func(io.Writer, []string) error {
		var m map[string]int
		m["x"] = 1 // nil map write: a real panic
		return nil
	})
	return c
}

func TestRun(t *testing.T) {
	tests := []struct {
		line    string
		want    string
		wantErr bool
	}{
		{"show thing", "n=0\n", false},
		{"show thing a json", "{\"n\":1}\n", false},
		{"show thing json", "{\"n\":0}\n", false},
		{"show thing a b", "error: bad arguments: \"show thing\" takes 0 to 1 arguments\nusage: show thing [NAME] [json]\n", true},
		{"show thing bad", "error: no thing called bad\nusage: show thing [NAME] [json]\n", true},
		{"do it now", "did now\n", false},
		{"do it", "error: bad arguments: \"do it\" takes exactly 1 argument(s)\nusage: do it X\n", true},
		{"show nothing", "error: unknown command \"show nothing\"\nusage: show thing [NAME] [json]\n", true},
		{"frobnicate", "error: unknown command \"frobnicate\"\nusage: type \"help\" for the list of commands\n", true},
		{"   ", "", false},
	}
	c := testConsole()
	for _, tt := range tests {
		var b bytes.Buffer
		err := c.Run(&b, tt.line)
		if b.String() != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("Run(%q) = %q, %v; want %q, error %v", tt.line, b.String(), err, tt.want, tt.wantErr)
		}
	}
	if got := c.Errors.Load(); got != 5 {
		t.Errorf("Errors = %d, want 5", got)
	}
}

func TestRunRecoversPanic(t *testing.T) {
	c := testConsole()
	var logged any
	c.OnPanic = func(_ string, v any, _ []byte) { logged = v }
	var b bytes.Buffer
	if err := c.Run(&b, "boom"); err == nil || !strings.HasPrefix(b.String(), "error: internal error") {
		t.Fatalf("Run(boom) = %q, %v; want an internal error", b.String(), err)
	}
	if logged == nil {
		t.Errorf("OnPanic not called")
	}
	b.Reset()
	if err := c.Run(&b, "show thing"); err != nil || b.String() != "n=0\n" {
		t.Errorf("after a panic, Run(show thing) = %q, %v", b.String(), err)
	}
}

// TestServe drives a session the way the shelf tool does: type a line ending in \r, read the
// echo, the output and the next prompt.
func TestServe(t *testing.T) {
	c := testConsole()
	a, b := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- c.Serve(a, "test-s1> ", "READY") }()
	// Drain the far end continuously, as a serial line would: the editor may write more than
	// the caller waits for, and a synchronous pipe would otherwise stall it.
	chunks := make(chan []byte, 64)
	go func() {
		defer close(chunks)
		for {
			buf := make([]byte, 256)
			n, err := b.Read(buf)
			if err != nil {
				return
			}
			chunks <- buf[:n]
		}
	}()
	var acc []byte
	read := func(until string) string {
		timeout := time.After(10 * time.Second)
		for !bytes.Contains(acc, []byte(until)) {
			select {
			case c, ok := <-chunks:
				if !ok {
					t.Fatalf("console closed before %q (have %q)", until, acc)
				}
				acc = append(acc, c...)
			case <-timeout:
				t.Fatalf("no %q from the console within 10s (have %q)", until, acc)
			}
		}
		i := bytes.Index(acc, []byte(until)) + len(until)
		got := string(acc[:i])
		acc = acc[i:]
		return got
	}
	read("test-s1> ")
	if _, err := b.Write([]byte("show thing x json\r")); err != nil {
		t.Fatal(err)
	}
	got := read("\r\ntest-s1> ")
	if !strings.Contains(got, "show thing x json\r\n{\"n\":1}\r\n") {
		t.Errorf("session output = %q, want echo then JSON", got)
	}
	if _, err := b.Write([]byte("nope\r")); err != nil {
		t.Fatal(err)
	}
	if got := read("\r\ntest-s1> "); !strings.Contains(got, "\r\nerror: unknown command \"nope\"\r\n") {
		t.Errorf("session output = %q, want an error line", got)
	}
	b.Close()
	if err := <-done; err != nil && !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("Serve() = %v at EOF", err)
	}
}

func FuzzRun(f *testing.F) {
	for _, s := range []string{"show thing json", "do it x", "help", "show", "\x00\xff json json"} {
		f.Add(s)
	}
	c := testConsole()
	f.Fuzz(func(t *testing.T, line string) {
		if strings.Contains(line, "boom") {
			return
		}
		var b bytes.Buffer
		_ = c.Run(&b, line)
	})
}
