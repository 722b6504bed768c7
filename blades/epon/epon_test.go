package epon

import (
	"strings"
	"testing"

	"github.com/cgoa/cgoa/blades/blade"
	"github.com/cgoa/cgoa/blades/epon/olt"
)

func TestAlarmsGoToLogAndHooks(t *testing.T) {
	e := New()
	var a1, a2 []olt.Alarm
	e.OnAlarm(func(a olt.Alarm) { a1 = append(a1, a) })
	e.OnAlarm(func(a olt.Alarm) { a2 = append(a2, a) })
	log := blade.NewLog(16, nil)
	reg := olt.Alarm{Kind: olt.AlarmRegistered, Severity: olt.AlarmRegistered.Severity(), PON: "pon0", LLID: 1, MAC: "02:0e:05:00:00:01", Text: "registered, RTT 100 TQ"}
	gasp := olt.Alarm{Kind: olt.AlarmDyingGasp, Severity: olt.AlarmDyingGasp.Severity(), PON: "pon1", LLID: 2, MAC: "02:0e:05:01:00:02", Text: "dying gasp"}
	e.publish(log, reg)
	e.publish(log, gasp)
	if len(a1) != 2 || len(a2) != 2 || a1[1] != gasp || a2[0] != reg {
		t.Fatalf("hooks got %v and %v, want both alarms in order", a1, a2)
	}
	entries, total := log.Last(16)
	if total != 2 || len(entries) != 2 {
		t.Fatalf("log has %d entries (%d total), want 2", len(entries), total)
	}
	if e := entries[0]; e.Level != "info" || !strings.Contains(e.Msg, "epon pon0: alarm: info pon0 registered LLID 1 02:0e:05:00:00:01") {
		t.Errorf("log entry %+v, want the registration at level info", e)
	}
	if e := entries[1]; e.Level != "error" || !strings.Contains(e.Msg, "critical pon1 dying-gasp LLID 2") {
		t.Errorf("log entry %+v, want the dying gasp at level error", e)
	}
	if r := e.Role(); r.Name != "epon" || r.Start == nil {
		t.Errorf("Role() = %+v", r)
	}
}
