package ponlink

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
)

// Conn is one end of an emulated PON link: a unixgram socket bound to a
// local path that sends to the peer's path, reading and writing Frames.
type Conn struct {
	c      *net.UnixConn
	remote *net.UnixAddr
	local  string

	// RxErrors counts datagrams that failed to decode (dropped).
	RxErrors atomic.Uint64
}

// Listen binds local (removing a stale socket file) and sends to remote.
func Listen(local, remote string) (*Conn, error) {
	if err := os.Remove(local); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("ponlink: %s: %w", local, err)
	}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: local, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("ponlink: listen %s: %w", local, err)
	}
	return &Conn{c: c, remote: &net.UnixAddr{Name: remote, Net: "unixgram"}, local: local}, nil
}

// NewConn wraps an already connected datagram socket (one end of a
// socketpair, say); remote may be nil for a connected socket.
func NewConn(c *net.UnixConn, remote *net.UnixAddr) *Conn {
	return &Conn{c: c, remote: remote}
}

// WriteFrame sends one frame.
func (c *Conn) WriteFrame(f *Frame) error {
	b, err := f.MarshalBinary()
	if err != nil {
		return err
	}
	if c.remote != nil {
		_, err = c.c.WriteToUnix(b, c.remote)
	} else {
		_, err = c.c.Write(b)
	}
	if err != nil {
		return fmt.Errorf("ponlink: send LLID %#x: %w", f.LLID, err)
	}
	return nil
}

// ReadFrame reads the next well-formed frame into buf (at least
// MaxDatagram bytes long) and returns it; its Payload aliases buf.
// Malformed datagrams are counted in RxErrors and skipped. It returns an
// error only when the socket does.
func (c *Conn) ReadFrame(buf []byte) (Frame, error) {
	for {
		n, err := c.c.Read(buf)
		if err != nil {
			return Frame{}, fmt.Errorf("ponlink: read: %w", err)
		}
		var f Frame
		if err := f.UnmarshalBinary(buf[:n]); err != nil {
			c.RxErrors.Add(1)
			continue
		}
		return f, nil
	}
}

// Close closes the socket and removes the local socket file it bound.
func (c *Conn) Close() error {
	err := c.c.Close()
	if c.local != "" {
		os.Remove(c.local)
	}
	return err
}
