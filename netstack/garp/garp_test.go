package garp

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/mdlayher/arp"

	"github.com/cgoa/cgoa/netstack/netns"
	"github.com/cgoa/cgoa/netstack/netns/netnstest"
)

// TestAnnounceInNetns: announcements from one end of a veth in a namespace the test makes
// arrive at the other end as ARP replies from the port's MAC for each address; the socket is
// kept across announcements and reopened after the interface was recreated.
func TestAnnounceInNetns(t *testing.T) {
	ns := netnstest.New(t, "garp")
	ip := func(args ...string) { t.Helper(); netnstest.IP(t, ns, args...) }
	veth := func() {
		ip("link", "add", "base0", "type", "veth", "peer", "name", "far0")
		ip("link", "set", "base0", "up")
		ip("link", "set", "far0", "up")
		// arp.Dial wants an IPv4 address on the port (a blade's base ports carry their planes').
		ip("addr", "add", "169.254.9.1/24", "dev", "base0")
		ip("addr", "add", "169.254.9.2/24", "dev", "far0")
	}
	veth()

	a := New(netns.Named(ns))
	t.Cleanup(func() { a.Close() })
	if err := a.Open("base0"); err != nil {
		t.Fatal(err)
	}
	if err := a.Open("nosuch"); err == nil {
		t.Error("Open(nosuch) = nil error")
	}
	addrs := []netip.Addr{netip.MustParseAddr("169.254.3.1"), netip.MustParseAddr("169.254.3.2")}
	expect := func() {
		t.Helper()
		var far *arp.Client
		var mac net.HardwareAddr
		if err := netns.Do(netns.Named(ns), func() error {
			ifi, err := net.InterfaceByName("far0")
			if err != nil {
				return err
			}
			if far, err = arp.Dial(ifi); err != nil {
				return err
			}
			b, err := net.InterfaceByName("base0")
			mac = b.HardwareAddr
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer far.Close()
		if n, err := a.Announce("base0", addrs...); n != 2 || err != nil {
			t.Fatalf("Announce = %d, %v, want 2, nil", n, err)
		}
		far.SetReadDeadline(time.Now().Add(5 * time.Second))
		for _, want := range addrs {
			p, _, err := far.Read()
			if err != nil {
				t.Fatalf("read at the far end: %v", err)
			}
			if p.Operation != arp.OperationReply || p.SenderIP != want || p.TargetIP != want || p.SenderHardwareAddr.String() != mac.String() {
				t.Fatalf("far end got %v %v/%v -> %v, want a reply for %v from %v", p.Operation, p.SenderIP, p.SenderHardwareAddr, p.TargetIP, want, mac)
			}
		}
	}
	expect()
	// The interface is recreated: the kept socket fails and is reopened once.
	ip("link", "del", "base0")
	veth()
	expect()
}
