package ckpt

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/cgoa/cgoa/ha"
	"github.com/cgoa/cgoa/ha/amf"
	"github.com/cgoa/cgoa/ha/clm"
	"github.com/cgoa/cgoa/ha/transport"
)

// TestNodeOverBlades: two HA blades over UDP on loopback, a checkpoint
// Node on each over the blades' authenticated transport. Synchronous
// writes return only once the replica has them; asynchronous writes of
// sections larger than a frame arrive whole.
func TestNodeOverBlades(t *testing.T) {
	cfg := amf.Config{Shelf: 1, Slots: []uint8{1, 2}, Timers: clm.Timers{Interval: 20 * time.Millisecond, Misses: 5},
		Groups: []amf.ServiceGroup{{Name: "mgmt", Model: amf.TwoN, Units: []amf.ServiceUnit{{Name: "mgmt-1", Node: 1}, {Name: "mgmt-2", Node: 2}}}}}
	key := transport.Key("node-test-shelf-key-0123456789")
	// Ports picked by the kernel: bind each blade's path, then tell the
	// other (the UDP transport takes peers at any time).
	var trs [3]*transport.UDPTransport
	var blades [3]*ha.Blade
	for _, slot := range []uint8{1, 2} {
		b, err := ha.StartWith(ha.Options{Config: cfg, Slot: slot, Key: key}, func(ep *transport.Endpoint, h transport.Handler) (transport.Transport, error) {
			tr, err := transport.ListenUDP(ep, []transport.UDPPath{{Local: netip.MustParseAddrPort("127.0.0.1:0")}}, h)
			trs[slot] = tr
			return tr, err
		})
		if err != nil {
			t.Fatal(err)
		}
		blades[slot] = b
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			b.Close(ctx)
		})
	}
	trs[1].SetPeers(0, map[uint8]netip.AddrPort{2: trs[2].LocalAddr(0)})
	trs[2].SetPeers(0, map[uint8]netip.AddrPort{1: trs[1].LocalAddr(0)})
	var nodes [3]*Node
	for _, slot := range []uint8{1, 2} {
		n, err := AttachBlade(blades[slot], transport.TypeUser+5, Options{Self: slot, Ring: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(n.Close)
		nodes[slot] = n
	}
	w, r := nodes[1], nodes[2]
	w.Do(func(s *Service, now time.Duration) {
		s.Promote(now)
		s.Open(now, "c", time.Minute)
		s.SetReplicas(now, []uint8{2})
	})
	r.Do(func(s *Service, _ time.Duration) { s.Follow(1) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rng := rand.New(rand.NewPCG(1, 2))
	big := make([]byte, 20000)
	for i := range big {
		big[i] = byte(rng.IntN(256))
	}
	for i := range 50 {
		if _, err := w.Write(ctx, "c", "big", big[:1000+i*300], false); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20 {
		data := []byte{byte(i), 1, 2, 3}
		if _, err := w.Write(ctx, "c", "sync", data, true); err != nil {
			t.Fatalf("sync Write(%d) error %v", i, err)
		}
		// Acknowledged: the replica has it now, no waiting.
		if got, err := r.Read("c", "sync"); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("replica after sync write %d: %v %v, want %v", i, got, err, data)
		}
	}
	if got, err := r.Read("c", "big"); err != nil || !bytes.Equal(got, big[:1000+49*300]) {
		t.Fatalf("replica big section: %d bytes %v, want %d (async before the sync writes, in order)", len(got), err, 1000+49*300)
	}
	if st := r.Status(); !st.Ready || st.Role != "replica" {
		t.Errorf("replica Status() = %+v, want ready replica", st)
	}
}
