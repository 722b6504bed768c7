package farend

import (
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
)

// fakeResponder plays the management blade on the other end of a unixgram link: it answers
// ARP for the service address and echoes probes as "active <n>".
func fakeResponder(t *testing.T, ep *Endpoint, mac net.HardwareAddr, addr netip.Addr, n string) {
	ep.SetHandler(func(frame []byte) {
		var f ethernet.Frame
		if f.UnmarshalBinary(frame) != nil {
			return
		}
		switch f.EtherType {
		case ethernet.EtherTypeARP:
			var a arp.Packet
			if a.UnmarshalBinary(f.Payload) != nil || a.TargetIP != addr {
				return
			}
			r, _ := arp.NewPacket(arp.OperationReply, mac, addr, a.SenderHardwareAddr, a.SenderIP)
			rb, _ := r.MarshalBinary()
			out, _ := (&ethernet.Frame{Destination: f.Source, Source: mac, EtherType: ethernet.EtherTypeARP, Payload: rb}).MarshalBinary()
			ep.Send(out)
		case ethernet.EtherTypeIPv4:
			ip := append([]byte(nil), f.Payload...)
			// Swap addresses and ports, put the answer in.
			src, dst := append([]byte(nil), ip[12:16]...), append([]byte(nil), ip[16:20]...)
			copy(ip[12:], dst)
			copy(ip[16:], src)
			u := ip[20:]
			sp, dp := append([]byte(nil), u[0:2]...), append([]byte(nil), u[2:4]...)
			copy(u[0:], dp)
			copy(u[2:], sp)
			body := []byte("active " + n)
			u = append(u[:8], body...)
			u[4], u[5] = 0, byte(8+len(body))
			ip = append(ip[:20], u...)
			ip[2], ip[3] = 0, byte(len(ip))
			ip[10], ip[11] = 0, 0
			c := ipChecksum(ip[:20])
			ip[10], ip[11] = byte(c>>8), byte(c)
			out, _ := (&ethernet.Frame{Destination: f.Source, Source: mac, EtherType: ethernet.EtherTypeIPv4, Payload: ip}).MarshalBinary()
			ep.Send(out)
		}
	})
}

func TestProber(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.sock")
	b := filepath.Join(dir, "b.sock")
	host, err := Listen("uplink", a, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	blade, err := Listen("blade", b, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer blade.Close()
	svc := netip.MustParseAddr("169.254.3.1")
	fakeResponder(t, blade, net.HardwareAddr{2, 0, 0, 0, 0, 3}, svc, "3")
	p := NewProber(host, net.HardwareAddr{2, 0, 0, 0, 0, 0xfa}, netip.MustParseAddr("169.254.3.250"), netip.AddrPortFrom(svc, 7500))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx, 2*time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for len(p.Answers()) < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("prober: %d answers in 5 s", len(p.Answers()))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := p.Last().Text; got != "active 3" {
		t.Errorf("answer %q, want active 3", got)
	}
	ans := p.Answers()
	if g, err := Gap(ans, ans[0].At, ans[2].At); err != nil || g <= 0 {
		t.Errorf("Gap = %v, %v", g, err)
	}
	if _, err := Gap(ans, ans[0].At, time.Now().Add(time.Hour)); err == nil {
		t.Errorf("Gap past the last answer = nil error")
	}
	if m := p.Moves(); len(m) != 1 || m[0].To.String() != "02:00:00:00:00:03" {
		t.Fatalf("Moves() = %v, want one to 02:00:00:00:00:03 (the ARP reply)", m)
	}

	// A takeover: another blade announces the address with a gratuitous ARP, and the prober
	// follows it once (a repeated announcement is not a move).
	mac4 := net.HardwareAddr{2, 0, 0, 0, 0, 4}
	fakeResponder(t, blade, mac4, svc, "4")
	g, _ := arp.NewPacket(arp.OperationRequest, mac4, svc, ethernet.Broadcast, svc)
	gb, _ := g.MarshalBinary()
	garp, _ := (&ethernet.Frame{Destination: ethernet.Broadcast, Source: mac4, EtherType: ethernet.EtherTypeARP, Payload: gb}).MarshalBinary()
	for range 2 {
		if err := blade.Send(garp); err != nil {
			t.Fatal(err)
		}
	}
	for p.Last().Text != "active 4" {
		if time.Now().After(deadline) {
			t.Fatalf("prober: last answer %q, want active 4 after the gratuitous ARP", p.Last().Text)
		}
		time.Sleep(5 * time.Millisecond)
	}
	m := p.Moves()
	if len(m) != 2 || m[1].To.String() != mac4.String() || !m[1].At.After(m[0].At) {
		t.Fatalf("Moves() = %v, want a second move to %v", m, mac4)
	}
	for _, a := range p.Answers() {
		if a.Text == "active 4" && (a.At.Before(m[1].At) || a.From.String() != mac4.String()) {
			t.Errorf("answer %+v before the move at %v or not from %v", a, m[1].At, mac4)
		}
	}
}

func FuzzProberReceive(f *testing.F) {
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06, 0, 1})
	f.Add(make([]byte, 60))
	ep := &Endpoint{name: "fuzz"}
	ep.SetUp(false) // never writes to a socket
	p := NewProber(ep, net.HardwareAddr{2, 0, 0, 0, 0, 1}, netip.MustParseAddr("169.254.3.250"), netip.MustParseAddrPort("169.254.3.1:7500"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p.receive(b)
	})
}
