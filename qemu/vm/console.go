package vm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"time"
)

// CommandError is a console command that the firmware refused: its first
// output line starts with "error: ".
type CommandError struct {
	Command string
	Output  string // all output lines, the error and usage included
}

func (e *CommandError) Error() string {
	first, _, _ := strings.Cut(e.Output, "\n")
	return fmt.Sprintf("console: %q: %s", e.Command, strings.TrimPrefix(first, "error: "))
}

// ErrBusy is returned by Exec while an interactive session is attached.
var ErrBusy = errors.New("console: attached to an interactive session")

// ErrConsoleClosed is returned once the console socket is gone.
var ErrConsoleClosed = errors.New("console: closed")

// bannerRE matches the line the firmware prints before its first prompt.
var bannerRE = regexp.MustCompile(`CGOA (\S+) role=(\S+) shelf=(\d+) slot=(\d+) ready`)

// maxBuffer bounds the kept console output; older output is still in the log file.
const maxBuffer = 1 << 20

// Banner is what the firmware announced at boot.
type Banner struct {
	Version string
	Role    string
	Shelf   string
	Slot    string
}

// Console is a client of a blade's serial console socket. It reads the
// console continuously, so it notices boots (banners) and prompts, and
// serialises Exec calls.
type Console struct {
	conn net.Conn

	mu       sync.Mutex
	buf      []byte
	base     int64 // stream offset of buf[0]
	scanned  int64 // banners searched up to here
	boots    []int64
	banner   Banner
	prompt   string // learned from the banner: "<role>-s<slot>> "
	upAt     int64  // offset just after the prompt of the last boot; -1 if not yet
	notify   chan struct{}
	closed   bool
	tap      io.Writer
	execLock chan struct{}
}

// DialConsole connects to a console socket, retrying until it exists or ctx ends.
func DialConsole(ctx context.Context, path string) (*Console, error) {
	var d net.Dialer
	for {
		conn, err := d.DialContext(ctx, "unix", path)
		if err == nil {
			return NewConsole(conn), nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("console: dial %s: %w (last error: %v)", path, ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// NewConsole starts reading a console connection.
func NewConsole(conn net.Conn) *Console {
	c := &Console{conn: conn, notify: make(chan struct{}), upAt: -1, execLock: make(chan struct{}, 1)}
	go c.read()
	return c
}

func (c *Console) read() {
	b := make([]byte, 4096)
	for {
		n, err := c.conn.Read(b)
		if n > 0 {
			c.mu.Lock()
			c.buf = append(c.buf, b[:n]...)
			if len(c.buf) > maxBuffer {
				drop := len(c.buf) - maxBuffer/2
				c.buf = append([]byte(nil), c.buf[drop:]...)
				c.base += int64(drop)
			}
			c.scan()
			if c.tap != nil {
				c.tap.Write(b[:n])
			}
			close(c.notify)
			c.notify = make(chan struct{})
			c.mu.Unlock()
		}
		if err != nil {
			c.mu.Lock()
			c.closed = true
			close(c.notify)
			c.notify = make(chan struct{})
			c.mu.Unlock()
			return
		}
	}
}

// scan looks for new banners and the prompt after the last one. Called with mu held.
func (c *Console) scan() {
	end := c.base + int64(len(c.buf))
	from := c.scanned - 160 // a banner may straddle two reads
	if len(c.boots) > 0 && from < c.boots[len(c.boots)-1] {
		from = c.boots[len(c.boots)-1]
	}
	if from < c.base {
		from = c.base
	}
	for {
		m := bannerRE.FindSubmatchIndex(c.buf[from-c.base:])
		if m == nil {
			break
		}
		at := from + int64(m[1])
		sub := c.buf[from-c.base:]
		c.banner = Banner{string(sub[m[2]:m[3]]), string(sub[m[4]:m[5]]), string(sub[m[6]:m[7]]), string(sub[m[8]:m[9]])}
		c.prompt = fmt.Sprintf("%s-s%s> ", c.banner.Role, c.banner.Slot)
		c.boots = append(c.boots, at)
		c.upAt = -1
		from = at
	}
	c.scanned = end
	if len(c.boots) > 0 && c.upAt < 0 {
		last := c.boots[len(c.boots)-1]
		if last >= c.base {
			if i := bytes.Index(c.buf[last-c.base:], []byte(c.prompt)); i >= 0 {
				c.upAt = last + int64(i+len(c.prompt))
			}
		}
	}
}

// Boots is how many banners the console has shown since it was connected.
func (c *Console) Boots() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.boots)
}

// Banner returns the last banner seen.
func (c *Console) Banner() Banner {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.banner
}

// Prompt is the prompt learned from the banner ("" before the first banner).
func (c *Console) Prompt() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.prompt
}

// Up reports whether the current boot has reached its prompt.
func (c *Console) Up() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.upAt >= 0
}

// wait calls cond with mu held each time output arrives, until it returns
// true, ctx ends or the console closes.
func (c *Console) wait(ctx context.Context, cond func() bool) error {
	for {
		c.mu.Lock()
		if cond() {
			c.mu.Unlock()
			return nil
		}
		if c.closed {
			c.mu.Unlock()
			return ErrConsoleClosed
		}
		ch := c.notify
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("console: %w", ctx.Err())
		}
	}
}

