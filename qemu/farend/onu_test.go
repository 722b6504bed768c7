package farend

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cgoa/cgoa/blades/epon/olt"
	"github.com/cgoa/cgoa/netstack/ponlink"
)

// TestONUTrafficToOLT runs the PON far end against the blade's OLT code on
// the real clock over a unixgram socket pair: the emulated ONUs register,
// offer numbered upstream traffic well below line rate, and the OLT counts
// every frame with no loss; a dying gasp reaches it as an alarm.
func TestONUTrafficToOLT(t *testing.T) {
	dir, err := os.MkdirTemp("", "farend-onu-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	oltSock, onuSock := filepath.Join(dir, "olt.sock"), filepath.Join(dir, "onu.sock")
	conn, err := ponlink.Listen(oltSock, onuSock)
	if err != nil {
		t.Fatal(err)
	}
	clock := olt.NewMonotonicClock()
	o, err := olt.New(olt.EmulatedLink(olt.Config{Name: "pon0", MAC: net.HardwareAddr{2, 0xc6, 0x0a, 0, 0, 1}}), clock, olt.LinkPort{Conn: conn})
	if err != nil {
		t.Fatal(err)
	}
	alarms := make(chan olt.Alarm, 64)
	o.OnAlarm = func(a olt.Alarm) {
		select {
		case alarms <- a:
		default:
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- olt.Serve(ctx, o, conn, clock) }()
	t.Cleanup(func() {
		cancel()
		conn.Close()
		<-served
	})
	fe, err := ListenONU("onu-s5-pon0", onuSock, oltSock, ONUConfig{Slot: 5, PON: 0, N: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fe.Close() })
	poll(t, 10*time.Second, "3 ONUs registered", func() bool { return o.ShowPON().Registered == 3 })

	if err := fe.SetTraffic(-1, 500); err == nil {
		t.Error("SetTraffic(-1 bit/s) = nil, want error")
	}
	if err := fe.SetTraffic(1e6, 10); err == nil {
		t.Error("SetTraffic(10-byte frames) = nil, want error")
	}
	// 2 Mb/s per ONU, 500-byte frames: 500 frames/s each.
	if err := fe.SetTraffic(2e6, 500); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the traffic's duration, not a wait for an event
	if err := fe.SetTraffic(0, 0); err != nil {
		t.Fatal(err)
	}
	sent := map[string]uint64{}
	for _, tr := range fe.Traffic() {
		sent[tr.MAC] = tr.Sent
		if tr.Sent < 300 || tr.Dropped != 0 {
			t.Errorf("ONU %s sent %d frames, %d dropped; want >= 300 (1 s at 500/s) and none dropped", tr.MAC, tr.Sent, tr.Dropped)
		}
	}
	poll(t, 5*time.Second, "every test frame at the OLT", func() bool {
		for _, v := range o.ShowONUs() {
			if v.Stats.RxTestFrames+v.Stats.RxDataLost < sent[v.MAC] {
				return false
			}
		}
		return true
	})
	for _, v := range o.ShowONUs() {
		if v.Stats.RxTestFrames != sent[v.MAC] || v.Stats.RxDataLost != 0 || v.Stats.RxDataOutOfOrder != 0 {
			t.Errorf("OLT: ONU %s received %d test frames, %d lost, %d out of order; want %d, 0, 0",
				v.MAC, v.Stats.RxTestFrames, v.Stats.RxDataLost, v.Stats.RxDataOutOfOrder, sent[v.MAC])
		}
	}

	if ok, err := fe.DyingGasp(1); err != nil || !ok {
		t.Fatalf("DyingGasp(1) = %v, %v; want true", ok, err)
	}
	deadline := time.After(5 * time.Second)
	for {
		select {
		case a := <-alarms:
			if a.Kind != olt.AlarmDyingGasp {
				continue
			}
			if want := fe.Traffic()[1].MAC; a.MAC != want {
				t.Errorf("dying gasp from %s, want %s", a.MAC, want)
			}
			return
		case <-deadline:
			t.Fatal("no dying gasp alarm within 5 s")
		}
	}
}

func poll(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen within %v", what, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
