package olt_test

import (
	"net"
	"testing"
	"time"

	"github.com/cgoa/cgoa/blades/epon/olt"
	"github.com/cgoa/cgoa/blades/epon/onu"
	"github.com/cgoa/cgoa/blades/epon/onu/vpon"
)

// testPON is one virtual PON with an OLT and ONUs, recording alarms.
type testPON struct {
	t      *testing.T
	pon    *vpon.PON
	olt    *olt.OLT
	onus   []*onu.ONU
	alarms []olt.Alarm
}

func oltMAC() net.HardwareAddr { return net.HardwareAddr{0x02, 0xc6, 0x0a, 0, 0, 1} }

func onuMAC(i int) net.HardwareAddr {
	return net.HardwareAddr{0x02, 0xc6, 0x0a, 0x10, byte(i >> 8), byte(i)}
}

// newPON builds a PON with ONUs at the given distances (km), all
// powered on at time 0.
func newPON(t *testing.T, cfg olt.Config, seed uint64, km []float64) *testPON {
	t.Helper()
	tp := &testPON{t: t, pon: vpon.New(vpon.Config{Seed: seed})}
	if cfg.MAC == nil {
		cfg.MAC = oltMAC()
	}
	o, err := olt.New(cfg, tp.pon.OLTClock(), tp.pon.OLTPort())
	if err != nil {
		t.Fatalf("olt.New() = %v", err)
	}
	o.OnAlarm = func(a olt.Alarm) { tp.alarms = append(tp.alarms, a) }
	tp.olt = o
	for i, d := range km {
		u, err := tp.pon.AddONU(onu.Config{MAC: onuMAC(i), Threshold: o.DBAConfig().MaxWindow}, d)
		if err != nil {
			t.Fatal(err)
		}
		u.PowerOn()
		tp.onus = append(tp.onus, u)
	}
	tp.pon.SetOLT(o)
	return tp
}

func (tp *testPON) registered() int { return tp.olt.ShowPON().Registered }

// runUntil runs the PON until cond holds or the virtual deadline passes.
func (tp *testPON) runUntil(limit time.Duration, what string, cond func() bool) {
	tp.t.Helper()
	if !tp.pon.RunWhile(limit, func() bool { return !cond() }) {
		tp.t.Fatalf("at %v: %s did not happen by %v", tp.pon.Now(), what, limit)
	}
}

func (tp *testPON) alarmsOf(k olt.AlarmKind) []olt.Alarm {
	var out []olt.Alarm
	for _, a := range tp.alarms {
		if a.Kind == k {
			out = append(out, a)
		}
	}
	return out
}

func (tp *testPON) view(i int) olt.ONUView {
	tp.t.Helper()
	for _, v := range tp.olt.ShowONUs() {
		if v.MAC == onuMAC(i).String() {
			return v
		}
	}
	tp.t.Fatalf("ONU %d (%v) not in show onu", i, onuMAC(i))
	return olt.ONUView{}
}

func kms(n int, f func(i int) float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}
