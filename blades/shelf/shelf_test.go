package shelf

import (
	"strings"
	"testing"
	"time"

	"github.com/cgoa/cgoa/ha/amf"
	"github.com/cgoa/cgoa/ha/clm"
)

func TestParseMap(t *testing.T) {
	ms, err := ParseMap(DefaultMap)
	if err != nil || len(ms) != 5 || FormatMap(ms) != DefaultMap {
		t.Fatalf("ParseMap(default) = %v, %v", ms, err)
	}
	for _, bad := range []string{"", "3:mgmt,3:epon", "1:mgmt", "3:switch", "0:mgmt", "17:epon", "3:router", "3"} {
		if _, err := ParseMap(bad); err == nil {
			t.Errorf("ParseMap(%q) = nil error", bad)
		}
	}
}

func TestHAConfig(t *testing.T) {
	ms, _ := ParseMap("1:switch,2:switch,3:mgmt,4:mgmt,5:epon,6:epon,7:epon")
	c, err := HAConfig(1, ms, clm.Timers{Interval: 10 * time.Millisecond, Misses: 3})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]amf.ServiceGroup{}
	for _, g := range c.Groups {
		got[g.Name] = g
	}
	if g := got["mgmt"]; g.Model != amf.TwoN || len(g.Units) != 2 || g.Units[0].Name != "mgmt-3" || g.Units[0].Node != 3 {
		t.Errorf("mgmt group = %+v", g)
	}
	if g := got["switch"]; g.Model != amf.TwoN || len(g.Units) != 2 {
		t.Errorf("switch group = %+v", g)
	}
	if g := got["olt"]; g.Model != amf.NPlusM || len(g.Units) != 3 || len(g.Instances) != 2 {
		t.Errorf("olt group = %+v, want N+M 2+1", g)
	}
	if len(c.Slots) != 7 {
		t.Errorf("voters = %v, want all 7 slots", c.Slots)
	}
}

func TestAddressing(t *testing.T) {
	if a := PlaneAddr(1, 4).String(); a != "169.254.2.4/24" {
		t.Errorf("PlaneAddr(1, 4) = %s", a)
	}
	if b := PlaneBroadcast(0).String(); b != "169.254.1.255" {
		t.Errorf("PlaneBroadcast(0) = %s", b)
	}
	if tm, err := ParseTimers("50msx4"); err != nil || tm.Interval != 50*time.Millisecond || tm.Misses != 4 {
		t.Errorf("ParseTimers = %+v, %v", tm, err)
	}
	for _, bad := range []string{"50ms", "xx4", "10msxq", "0sx3"} {
		if _, err := ParseTimers(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("ParseTimers(%q) = %v", bad, err)
		}
	}
}
