package olt

import (
	"context"
	"time"

	"github.com/cgoa/cgoa/netstack/ponlink"
)

// MonotonicClock is a Clock on the process's monotonic clock, counting
// quanta from its creation: the clock of an OLT on the blade.
type MonotonicClock struct{ start time.Time }

// NewMonotonicClock starts a clock at 0.
func NewMonotonicClock() *MonotonicClock { return &MonotonicClock{start: time.Now()} }

// Now implements Clock.
func (c *MonotonicClock) Now() int64 { return int64(time.Since(c.start) / 16) }

// LinkPort is a Port over an emulated PON link (ponlink).
type LinkPort struct{ Conn ponlink.Link }

// Send implements Port.
func (p LinkPort) Send(llid uint16, mode bool, frame []byte) error {
	return p.Conn.WriteFrame(&ponlink.Frame{LLID: llid, Mode: mode, Payload: frame})
}

// EmulatedLink adapts cfg to a PON emulated over sockets on the real
// clock, where a frame takes tens of microseconds to a few milliseconds
// to cross a socket and a timer fires late: GATEs are sent 1 ms ahead of
// their windows, round trips up to 5 ms are ranged, and discovery runs
// every 200 ms. Fields already set are kept.
func EmulatedLink(cfg Config) Config {
	if cfg.GateLead == 0 {
		cfg.GateLead = QuantaPerSecond / 1000
	}
	if cfg.MaxRTT == 0 {
		cfg.MaxRTT = 5 * QuantaPerSecond / 1000
	}
	if cfg.DiscoveryPeriod == 0 {
		cfg.DiscoveryPeriod = QuantaPerSecond / 5
	}
	if cfg.DiscoveryWindow == 0 {
		cfg.DiscoveryWindow = 0xffff
	}
	return cfg
}

type rxFrame struct {
	llid    uint16
	frame   []byte
	arrival int64
}

// Serve drives o on a ponlink socket: each frame read is stamped with
// clock's time and handed to Receive, and o is ticked when due. It
// returns when ctx is done (close c then, to end the reader) or c fails.
// o must have been made with LinkPort{c} (or another Port on the same
// link) and clock.
func Serve(ctx context.Context, o *OLT, c ponlink.Link, clock Clock) error {
	rx := make(chan rxFrame, 1024)
	errc := make(chan error, 1)
	go func() {
		buf := make([]byte, ponlink.MaxDatagram)
		for {
			f, err := c.ReadFrame(buf)
			if err != nil {
				errc <- err
				return
			}
			select {
			case rx <- rxFrame{f.LLID, append([]byte(nil), f.Payload...), clock.Now()}:
			case <-ctx.Done():
				return
			}
		}
	}()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		next := o.Tick()
		t.Reset(time.Duration(max(0, next-clock.Now())) * 16)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-errc:
			return err
		case f := <-rx:
			o.Receive(f.llid, f.frame, f.arrival)
		case <-t.C:
		}
	}
}
