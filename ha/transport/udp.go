package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// UDPPath configures one base path of a UDP transport.
type UDPPath struct {
	// Interface, if set, binds the socket to that interface
	// (SO_BINDTODEVICE), so traffic for this path never leaves through the
	// other base interface whatever the routing table says.
	Interface string
	// Local is the address to listen on (e.g. the blade's base0 address
	// and the shelf's HA port).
	Local netip.AddrPort
	// Peers maps each other member's slot to its address on this path.
	Peers map[uint8]netip.AddrPort
	// Broadcast, if valid, is the path's broadcast address: every frame is
	// sent there once (receivers keep what is addressed to them) instead
	// of to each peer. No neighbour (ARP) resolution is then on the HA
	// path: after a link flap Linux may take a second to re-resolve a
	// neighbour it marked failed, which unicast heartbeats would wait for.
	// Local must then be the wildcard address with the HA port, and
	// Interface should be set.
	Broadcast netip.AddrPort
	// Destinations, if set, are the only IPv4 destination addresses this
	// path's socket takes; the kernel filter drops datagrams sent to any
	// other address before they wake a reader. A blade whose base
	// interfaces each carry one plane sends its broadcasts to that plane's
	// broadcast address and lists it here (with its own plane address and
	// the limited broadcast of blades that send there): the copies of the
	// other plane's broadcasts that reach this interface over the inter-hub
	// link, the same sealed frames it keeps from the other path, then cost
	// no read and no authentication.
	Destinations []netip.Addr
}

// maxDestinations bounds UDPPath.Destinations (the filter's jumps are short).
const maxDestinations = 8

// UDPTransport carries an Endpoint's frames over UDP, one socket per path.
type UDPTransport struct {
	ep    *Endpoint
	paths []UDPPath
	conns []*net.UDPConn
	h     Handler
	mu    sync.RWMutex // guards paths[i].Peers
	wg    sync.WaitGroup
	once  sync.Once
}

// ListenUDP binds one socket per path and starts one reader per path. h is
// called from the readers (concurrently across paths) with accepted,
// de-duplicated frames; it must copy the payload if it keeps it.
func ListenUDP(ep *Endpoint, paths []UDPPath, h Handler) (*UDPTransport, error) {
	if len(paths) == 0 || len(paths) > Paths {
		return nil, fmt.Errorf("transport: %d paths, want 1..%d", len(paths), Paths)
	}
	t := &UDPTransport{ep: ep, paths: paths, h: h}
	for i, p := range paths {
		lc := net.ListenConfig{}
		iface, bcast := p.Interface, p.Broadcast.IsValid()
		var dsts [][4]byte
		for _, a := range p.Destinations {
			if !a.Is4() {
				return nil, fmt.Errorf("transport: path %d (%s): destination %v is not IPv4", i, p.Interface, a)
			}
			dsts = append(dsts, a.As4())
		}
		if len(dsts) > maxDestinations {
			return nil, fmt.Errorf("transport: path %d (%s): %d destinations, at most %d", i, p.Interface, len(dsts), maxDestinations)
		}
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) { serr = sockopts(fd, iface, bcast, ep.Slot(), dsts) }); err != nil {
				return err
			}
			return serr
		}
		pc, err := lc.ListenPacket(context.Background(), "udp", p.Local.String())
		if err != nil {
			t.Close()
			return nil, fmt.Errorf("transport: path %d (%s) listen %s: %w", i, p.Interface, p.Local, err)
		}
		t.conns = append(t.conns, pc.(*net.UDPConn))
	}
	for i, c := range t.conns {
		t.wg.Add(1)
		go t.read(i, c)
	}
	return t, nil
}

// LocalAddr is the bound address of path i (useful with port 0).
func (t *UDPTransport) LocalAddr(i int) netip.AddrPort {
	return t.conns[i].LocalAddr().(*net.UDPAddr).AddrPort()
}

// SetPeers replaces the peer addresses of path i.
func (t *UDPTransport) SetPeers(i int, peers map[uint8]netip.AddrPort) {
	t.mu.Lock()
	t.paths[i].Peers = peers
	t.mu.Unlock()
}

func (t *UDPTransport) read(path int, c *net.UDPConn) {
	defer t.wg.Done()
	buf := make([]byte, 2048)
	for {
		n, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Transient (e.g. an ICMP error reported on the socket); do
			// not spin if it repeats.
			time.Sleep(time.Millisecond)
			continue
		}
		f, err := t.ep.Accept(path, buf[:n])
		if err != nil {
			continue // counted by the endpoint
		}
		t.h(f)
	}
}

// Send implements Transport: one sealed frame, written on every path.
func (t *UDPTransport) Send(typ Type, to uint8, payload []byte) error {
	b, err := t.ep.Seal(typ, to, payload)
	if err != nil {
		return err
	}
	ok := false
	var lastErr error
	t.mu.RLock()
	defer t.mu.RUnlock()
	for i, c := range t.conns {
		if baddr := t.paths[i].Broadcast; baddr.IsValid() {
			if _, err := c.WriteToUDPAddrPort(b, baddr); err != nil {
				t.ep.CountTxError(i)
				lastErr = err
				continue
			}
			ok = true
			continue
		}
		for slot, addr := range t.paths[i].Peers {
			if to != Broadcast && slot != to {
				continue
			}
			if _, err := c.WriteToUDPAddrPort(b, addr); err != nil {
				t.ep.CountTxError(i)
				lastErr = err
				continue
			}
			ok = true
		}
	}
	if !ok && lastErr != nil {
		return fmt.Errorf("transport: send type %d to %d: every path failed: %w", typ, to, lastErr)
	}
	return nil
}

// Endpoint implements Transport.
func (t *UDPTransport) Endpoint() *Endpoint { return t.ep }

// Close implements Transport; it waits for the readers to stop.
func (t *UDPTransport) Close() error {
	t.once.Do(func() {
		for _, c := range t.conns {
			c.Close()
		}
		t.wg.Wait()
	})
	return nil
}