// WaitBoot waits until boot n (counted from 1 since the console connected)
// has shown its banner and then its prompt.
func (c *Console) WaitBoot(ctx context.Context, n int) error {
	err := c.wait(ctx, func() bool { return len(c.boots) > n || (len(c.boots) == n && c.upAt >= 0) })
	if err != nil {
		c.mu.Lock()
		seen := len(c.boots)
		c.mu.Unlock()
		return fmt.Errorf("waiting for prompt of boot %d (banners seen: %d): %w", n, seen, err)
	}
	return nil
}

// Exec runs one console command and returns its output (echo and prompt
// removed, lines joined by "\n"). A first output line "error: ..." gives a
// *CommandError carrying the output.
func (c *Console) Exec(ctx context.Context, line string) (string, error) {
	if strings.ContainsAny(line, "\r\n") {
		return "", fmt.Errorf("console: command %q contains a line break", line)
	}
	select {
	case c.execLock <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("console: %q: waiting for the console: %w", line, ctx.Err())
	}
	defer func() { <-c.execLock }()

	c.mu.Lock()
	if c.tap != nil {
		c.mu.Unlock()
		return "", ErrBusy
	}
	if c.upAt < 0 {
		c.mu.Unlock()
		return "", fmt.Errorf("console: %q: blade has not reached its prompt", line)
	}
	start := c.base + int64(len(c.buf))
	prompt := c.prompt
	c.mu.Unlock()

	if dl, ok := ctx.Deadline(); ok {
		c.conn.SetWriteDeadline(dl)
	}
	_, err := c.conn.Write([]byte(line + "\r"))
	c.conn.SetWriteDeadline(time.Time{})
	if err != nil {
		return "", fmt.Errorf("console: %q: %w", line, err)
	}
	var out string
	var done bool
	err = c.wait(ctx, func() bool {
		if start < c.base {
			start = c.base // output larger than the buffer; keep the tail
		}
		out, done = reply(string(c.buf[start-c.base:]), line, prompt)
		return done
	})
	if err != nil {
		return "", fmt.Errorf("console: %q: %w (got so far %q)", line, err, truncate(string(c.buf[max(start-c.base, 0):]), 400))
	}
	if strings.HasPrefix(out, "error: ") {
		return out, &CommandError{Command: line, Output: out}
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// reply extracts a command's output from the console bytes received since
// the command was written, once the prompt has come back: drop the echo
// (the line's characters, with any "\r\n" a terminal inserts on wrap and any
// escape sequences), then take everything up to the prompt at the start of
// a line, which must be the last thing received.
func reply(got, line, prompt string) (string, bool) {
	if !strings.HasSuffix(got, prompt) {
		return "", false
	}
	body := got[:len(got)-len(prompt)]
	if body != "" && !strings.HasSuffix(body, "\n") {
		return "", false // the prompt text inside output, not the prompt
	}
	rest, ok := skipEcho(body, line)
	if !ok {
		return "", false
	}
	rest = strings.TrimSuffix(rest, "\r\n")
	rest = strings.ReplaceAll(rest, "\r\n", "\n")
	return rest, true
}

// skipEcho removes the echoed line and the "\r\n" after it.
func skipEcho(s, line string) (string, bool) {
	i, j := 0, 0
	for j < len(line) && i < len(s) {
		switch {
		case s[i] == line[j]:
			i++
			j++
		case s[i] == '\r' || s[i] == '\n':
			i++
		case s[i] == 0x1b: // CSI escape: ESC [ params letter
			i++
			if i < len(s) && s[i] == '[' {
				i++
				for i < len(s) && (s[i] < 0x40 || s[i] > 0x7e) {
					i++
				}
			}
			i++
		default:
			// Not our echo after all: fall back to dropping the first line.
			k := strings.Index(s, "\r\n")
			if k < 0 {
				return "", false
			}
			return s[k+2:], true
		}
	}
	if j < len(line) {
		return "", false
	}
	k := strings.Index(s[i:], "\r\n")
	if k < 0 {
		return "", false
	}
	return s[i+k+2:], true
}

// Attach sends everything the console prints to w until the returned detach
// function is called; meanwhile Exec returns ErrBusy. Write sends keys.
func (c *Console) Attach(w io.Writer) (detach func(), err error) {
	select {
	case c.execLock <- struct{}{}:
	default:
		return nil, ErrBusy
	}
	c.mu.Lock()
	if c.tap != nil {
		c.mu.Unlock()
		<-c.execLock
		return nil, ErrBusy
	}
	c.tap = w
	c.mu.Unlock()
	<-c.execLock
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			c.tap = nil
			c.mu.Unlock()
		})
	}, nil
}

// Write sends raw bytes (keystrokes) to the console.
func (c *Console) Write(p []byte) (int, error) { return c.conn.Write(p) }

// Done reports whether the console connection has ended.
func (c *Console) Done() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Close closes the console connection.
func (c *Console) Close() error { return c.conn.Close() }
