package farend

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"

	"github.com/cgoa/cgoa/netstack/netns/netnstest"
)

// TestTapRelay: a tap in a test-made namespace on an endpoint; the "blade" at the other end
// of the unix-datagram link asks by ARP for the namespace's address and the namespace's
// kernel answers through the relay.
func TestTapRelay(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, /dev/net/tun)")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skip("needs /dev/net/tun")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip")
	}
	ns := netnstest.New(t, "tap")

	dir := t.TempDir()
	host, blade := filepath.Join(dir, "host.sock"), filepath.Join(dir, "blade.sock")
	ep, err := Listen("uplink", host, blade, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	replies := make(chan *arp.Packet, 4)
	bladeMAC := net.HardwareAddr{0x52, 0x54, 1, 1, 0, 0x0b}
	be, err := Listen("blade", blade, host, func(frame []byte) {
		var f ethernet.Frame
		if f.UnmarshalBinary(frame) != nil || f.EtherType != ethernet.EtherTypeARP {
			return
		}
		var a arp.Packet
		if a.UnmarshalBinary(f.Payload) == nil && a.Operation == arp.OperationReply {
			replies <- &a
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()

	tap, err := NewTap(ep, "core0", ns)
	if err != nil {
		t.Fatal(err)
	}
	defer tap.Close()
	for _, args := range [][]string{{"link", "set", "core0", "up"}, {"addr", "add", "169.254.99.250/24", "dev", "core0"}} {
		if out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	target := netip.MustParseAddr("169.254.99.250")
	req, err := arp.NewPacket(arp.OperationRequest, bladeMAC, netip.MustParseAddr("169.254.99.1"), ethernet.Broadcast, target)
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := req.MarshalBinary()
	frame, _ := (&ethernet.Frame{Destination: ethernet.Broadcast, Source: bladeMAC, EtherType: ethernet.EtherTypeARP, Payload: pb}).MarshalBinary()
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := be.Send(frame); err != nil {
			t.Fatal(err)
		}
		select {
		case a := <-replies:
			if a.SenderIP != target || a.TargetIP != netip.MustParseAddr("169.254.99.1") {
				t.Fatalf("ARP reply %+v, want %v is-at for 169.254.99.1", a, target)
			}
			// The reply can overtake the relay's counting of the request it answers.
			for c := tap.Counters(); c.ToTap == 0 || c.FromTap == 0; c = tap.Counters() {
				select {
				case <-deadline:
					t.Fatalf("Counters() = %+v, want frames both ways", c)
				case <-time.After(5 * time.Millisecond):
				}
			}
			if err := tap.Close(); err != nil {
				t.Errorf("Close() = %v", err)
			}
			// The device goes with the relay.
			if out, err := exec.Command("ip", "-n", ns, "link", "show", "core0").CombinedOutput(); err == nil {
				t.Errorf("core0 still there after Close:\n%s", out)
			}
			return
		case <-tick.C: // the tap may not have been up for the first request: ask again
		case <-deadline:
			t.Fatalf("no ARP reply through the tap; counters %+v", tap.Counters())
		}
	}
}
