package transport

import (
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
}
