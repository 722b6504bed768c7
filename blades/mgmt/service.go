package mgmt

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cgoa/cgoa/blades/blade"
	"github.com/cgoa/cgoa/blades/shelf"
	"github.com/cgoa/cgoa/ha"
	"github.com/cgoa/cgoa/ha/amf"
	"github.com/cgoa/cgoa/ha/ckpt"
	"github.com/cgoa/cgoa/netstack/garp"
)

// Service is the management service of issue 4: the management address, which lives on the
// active mgmt blade only and moves with the active assignment (announced by gratuitous ARP on
// takeover), and a UDP probe responder on it that answers only while this blade holds the
// active assignment with a valid lease.
type Service struct {
	b     *blade.Blade
	h     *ha.Blade
	ports []string
	addr  netip.Prefix
	port  int

	mu      sync.Mutex
	holding bool
	// garp announces the address at takeover over sockets opened at start.
	garp *garp.Announcer
	// neigh is the checkpoint section of the management subnet's neighbours (KeepNeighbors).
	neigh      *ckpt.Section
	installed  []byte        // the neighbours section last installed here (s.mu)
	rest       chan struct{} // closed when the last takeover's steps off the HA loop are done (s.mu)
	NeighSaves atomic.Uint64 // neighbour captures written
	// Preferred names the channel node traffic takes now (hubpath's choice; "" unknown): the
	// address goes there first, so its connected route is the one the kernel uses until the
	// path has set the metrics.
	Preferred func() string
	Probes    atomic.Uint64 // probes answered
	Refused   atomic.Uint64 // probes seen while not active
	GARPs     atomic.Uint64
	// tookOver is when the last takeover began (unix ns), until the first probe after it is
	// answered: the responder then logs how long after the takeover the first probe came and
	// was answered, the part of an outage the blade can see.
	tookOver atomic.Int64
}

// NewService makes the service for those of the base ports the blade has (a shelf with one
// hub wires base0 only).
func NewService(b *blade.Blade, h *ha.Blade, ports []string) *Service {
	var have []string
	for _, p := range ports {
		if _, err := b.HW.Ports.Get(p); err == nil {
			have = append(have, p)
		}
	}
	s := &Service{b: b, h: h, ports: have, addr: shelf.MgmtService, port: shelf.ProbePort, garp: garp.New("")}
	// The address is on every port, and an ARP request for it reaches them all (over the
	// inter-hub link too): each port would answer with its own MAC, and the asking host keeps
	// whichever answer came last. With arp_filter a port answers only if the route back to
	// the asker leaves through it, which is the channel hubpath prefers (it sets the metrics),
	// so hosts learn the MAC of the port the answers go out of, as after a takeover
	// (takeoverSteps).
	for _, p := range have {
		if err := os.WriteFile(filepath.Join("/proc/sys/net/ipv4/conf", p, "arp_filter"), []byte("1"), 0o644); err != nil {
			b.Log.Errorf("mgmt: %s: arp_filter: %v (every port answers ARP for the address)", p, err)
		}
	}
	// The ARP sockets are opened now, not at the first takeover: that is on the failover
	// path, and every blade's first takeover after a boot would pay it (50-100 ms under TCG).
	if err := s.garp.Open(have...); err != nil {
		b.Log.Errorf("mgmt: %v (opened at takeover instead)", err)
	}
	return s
}

// Assign is the component's assignment callback: take the address when active, give it up
// otherwise. It runs on the HA loop, which the probe responder's lease check waits for, so a
// takeover does on the loop only what the first answers need: the neighbours, the address
// on the preferred channel and its announcement. The other ports' addresses and the closing
// announcement follow on their own goroutine; the next assignment waits for them.
func (s *Service) Assign(a amf.Assignment) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rest != nil {
		<-s.rest
		s.rest = nil
	}
	active := a.State == amf.Active
	if active == s.holding {
		return
	}
	s.holding = active
	if !active {
		for _, p := range s.ports {
			if err := s.b.HW.Ports.DelAddress(p, s.addr.String()); err != nil {
				s.b.Log.Errorf("mgmt: %v", err)
			}
		}
		s.b.Log.Printf("mgmt: %s: management address %s released", a.State, s.addr)
		return
	}
	start := time.Now()
	s.tookOver.Store(start.UnixNano())
	// Before the address: a host's first probe after the announcement must find its MAC
	// here, not wait for an ARP round trip (an entry the kernel learns meanwhile would keep a
	// restore from taking).
	neighbours := s.installNeighbors()
	restored := time.Since(start)
	steps := takeoverSteps(s.order())
	first := min(2, len(steps)) // the preferred port's address and announcement
	var added time.Duration
	for _, st := range steps[:first] {
		added += s.step(st)
	}
	up := time.Since(start)
	done := make(chan struct{})
	s.rest = done
	go func() {
		defer close(done)
		for _, st := range steps[first:] {
			added += s.step(st)
		}
		s.b.Log.Printf("mgmt: active: management address %s up on %v (first port in %v; neighbours %d in %v, addresses %v, gratuitous ARPs %v)",
			s.addr, s.ports, up.Round(time.Millisecond), neighbours, restored.Round(time.Millisecond), added.Round(time.Millisecond),
			(time.Since(start) - added - restored).Round(time.Millisecond))
	}()
}

