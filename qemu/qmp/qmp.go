package qmp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"
)

// Error is an error reply from QEMU.
type Error struct {
	Command string
	Class   string `json:"class"`
	Desc    string `json:"desc"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("qmp: %s: %s: %s", e.Command, e.Class, e.Desc)
}

// ErrClosed is returned by Execute once the connection is gone (QEMU quit).
var ErrClosed = errors.New("qmp: connection closed")

// Event is an asynchronous QMP event.
type Event struct {
	Name      string          `json:"event"`
	Data      json.RawMessage `json:"data"`
	Timestamp struct {
		Seconds      int64 `json:"seconds"`
		Microseconds int64 `json:"microseconds"`
	} `json:"timestamp"`
}

// Time returns the event's timestamp.
func (e Event) Time() time.Time {
	return time.Unix(e.Timestamp.Seconds, e.Timestamp.Microseconds*1000)
}

// Status is the reply to query-status.
type Status struct {
	Running    bool   `json:"running"`
	Singlestep bool   `json:"singlestep"`
	Status     string `json:"status"` // "running", "paused", "shutdown", "watchdog", ...
}

// Greeting is QEMU's first message.
type Greeting struct {
	QMP struct {
		Version struct {
			QEMU struct {
				Major int `json:"major"`
				Minor int `json:"minor"`
				Micro int `json:"micro"`
			} `json:"qemu"`
			Package string `json:"package"`
		} `json:"version"`
		Capabilities []string `json:"capabilities"`
	} `json:"QMP"`
}

// message is any line QEMU sends after the greeting.
type message struct {
	Event  string          `json:"event"`
	ID     string          `json:"id"`
	Return json.RawMessage `json:"return"`
	Error  *Error          `json:"error"`
}

type reply struct {
	ret json.RawMessage
	err *Error
}

// Client is a QMP connection. Its methods are safe for concurrent use.
type Client struct {
	conn     net.Conn
	greeting Greeting
	events   chan Event

	mu      sync.Mutex
	nextID  int
	pending map[string]chan reply
	closed  bool
	done    chan struct{}
	readErr error

	wmu sync.Mutex
}

// eventBuffer bounds queued events; when the reader falls behind, the oldest
// are dropped rather than blocking command replies.
const eventBuffer = 256

// Dial connects to a QMP unix socket and negotiates capabilities. It keeps
// retrying while the socket does not exist or refuses, until ctx ends, so it
// can be called right after starting QEMU.
func Dial(ctx context.Context, path string) (*Client, error) {
	var d net.Dialer
	var conn net.Conn
	for {
		var err error
		conn, err = d.DialContext(ctx, "unix", path)
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("qmp: dial %s: %w (last error: %v)", path, ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	c, err := newClient(ctx, conn)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("qmp: %s: %w", path, err)
	}
	return c, nil
}

func newClient(ctx context.Context, conn net.Conn) (*Client, error) {
	c := &Client{
		conn:    conn,
		events:  make(chan Event, eventBuffer),
		pending: map[string]chan reply{},
		done:    make(chan struct{}),
	}
	r := bufio.NewReader(conn)
	if dl, ok := ctx.Deadline(); ok {
		conn.SetReadDeadline(dl)
	}
	line, err := r.ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("reading greeting: %w", err)
	}
	conn.SetReadDeadline(time.Time{})
	if err := json.Unmarshal(line, &c.greeting); err != nil {
		return nil, fmt.Errorf("bad greeting %q: %w", line, err)
	}
	go c.read(r)
	if err := c.Execute(ctx, "qmp_capabilities", nil, nil); err != nil {
		return nil, err
	}
	return c, nil
}

// Greeting returns QEMU's greeting (version, capabilities).
func (c *Client) Greeting() Greeting { return c.greeting }

// Events returns the channel of asynchronous events; it is closed when the
// connection ends.
func (c *Client) Events() <-chan Event { return c.events }

// Done is closed when the connection has ended.
func (c *Client) Done() <-chan struct{} { return c.done }

func (c *Client) read(r *bufio.Reader) {
	var err error
	for {
		var line []byte
		line, err = r.ReadBytes('\n')
		if err != nil {
			break
		}
		var m message
		if jerr := json.Unmarshal(line, &m); jerr != nil {
			continue // not ours to crash on; QEMU only sends JSON
		}
		if m.Event != "" {
			var ev Event
			if json.Unmarshal(line, &ev) == nil {
				select {
				case c.events <- ev:
				default:
					select { // drop the oldest
					case <-c.events:
					default:
					}
					select {
					case c.events <- ev:
					default:
					}
				}
			}
			continue
		}
		c.mu.Lock()
		ch := c.pending[m.ID]
		delete(c.pending, m.ID)
		c.mu.Unlock()
		if ch != nil {
			ch <- reply{ret: m.Return, err: m.Error}
		}
	}
	c.mu.Lock()
	c.closed = true
	c.readErr = err
	for id, ch := range c.pending {
		close(ch)
		delete(c.pending, id)
	}
	c.mu.Unlock()
	close(c.events)
	close(c.done)
}

// Execute runs a QMP command. args is marshalled as "arguments" (nil for
// none); the "return" value is unmarshalled into result when it is not nil.
func (c *Client) Execute(ctx context.Context, command string, args any, result any) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return fmt.Errorf("qmp: %s: %w", command, ErrClosed)
	}
	c.nextID++
	id := strconv.Itoa(c.nextID)
	ch := make(chan reply, 1)
	c.pending[id] = ch
	c.mu.Unlock()

	req := map[string]any{"execute": command, "id": id}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		c.forget(id)
		return fmt.Errorf("qmp: %s: %w", command, err)
	}
	c.wmu.Lock()
	if dl, ok := ctx.Deadline(); ok {
		c.conn.SetWriteDeadline(dl)
	}
	_, err = c.conn.Write(append(b, '\n'))
	c.conn.SetWriteDeadline(time.Time{})
	c.wmu.Unlock()
	if err != nil {
		c.forget(id)
		return fmt.Errorf("qmp: %s: %w", command, err)
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return fmt.Errorf("qmp: %s: %w", command, ErrClosed)
		}
		if r.err != nil {
			r.err.Command = command
			return r.err
		}
		if result != nil && len(r.ret) > 0 {
			if err := json.Unmarshal(r.ret, result); err != nil {
				return fmt.Errorf("qmp: %s: decoding reply %s: %w", command, r.ret, err)
			}
		}
		return nil
	case <-ctx.Done():
		c.forget(id)
		return fmt.Errorf("qmp: %s: %w", command, ctx.Err())
	}
}

func (c *Client) forget(id string) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// Status runs query-status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.Execute(ctx, "query-status", nil, &st)
	return st, err
}

// SetLink sets the link state of a NIC by device id (the port name).
func (c *Client) SetLink(ctx context.Context, device string, up bool) error {
	return c.Execute(ctx, "set_link", map[string]any{"name": device, "up": up}, nil)
}

// Close closes the connection.
func (c *Client) Close() error {
	err := c.conn.Close()
	<-c.done
	return err
}
