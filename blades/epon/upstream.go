package epon

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"sync/atomic"

	"github.com/mdlayher/packet"

	"github.com/cgoa/cgoa/netstack/netns"
)

// Upstream carries the OLTs' upstream data frames to the backplane, toward the shelf's
// uplinks. The OLT terminates MPCP and OAM and hands on the other frames of registered LLIDs
// (olt.OLT.OnData); each goes out unchanged on the base channel Via names (the node side's
// choice, blades/switch/hubpath: the channel toward the active hub), or on the first base
// channel while no choice is given. The hubs bridge it to the active hub's uplinks.
//
// A bounded queue stands between the OLT's goroutine and the sockets, so that a slow write
// never delays MPCP; a full queue drops the frame and counts it.
type Upstream struct {
	ports []string
	netNS string
	via   atomic.Pointer[func() string]
	q     chan []byte

	Forwarded atomic.Uint64 // frames written to a base channel
	Dropped   atomic.Uint64 // frames the full queue refused
	Errors    atomic.Uint64 // failed socket opens or writes (the frame is lost)
	perPort   []atomic.Uint64
}

// UpstreamQueue is how many frames wait for a socket at most.
const UpstreamQueue = 1024

// NewUpstream makes the forwarder for the base channels ports (in hub order: base0 to hub
// slot 1 first), in network namespace netNS ("" the process's own; tests), with room for
// queue frames.
func NewUpstream(ports []string, netNS string, queue int) *Upstream {
	return &Upstream{ports: slices.Clone(ports), netNS: netNS, q: make(chan []byte, max(1, queue)), perPort: make([]atomic.Uint64, len(ports))}
}

// SetVia sets the function naming the channel to use (e.g. hubpath.Path.Current); it is
// called per frame, so it must be cheap. "" or an unknown name means the first channel.
func (u *Upstream) SetVia(via func() string) { u.via.Store(&via) }

// Frame queues a copy of an upstream frame (olt.OLT.OnData's frame is only valid during the
// call). It never blocks.
func (u *Upstream) Frame(frame []byte) {
	if len(frame) < 14 {
		u.Errors.Add(1)
		return
	}
	select {
	case u.q <- slices.Clone(frame):
	default:
		u.Dropped.Add(1)
	}
}

// port is the index of the channel to send on now.
func (u *Upstream) port() int {
	if f := u.via.Load(); f != nil {
		if i := slices.Index(u.ports, (*f)()); i >= 0 {
			return i
		}
	}
	return 0
}

// Run writes queued frames until ctx ends.
func (u *Upstream) Run(ctx context.Context) error {
	if len(u.ports) == 0 {
		<-ctx.Done()
		return nil
	}
	conns := make([]*packet.Conn, len(u.ports))
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	for {
		var frame []byte
		select {
		case <-ctx.Done():
			return nil
		case frame = <-u.q:
		}
		i := u.port()
		if conns[i] == nil {
			c, err := u.open(u.ports[i])
			if err != nil {
				u.Errors.Add(1)
				continue
			}
			conns[i] = c
		}
		if _, err := conns[i].WriteTo(frame, &packet.Addr{HardwareAddr: net.HardwareAddr(frame[0:6])}); err != nil {
			// The channel lost carrier, or the interface went away: reopen on the next frame.
			u.Errors.Add(1)
			conns[i].Close()
			conns[i] = nil
			continue
		}
		u.Forwarded.Add(1)
		u.perPort[i].Add(1)
	}
}

// open makes a send-only raw socket on port (protocol 0: it receives nothing).
func (u *Upstream) open(port string) (*packet.Conn, error) {
	var c *packet.Conn
	err := netns.Do(u.netNS, func() error {
		ifi, err := net.InterfaceByName(port)
		if err != nil {
			return err
		}
		c, err = packet.Listen(ifi, packet.Raw, 0, nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("epon: upstream on %s: %w", port, err)
	}
	return c, nil
}

// UpstreamView is what `show upstream` prints.
type UpstreamView struct {
	Via       string            `json:"via"`
	Forwarded uint64            `json:"forwarded"`
	Dropped   uint64            `json:"dropped"`
	Errors    uint64            `json:"errors"`
	PerPort   map[string]uint64 `json:"per_port"`
}

// View returns the forwarder's counters.
func (u *Upstream) View() UpstreamView {
	v := UpstreamView{Forwarded: u.Forwarded.Load(), Dropped: u.Dropped.Load(), Errors: u.Errors.Load(), PerPort: map[string]uint64{}}
	if len(u.ports) > 0 {
		v.Via = u.ports[u.port()]
	}
	for i, p := range u.ports {
		v.PerPort[p] = u.perPort[i].Load()
	}
	return v
}

func writeUpstream(w io.Writer, v any) {
	uv := v.(UpstreamView)
	fmt.Fprintf(w, "upstream data to the backplane via %s: forwarded %d, dropped (queue full) %d, errors %d\n",
		uv.Via, uv.Forwarded, uv.Dropped, uv.Errors)
	for _, p := range slices.Sorted(maps.Keys(uv.PerPort)) {
		fmt.Fprintf(w, "  %s %d\n", p, uv.PerPort[p])
	}
}