// step runs one takeover step and returns how long an address took (0 for an announcement).
func (s *Service) step(st step) time.Duration {
	if st.announce {
		n, err := s.garp.Announce(st.port, s.addr.Addr())
		if err != nil {
			s.b.Log.Errorf("mgmt: gratuitous ARP: %v", err)
		}
		s.GARPs.Add(uint64(n))
		return 0
	}
	t := time.Now()
	if err := s.b.HW.Ports.AddAddress(st.port, s.addr.String()); err != nil {
		s.b.Log.Errorf("mgmt: %v", err)
	}
	return time.Since(t)
}

// step is one action of a takeover: add the address on port, or announce it there.
type step struct {
	port     string
	announce bool
}

// takeoverSteps is the order of a takeover's actions over ports (the preferred channel
// first): each port's address and then its announcement, so that the first port's
// announcement does not wait for the second port's address; then the first port's
// announcement once more. A host takes the MAC of the last announcement it hears (Linux
// lets a gratuitous ARP override an entry at any time), and the address is on every port,
// each with its own MAC: ending on the preferred port makes the hosts send to the port
// that hubpath routes the answers through, so a request and its answer both cross the
// active hub only, not the other hub and the inter-hub link as well.
func takeoverSteps(ports []string) []step {
	var out []step
	for _, p := range ports {
		out = append(out, step{port: p}, step{port: p, announce: true})
	}
	if len(ports) > 1 {
		out = append(out, step{port: ports[0], announce: true})
	}
	return out
}

// order is s.ports with the preferred channel first.
func (s *Service) order() []string {
	if s.Preferred == nil {
		return s.ports
	}
	pref := s.Preferred()
	out := make([]string, 0, len(s.ports))
	for _, p := range s.ports {
		if p == pref {
			out = append(out, p)
		}
	}
	for _, p := range s.ports {
		if p != pref {
			out = append(out, p)
		}
	}
	return out
}

// Serve answers probes until ctx ends. A probe is any UDP datagram to the probe port; the
// answer is "active <slot>". One socket on every interface: a probe may come in on either
// base port (the address is on both), and its answer leaves by the route, through the
// channel hubpath prefers. Answering out of the port a probe came in on would make the
// kernel resolve the asker there too, and its ARP request, from the address with that
// port's MAC, would turn the asker's entry to that port (Linux takes the sender of a
// request for itself as an update): the hosts would flip between the two MACs.
func (s *Service) Serve(ctx context.Context) error {
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, "udp4", fmt.Sprintf(":%d", s.port))
	if err != nil {
		return fmt.Errorf("mgmt: probe responder: %w", err)
	}
	uc, ok := pc.(*net.UDPConn)
	if !ok {
		pc.Close()
		return fmt.Errorf("mgmt: probe responder: a %T, not a UDP socket", pc)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.answer(uc) }()
	select {
	case <-ctx.Done():
		uc.Close()
		s.garp.Close()
		return nil
	case err := <-errc:
		uc.Close()
		return err
	}
}

func (s *Service) answer(uc *net.UDPConn) error {
	buf := make([]byte, 512)
	oob := make([]byte, 128)
	reply := []byte(fmt.Sprintf("active %d", s.b.HW.Identity.Slot))
	// The kernel's receive time of each probe (SO_TIMESTAMPNS) tells a late probe from a
	// late responder in the first answer's log line.
	if err := setTimestamps(uc); err != nil {
		s.b.Log.Errorf("mgmt: probe responder: %v (first answers logged without kernel times)", err)
	}
	for {
		_, n, _, from, err := uc.ReadMsgUDP(buf, oob)
		if err != nil {
			return err
		}
		// The times are taken only for the first probe after a takeover (the one logged),
		// not for each of a steady stream's.
		t := s.tookOver.Load()
		var arrived, read, checked time.Time
		if t != 0 {
			arrived, read = rxTime(oob[:n]), time.Now()
		}
		// The lease is checked at the moment of the answer: a blade that lost it stays silent
		// even if its address has not been removed yet.
		if !s.h.Active(shelf.GroupMgmt, "") {
			s.Refused.Add(1)
			continue
		}
		if t != 0 {
			checked = time.Now()
		}
		if _, err := uc.WriteToUDP(reply, from); err == nil {
			s.Probes.Add(1)
			if t != 0 && s.tookOver.CompareAndSwap(t, 0) {
				s.b.Log.Printf("mgmt: first probe since the takeover: %s", firstProbe(time.Unix(0, t), arrived, read, checked, time.Now()))
			}
		}
	}
}

// firstProbe says when, after a takeover began at began, the first probe answered since
// reached the kernel (arrived; zero if unknown), was read by the responder, passed the lease
// check and was answered.
func firstProbe(began, arrived, read, checked, answered time.Time) string {
	ms := func(t time.Time) string { return "+" + t.Sub(began).Round(time.Millisecond).String() }
	k := "?"
	if !arrived.IsZero() {
		k = ms(arrived)
	}
	return fmt.Sprintf("in the kernel %s, read %s, lease checked %s, answered %s", k, ms(read), ms(checked), ms(answered))
}
