package olt_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cgoa/cgoa/blades/epon/olt"
	"github.com/cgoa/cgoa/blades/epon/onu"
	"github.com/cgoa/cgoa/netstack/ponlink"
)

// TestEmulatorOverSockets runs the OLT on the real clock against the ONU
// emulator over a pair of unixgram sockets, as the blade's PON port and
// the host emulator do.
func TestEmulatorOverSockets(t *testing.T) {
	dir := t.TempDir()
	oltSock, emuSock := filepath.Join(dir, "olt.sock"), filepath.Join(dir, "emu.sock")
	conn, err := ponlink.Listen(oltSock, emuSock)
	if err != nil {
		t.Fatal(err)
	}
	clock := olt.NewMonotonicClock()
	o, err := olt.New(olt.EmulatedLink(olt.Config{MAC: oltMAC()}), clock, olt.LinkPort{Conn: conn})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	loss := onu.NewLossCounter()
	o.OnData = func(_ uint16, f []byte, _ int64) {
		mu.Lock()
		loss.Add(f)
		mu.Unlock()
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- olt.Serve(ctx, o, conn, clock) }()
	t.Cleanup(func() {
		cancel()
		conn.Close()
		<-served
	})

	km := []float64{0, 5, 10, 20}
	var emus []onu.Emulated
	for i, d := range km {
		emus = append(emus, onu.Emulated{Config: onu.Config{MAC: onuMAC(i)}, DistanceKm: d})
	}
	em, err := onu.ListenEmulator(emuSock, oltSock, emus)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { em.Close() })
	if err := em.PowerOnAll(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "4 registrations", func() bool { return o.ShowPON().Registered == 4 })
	for i, d := range km {
		var v olt.ONUView
		for _, x := range o.ShowONUs() {
			if x.MAC == onuMAC(i).String() {
				v = x
			}
		}
		// At least the fibre's round trip; socket latency comes on top.
		if min := int64(d * 2 * 5000 / 16); v.RTT < min || v.State != "registered" {
			t.Errorf("ONU at %g km: %s RTT %d TQ, want registered and >= %d", d, v.State, v.RTT, min)
		}
	}
	// Numbered upstream traffic, well below line rate: none lost.
	const perONU = 200
	for i := range km {
		if err := em.Do(i, func(u *onu.ONU) {
			for s := range perONU {
				if err := u.Enqueue(onu.NumberedFrame(oltMAC(), onuMAC(i), uint32(i), uint64(s), 500)); err != nil {
					t.Errorf("ONU %d: Enqueue(%d) = %v", i, s, err)
				}
			}
		}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "upstream frames", func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := uint64(0)
		for i := range km {
			n += loss.Received[uint32(i)]
		}
		return n == perONU*uint64(len(km))
	})
	mu.Lock()
	for i := range km {
		if loss.Lost[uint32(i)] != 0 || loss.OutOfOrder[uint32(i)] != 0 {
			t.Errorf("ONU %d: lost %d, out of order %d", i, loss.Lost[uint32(i)], loss.OutOfOrder[uint32(i)])
		}
	}
	mu.Unlock()
	if st := em.Stats(); st.TxErrors != 0 || st.RxErrors != 0 {
		t.Errorf("emulator link errors: %+v", st)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen within %v", what, limit)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
