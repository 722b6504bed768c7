package transport

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// TestUDPLoopback runs two endpoints over two loopback "paths" each and
// checks both-path sending, de-duplication and survival of one path.
func TestUDPLoopback(t *testing.T) {
	lo := netip.MustParseAddrPort("127.0.0.1:0")
	type got struct {
		mu sync.Mutex
		n  int
	}
	var ga, gb got
	mk := func(slot uint8, g *got) *UDPTransport {
		ep, _ := NewEndpoint(testKey, 1, slot, 1)
		tr, err := ListenUDP(ep, []UDPPath{{Local: lo}, {Local: lo}}, func(Frame) { g.mu.Lock(); g.n++; g.mu.Unlock() })
		if err != nil {
			t.Fatalf("ListenUDP(slot %d) error %v", slot, err)
		}
		t.Cleanup(func() { tr.Close() })
		return tr
	}
	a, b := mk(1, &ga), mk(2, &gb)
	for i := 0; i < Paths; i++ {
		a.SetPeers(i, map[uint8]netip.AddrPort{2: b.LocalAddr(i)})
		b.SetPeers(i, map[uint8]netip.AddrPort{1: a.LocalAddr(i)})
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(time.Millisecond)
		}
	}
	for i := 0; i < 10; i++ {
		if err := a.Send(TypeHeartbeat, Broadcast, []byte{byte(i)}); err != nil {
			t.Fatalf("Send() error %v", err)
		}
	}
	wait("20 copies at b", func() bool { c := b.Endpoint().Counters(); return c.Received+c.Duplicates == 20 })
	gb.mu.Lock()
	n := gb.n
	gb.mu.Unlock()
	if n != 10 {
		t.Errorf("handler saw %d frames, want 10 (de-duplicated)", n)
	}
	// Lose path 0 at b: close its socket; a keeps sending on both.
	b.conns[0].Close()
	if err := a.Send(TypeHeartbeat, 2, []byte("after")); err != nil {
		t.Fatalf("Send() with one path gone: %v", err)
	}
	wait("frame over path 1", func() bool { gb.mu.Lock(); defer gb.mu.Unlock(); return gb.n == 11 })
	// Garbage on the wire is counted, not delivered.
	a.conns[0].WriteToUDPAddrPort([]byte("garbage"), b.LocalAddr(1))
	wait("short frame counted", func() bool { return b.Endpoint().Counters().Short == 1 })
	if c := a.Endpoint().Counters(); c.Sent != 11 || c.SentByType[TypeHeartbeat] != 11 || c.SentByType[0] != 0 {
		t.Errorf("sender counters %+v, want Sent 11, all of TypeHeartbeat", c)
	}
}

// TestUDPFilter: on a UDP path the kernel drops, before any read, the
// frames the endpoint would drop anyway: its own (looped back on a
// broadcast path) and those for another single slot. Frames for it or
// for everyone, and malformed datagrams (to be counted), get through.
func TestUDPFilter(t *testing.T) {
	lo := netip.MustParseAddrPort("127.0.0.1:0")
	var mu sync.Mutex
	var got []string
	ep, _ := NewEndpoint(testKey, 1, 2, 1)
	b, err := ListenUDP(ep, []UDPPath{{Local: lo}}, func(f Frame) { mu.Lock(); got = append(got, string(f.Payload)); mu.Unlock() })
	if err != nil {
		t.Fatalf("ListenUDP() error %v", err)
	}
	t.Cleanup(func() { b.Close() })
	send := func(from, to uint8, payload string) {
		t.Helper()
		e, _ := NewEndpoint(testKey, 1, from, 1)
		bs, err := e.Seal(TypeUser, to, []byte(payload))
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(b.LocalAddr(0)))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write(bs); err != nil {
			t.Fatal(err)
		}
	}
	send(2, Broadcast, "own")     // dropped: from our own slot
	send(3, 4, "for slot 4")      // dropped: for another slot
	send(3, 2, "for us")          // kept
	send(4, Broadcast, "for all") // kept
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(b.LocalAddr(0)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("HA garbage")) // kept, counted as short
	awaitShort(t, b)
	// One socket, one sender order: everything sent before the garbage has been read.
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(got) != "[for us for all]" {
		t.Errorf("delivered %q, want [for us for all]", got)
	}
	if c := b.Endpoint().Counters(); c.Own != 0 || c.NotForUs != 0 || c.Received != 2 {
		t.Errorf("counters %+v: want Own 0 and NotForUs 0 (dropped in the kernel), Received 2", c)
	}
}

// TestUDPDestinations: a path with Destinations takes only datagrams sent to those
// addresses; the kernel drops the others (on a blade: the other plane's broadcasts that
// cross the inter-hub link), so they are neither delivered nor even counted. The sockets
// listen on the wildcard address, as the blades' do, and 127.0.0.2 stands for an address
// that reaches the socket but is not listed.
func TestUDPDestinations(t *testing.T) {
	var mu sync.Mutex
	var got []string
	ep, _ := NewEndpoint(testKey, 1, 2, 1)
	b, err := ListenUDP(ep, []UDPPath{{Local: netip.MustParseAddrPort("0.0.0.0:0"),
		Destinations: []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.3")}}},
		func(f Frame) { mu.Lock(); got = append(got, string(f.Payload)); mu.Unlock() })
	if err != nil {
		t.Fatalf("ListenUDP() error %v", err)
	}
	t.Cleanup(func() { b.Close() })
	port := b.LocalAddr(0).Port()
	send := func(dst string, payload []byte) {
		t.Helper()
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(dst), port)))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write(payload); err != nil {
			t.Fatal(err)
		}
	}
	sender, _ := NewEndpoint(testKey, 1, 3, 1)
	seal := func(payload string) []byte {
		bs, err := sender.Seal(TypeUser, Broadcast, []byte(payload))
		if err != nil {
			t.Fatal(err)
		}
		return bs
	}
	send("127.0.0.2", seal("unlisted"))   // dropped in the kernel
	send("127.0.0.2", []byte("garbage"))  // dropped in the kernel, not counted
	send("127.0.0.1", seal("listed"))     // kept
	send("127.0.0.3", seal("listed too")) // kept
	send("127.0.0.1", []byte("HA garbage"))
	awaitShort(t, b)
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(got) != "[listed listed too]" {
		t.Errorf("delivered %q, want [listed listed too]", got)
	}
	if c := b.Endpoint().Counters(); c.Short != 1 || c.Received != 2 {
		t.Errorf("counters %+v: want Short 1 (the unlisted garbage never read), Received 2", c)
	}
	if _, err := ListenUDP(ep, []UDPPath{{Local: netip.MustParseAddrPort("0.0.0.0:0"),
		Destinations: []netip.Addr{netip.MustParseAddr("::1")}}}, func(Frame) {}); err == nil {
		t.Errorf("ListenUDP() with an IPv6 destination: no error")
	}
}

// awaitShort waits until tr's endpoint has counted a short (malformed) datagram: the marker a
// test sends last, after which one socket has read everything sent before it.
func awaitShort(t *testing.T, tr *UDPTransport) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for tr.Endpoint().Counters().Short == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the malformed datagram never reached the endpoint: counters %+v", tr.Endpoint().Counters())
		}
		time.Sleep(time.Millisecond)
	}
}
