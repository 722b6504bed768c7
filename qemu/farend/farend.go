package farend

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
)

// Frame size limits of the framing: an Ethernet header at least, and what a
// unix datagram from QEMU can carry at most.
const (
	MinFrame = 14
	MaxFrame = 65536
)

// ErrDown is returned by Send while the endpoint is set down.
var ErrDown = errors.New("farend: link down")

// ErrFrameSize is returned by Send for a frame outside MinFrame..MaxFrame.
var ErrFrameSize = errors.New("farend: bad frame size")

// Counters are an endpoint's frame counters.
type Counters struct {
	RxFrames, RxBytes uint64 // received from the blade
	TxFrames, TxBytes uint64 // sent to the blade
	RxDropped         uint64 // received while down
	RxErrors          uint64 // runt datagrams (shorter than an Ethernet header)
	TxErrors          uint64 // sends that failed (blade not there, buffer full)
}

// Handler sees each frame received from the blade while the endpoint is up.
// The frame is only valid during the call.
type Handler func(frame []byte)

// Endpoint is one host-side channel end.
type Endpoint struct {
	name    string
	conn    *net.UnixConn
	local   string
	remote  *net.UnixAddr
	handler atomic.Pointer[Handler]
	down    atomic.Bool

	rxFrames, rxBytes, txFrames, txBytes atomic.Uint64
	rxDropped, rxErrors, txErrors        atomic.Uint64

	done      chan struct{}
	closeOnce sync.Once
}

// Listen binds local (removing a stale socket) and starts receiving. Frames
// go to handler (may be nil: count only). remote is the blade's socket.
func Listen(name, local, remote string, handler Handler) (*Endpoint, error) {
	if err := os.Remove(local); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("farend: %s: %w", name, err)
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: local, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("farend: %s: %w", name, err)
	}
	e := &Endpoint{
		name: name, conn: conn, local: local,
		remote: &net.UnixAddr{Name: remote, Net: "unixgram"},
		done:   make(chan struct{}),
	}
	e.SetHandler(handler)
	go e.read()
	return e, nil
}

// Name is the endpoint's name, e.g. "uplink-s1".
func (e *Endpoint) Name() string { return e.name }

func (e *Endpoint) read() {
	defer close(e.done)
	b := make([]byte, MaxFrame)
	for {
		n, _, err := e.conn.ReadFromUnix(b)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // transient; a datagram socket has no connection to lose
		}
		switch {
		case n < MinFrame:
			e.rxErrors.Add(1)
		case e.down.Load():
			e.rxDropped.Add(1)
		default:
			e.rxFrames.Add(1)
			e.rxBytes.Add(uint64(n))
			if h := e.handler.Load(); h != nil && *h != nil {
				(*h)(b[:n])
			}
		}
	}
}

// SetHandler replaces the handler (nil: count only), e.g. to attach a Prober to an uplink.
func (e *Endpoint) SetHandler(h Handler) { e.handler.Store(&h) }

// Send sends one frame to the blade.
func (e *Endpoint) Send(frame []byte) error {
	if e.down.Load() {
		return fmt.Errorf("farend: %s: %w", e.name, ErrDown)
	}
	if len(frame) < MinFrame || len(frame) > MaxFrame {
		return fmt.Errorf("farend: %s: %d bytes: %w", e.name, len(frame), ErrFrameSize)
	}
	if _, err := e.conn.WriteToUnix(frame, e.remote); err != nil {
		e.txErrors.Add(1)
		return fmt.Errorf("farend: %s: send: %w", e.name, err)
	}
	e.txFrames.Add(1)
	e.txBytes.Add(uint64(len(frame)))
	return nil
}

// SetUp sets the endpoint up or down.
func (e *Endpoint) SetUp(up bool) { e.down.Store(!up) }

// Up reports whether the endpoint is up.
func (e *Endpoint) Up() bool { return !e.down.Load() }

// Counters returns a snapshot of the counters.
func (e *Endpoint) Counters() Counters {
	return Counters{
		RxFrames: e.rxFrames.Load(), RxBytes: e.rxBytes.Load(),
		TxFrames: e.txFrames.Load(), TxBytes: e.txBytes.Load(),
		RxDropped: e.rxDropped.Load(), RxErrors: e.rxErrors.Load(), TxErrors: e.txErrors.Load(),
	}
}

// Close stops the endpoint and removes its socket.
func (e *Endpoint) Close() error {
	var err error
	e.closeOnce.Do(func() {
		err = e.conn.Close()
		<-e.done
		os.Remove(e.local)
	})
	return err
}
