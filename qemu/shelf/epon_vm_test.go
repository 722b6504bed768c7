package shelf_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cgoa/cgoa/qemu/farend"
	"github.com/cgoa/cgoa/qemu/shelftest"
	"github.com/cgoa/cgoa/qemu/topology"
)

type onuStatsView struct {
	ONUs []struct {
		MAC   string `json:"mac"`
		State string `json:"state"`
		Stats struct {
			RxDataFrames     uint64 `json:"rx_data_frames"`
			RxTestFrames     uint64 `json:"rx_test_frames"`
			RxDataLost       uint64 `json:"rx_data_lost"`
			RxDataOutOfOrder uint64 `json:"rx_data_out_of_order"`
		} `json:"stats"`
	} `json:"onus"`
}

// TestEPONUpstreamNoLoss boots the mini shelf (one hub, one mgmt blade, one EPON blade
// with one PON port: the smallest shelf with an EPON blade), lets the emulated ONUs
// register, has each send numbered upstream frames at 1 Mb/s (4 Mb/s on the PON, well
// below its 1 Gb/s) for a few seconds, and checks that the OLT on the blade counted every
// frame each ONU sent and none lost or out of order (show onu json). Then one ONU's
// dying gasp must reach the blade log as an alarm.
func TestEPONUpstreamNoLoss(t *testing.T) {
	topo, err := topology.LoadFile("../examples/mini.yaml")
	if err != nil {
		t.Fatal(err)
	}
	slot := 0
	for _, b := range topo.Blades {
		if b.Role == topology.EPON {
			slot = b.Slot
		}
	}
	if slot == 0 {
		t.Fatal("mini.yaml has no EPON blade")
	}
	sh := shelftest.Boot(t, topo)
	name := fmt.Sprintf("onu-s%d-pon0", slot)
	fe, ok := sh.ONU(name)
	if !ok {
		t.Fatalf("no PON far end %s", name)
	}
	show := func() (onuStatsView, error) {
		var v onuStatsView
		out, err := sh.TryExec(slot, "show onu pon0 json")
		if err != nil {
			return v, err
		}
		return v, jsonUnmarshal(out, &v)
	}
	shelftest.Eventually(t, 60*time.Second, "ONUs registered on pon0", func() error {
		v, err := show()
		if err != nil {
			return err
		}
		reg := 0
		for _, u := range v.ONUs {
			if u.State == "registered" {
				reg++
			}
		}
		if reg != farend.DefaultONUs {
			return fmt.Errorf("%d of %d ONUs registered", reg, farend.DefaultONUs)
		}
		return nil
	})

	const rate, size, dur = 1e6, 500, 4 * time.Second
	if err := fe.SetTraffic(rate, size); err != nil {
		t.Fatal(err)
	}
	time.Sleep(dur) // the traffic's duration, not a wait for an event
	if err := fe.SetTraffic(0, 0); err != nil {
		t.Fatal(err)
	}
	sent, dropped := map[string]uint64{}, map[string]uint64{}
	var total uint64
	for _, tr := range fe.Traffic() {
		sent[tr.MAC], dropped[tr.MAC] = tr.Sent, tr.Dropped
		total += tr.Sent
		if tr.Dropped != 0 {
			t.Errorf("ONU %s: its queue dropped %d of %d frames", tr.MAC, tr.Dropped, tr.Sent)
		}
		// 1 Mb/s of 500-byte frames is 250 a second.
		if min := uint64(dur.Seconds() * rate / (8 * size) * 0.9); tr.Sent < min {
			t.Errorf("ONU %s sent %d frames in %v, want >= %d", tr.MAC, tr.Sent, dur, min)
		}
	}
	// The drain: wait until every frame that left an ONU's queue is counted or counted lost
	// (frames the queue refused after the last one that left make no gap; failed above).
	shelftest.Eventually(t, 30*time.Second, "every test frame at the OLT", func() error {
		v, err := show()
		if err != nil {
			return err
		}
		for _, u := range v.ONUs {
			if got := u.Stats.RxTestFrames + u.Stats.RxDataLost; got < sent[u.MAC]-dropped[u.MAC] {
				return fmt.Errorf("ONU %s: %d of %d frames accounted for", u.MAC, got, sent[u.MAC]-dropped[u.MAC])
			}
		}
		return nil
	})
	v, err := show()
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range v.ONUs {
		s := u.Stats
		if s.RxTestFrames != sent[u.MAC] || s.RxDataLost != 0 || s.RxDataOutOfOrder != 0 {
			t.Errorf("OLT: ONU %s received %d test frames, %d lost, %d out of order; want %d, 0, 0",
				u.MAC, s.RxTestFrames, s.RxDataLost, s.RxDataOutOfOrder, sent[u.MAC])
		}
	}
	var pv struct {
		NICDrops map[string]uint64 `json:"nic_drops"`
	}
	if out, err := sh.TryExec(slot, "show pon json"); err == nil {
		_ = jsonUnmarshal(out, &pv)
	}
	t.Logf("%d ONUs x %.0f Mb/s of %d-byte frames for %v: %d frames sent; PON NIC socket drops %v",
		len(sent), rate/1e6, size, dur, total, pv.NICDrops)

	// Alarms reach the blade log: the registrations, then a dying gasp.
	if ok, err := fe.DyingGasp(0); err != nil || !ok {
		t.Fatalf("DyingGasp(0) = %v, %v; want true", ok, err)
	}
	mac := fe.Traffic()[0].MAC
	shelftest.Eventually(t, 30*time.Second, "dying gasp alarm in the blade log", func() error {
		out, err := sh.TryExec(slot, "show log 200")
		if err != nil {
			return err
		}
		if !strings.Contains(out, "registered LLID") {
			return fmt.Errorf("no registration alarm in the log")
		}
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, "critical pon0 dying-gasp") && strings.Contains(l, mac) {
				return nil
			}
		}
		return fmt.Errorf("no dying gasp alarm for %s in the log", mac)
	})
}
