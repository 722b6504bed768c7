package ifmib_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cgoa/cgoa/hal"
	"github.com/cgoa/cgoa/snmpagent"
	"github.com/cgoa/cgoa/snmpagent/mib/ifmib"
	"github.com/cgoa/cgoa/snmpagent/mib/internal/mibtest"
)

// fakePorts is a port source the test changes at will.
type fakePorts struct {
	mu    sync.Mutex
	ports []hal.Port
	err   error
}

func (f *fakePorts) Ports() ([]hal.Port, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]hal.Port(nil), f.ports...), f.err
}

func (f *fakePorts) set(ps ...hal.Port) {
	f.mu.Lock()
	f.ports = ps
	f.mu.Unlock()
}

// fixedClock never moves: samples are taken only by Refresh (or the
// first request).
type fixedClock struct{}

func (fixedClock) Now() time.Time { return time.Unix(1_700_000_000, 0) }

func port(name string, up bool, rxBytes, txBytes uint64) hal.Port {
	return hal.Port{Name: name, Index: 40 + len(name), MAC: "02:00:00:00:01:" + fmt.Sprintf("%02x", len(name)), MTU: 1500,
		AdminUp: true, OperUp: up, Carrier: up, RxBytes: rxBytes, TxBytes: txBytes, RxPackets: rxBytes / 100,
		TxPackets: txBytes / 100, RxErrors: 3, TxDropped: 4}
}

func newModule(t *testing.T, src *fakePorts, opts ifmib.Options) (*ifmib.Interfaces, *snmpagent.Agent) {
	t.Helper()
	if opts.Clock == nil {
		opts.Clock = fixedClock{}
	}
	if opts.Speed == nil {
		opts.Speed = func(string) uint64 { return 10_000_000_000 }
	}
	ifs := ifmib.New(src, opts)
	a := mibtest.Agent(t, nil)
	if err := ifs.Register(a); err != nil {
		t.Fatalf("Register = %v", err)
	}
	return ifs, a
}

const (
	ifEntry  = ".1.3.6.1.2.1.2.2.1"
	ifXEntry = ".1.3.6.1.2.1.31.1.1.1"
)

func TestWalkIFMIB(t *testing.T) {
	big := uint64(5_000_000_000) // beyond 32 bits
	src := &fakePorts{}
	src.set(port("base1", false, 1000, 2000), port("base0", true, big, 7))
	_, a := newModule(t, src, ifmib.Options{})

	vbs := mibtest.Walk(t, a, ".1.3.6.1.2.1.2")
	mibtest.Want(t, vbs, ".1.3.6.1.2.1.2.1.0", "INTEGER", "2")
	// ifIndex follows the order the source listed the ports first.
	mibtest.Want(t, vbs, ifEntry+".1.1", "INTEGER", "1")
	mibtest.Want(t, vbs, ifEntry+".2.1", "STRING", "base1")
	mibtest.Want(t, vbs, ifEntry+".2.2", "STRING", "base0")
	mibtest.Want(t, vbs, ifEntry+".3.2", "INTEGER", "6")
	mibtest.Want(t, vbs, ifEntry+".4.2", "INTEGER", "1500")
	mibtest.Want(t, vbs, ifEntry+".5.2", "Gauge32", "4294967295")
	mibtest.Want(t, vbs, ifEntry+".6.2", "Hex-STRING", "02 00 00 00 01 05")
	mibtest.Want(t, vbs, ifEntry+".7.1", "INTEGER", "1")
	mibtest.Want(t, vbs, ifEntry+".8.1", "INTEGER", "2")
	mibtest.Want(t, vbs, ifEntry+".8.2", "INTEGER", "1")
	mibtest.Want(t, vbs, ifEntry+".10.2", "Counter32", fmt.Sprint(uint32(big)))
	mibtest.Want(t, vbs, ifEntry+".14.2", "Counter32", "3")
	mibtest.Want(t, vbs, ifEntry+".19.2", "Counter32", "4")
	// 1 scalar + 17 columns x 2 rows.
	if len(vbs) != 1+17*2 {
		t.Errorf("walk of interfaces returned %d varbinds, want 35", len(vbs))
	}

	xs := mibtest.Walk(t, a, ".1.3.6.1.2.1.31.1")
	mibtest.Want(t, xs, ifXEntry+".1.2", "STRING", "base0")
	mibtest.Want(t, xs, ifXEntry+".6.2", "Counter64", fmt.Sprint(big))
	mibtest.Want(t, xs, ifXEntry+".7.2", "Counter64", fmt.Sprint(big/100))
	mibtest.Want(t, xs, ifXEntry+".10.1", "Counter64", "2000")
	mibtest.Want(t, xs, ifXEntry+".14.1", "INTEGER", "1")
	mibtest.Want(t, xs, ifXEntry+".15.1", "Gauge32", "10000")
	mibtest.Want(t, xs, ifXEntry+".18.1", "STRING", "")
	mibtest.Want(t, xs, ".1.3.6.1.2.1.31.1.5.0", "Timeticks", "(0) 0:00:00.00")

	// IF-MIB is announced in sysORTable.
	out, err := mibtest.Tool(t, "snmpwalk", "-v2c", "-c", "public", "-On", mibtest.Target(a), ".1.3.6.1.2.1.1.9.1.2")
	if err != nil || !strings.Contains(out, "OID: .1.3.6.1.2.1.31") {
		t.Errorf("sysORID walk = %q, %v; want IF-MIB", out, err)
	}
}

func TestSetIfAlias(t *testing.T) {
	src := &fakePorts{}
	src.set(port("base0", true, 1, 1), port("base1", true, 1, 1))
	var (
		mu         sync.Mutex
		adminCalls []string
	)
	ifs, a := newModule(t, src, ifmib.Options{Admin: func(name string, up bool) error {
		mu.Lock()
		defer mu.Unlock()
		adminCalls = append(adminCalls, fmt.Sprintf("%s=%v", name, up))
		return nil
	}})
	set := func(args ...string) (string, error) {
		return mibtest.Tool(t, "snmpset", append([]string{"-v2c", "-c", "private", "-On", mibtest.Target(a)}, args...)...)
	}
	if out, err := set(ifXEntry+".18.2", "s", "uplink to core"); err != nil {
		t.Fatalf("snmpset ifAlias = %q, %v", out, err)
	}
	vbs := mibtest.Walk(t, a, ifXEntry+".18")
	mibtest.Want(t, vbs, ifXEntry+".18.2", "STRING", "uplink to core")
	mibtest.Want(t, vbs, ifXEntry+".18.1", "STRING", "")

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{ifXEntry + ".18.1", "s", strings.Repeat("x", 65)}, "wrongLength"},
		{[]string{ifXEntry + ".18.1", "i", "3"}, "wrongType"},
		{[]string{ifXEntry + ".18.9", "s", "nope"}, "noCreation"},
		{[]string{ifXEntry + ".1.1", "s", "rename"}, "notWritable"},
		{[]string{ifXEntry + ".14.1", "i", "3"}, "wrongValue"},
		// All or nothing: the alias is not set when the second varbind fails.
		{[]string{ifXEntry + ".18.1", "s", "half", ifEntry + ".2.1", "s", "x"}, "notWritable"},
	} {
		if out, _ := set(c.args...); !strings.Contains(out, c.want) {
			t.Errorf("snmpset %v = %q, want %s", c.args, out, c.want)
		}
	}
	if st := ifs.Export(); st.Ports[0].Alias != "" || st.Ports[1].Alias != "uplink to core" {
		t.Errorf("aliases after SETs = %q, %q; want \"\", \"uplink to core\"", st.Ports[0].Alias, st.Ports[1].Alias)
	}
	// ifLinkUpDownTrapEnable and ifAdminStatus are writable too.
	if out, err := set(ifXEntry+".14.1", "i", "2", ifEntry+".7.2", "i", "2"); err != nil {
		t.Fatalf("snmpset ifLinkUpDownTrapEnable+ifAdminStatus = %q, %v", out, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(adminCalls, ","); got != "base1=false" {
		t.Errorf("Admin calls = %q, want base1=false", got)
	}
	if st := ifs.Export(); st.Ports[0].LinkTraps {
		t.Errorf("ifLinkUpDownTrapEnable.1 after SET disabled(2) still enabled")
	}
}

func TestIfIndexStable(t *testing.T) {
	src := &fakePorts{}
	src.set(port("base0", true, 1, 1), port("base1", true, 1, 1))
	ifs := ifmib.New(src, ifmib.Options{Clock: fixedClock{}, Speed: func(string) uint64 { return 0 }})
	check := func(name string, want uint32) {
		t.Helper()
		if got, ok := ifs.IfIndex(name); !ok || got != want {
			t.Errorf("IfIndex(%q) = %d, %v; want %d", name, got, ok, want)
		}
	}
	check("base0", 1)
	check("base1", 2)
	src.set(port("base1", true, 1, 1)) // base0 unplugged
	if err := ifs.Refresh(); err != nil {
		t.Fatal(err)
	}
	src.set(port("pon0", true, 1, 1), port("base1", true, 1, 1), port("base0", true, 1, 1))
	if err := ifs.Refresh(); err != nil {
		t.Fatal(err)
	}
	check("base0", 1)
	check("base1", 2)
	check("pon0", 3)

	// A failing source is counted and the last sample stays.
	src.mu.Lock()
	src.err = errors.New("netlink gone")
	src.mu.Unlock()
	if err := ifs.Refresh(); err == nil {
		t.Errorf("Refresh with failing source = nil, want error")
	}
	if ifs.SourceErrors() != 1 {
		t.Errorf("SourceErrors = %d, want 1", ifs.SourceErrors())
	}
	check("pon0", 3)
}

func TestLinkChange(t *testing.T) {
	src := &fakePorts{}
	src.set(port("base0", true, 1, 1), port("base1", true, 1, 1))
	ifs, a := newModule(t, src, ifmib.Options{})
	var got []ifmib.LinkChange
	ifs.OnLinkChange(func(c ifmib.LinkChange) { got = append(got, c) })
	if err := ifs.Refresh(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("first sample reported %v, want no change", got)
	}
	src.set(port("base0", true, 1, 1), port("base1", false, 1, 1))
	if err := ifs.Refresh(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Index != 2 || got[0].Up || !got[0].AdminUp || !got[0].TrapEnabled {
		t.Fatalf("link changes = %+v, want base1 (2) down", got)
	}
	if trap := got[0].TrapOID(); trap.Compare(ifmib.OIDLinkDown) != 0 {
		t.Errorf("TrapOID = %v, want linkDown", trap)
	}
	vbs := got[0].Varbinds()
	if len(vbs) != 3 || vbs[2].OID.String() != ifEntry+".8.2" || vbs[2].Value.String() != "Integer:2" {
		t.Errorf("Varbinds = %v, want ifIndex, ifAdminStatus, ifOperStatus(down) of 2", vbs)
	}
	// ifLastChange of base1 moved; the agent's sysUpTime is small but
	// counts from the agent's start, so only compare against base0.
	walk := mibtest.Walk(t, a, ifEntry+".9")
	b0, _ := mibtest.Find(walk, ifEntry+".9.1")
	if b0.Value != "(0) 0:00:00.00" {
		t.Errorf("ifLastChange.1 = %s, want 0 (no change since start)", b0.Value)
	}
	if _, ok := mibtest.Find(walk, ifEntry+".9.2"); !ok {
		t.Errorf("ifLastChange.2 missing")
	}
}

func TestFailoverKeepsIndexesAndCounters(t *testing.T) {
	// Active blade: served values come straight from its kernel.
	srcA := &fakePorts{}
	srcA.set(port("pon1", true, 9_000_000_000, 500), port("base0", true, 1000, 2000))
	active := ifmib.New(srcA, ifmib.Options{Clock: fixedClock{}, Speed: func(string) uint64 { return 0 }})
	active.Refresh()
	// The kernel counter of pon1 restarts (driver reload): served keeps growing.
	srcA.set(port("pon1", true, 100, 600), port("base0", true, 1500, 2000))
	active.Refresh()
	st := active.Export()
	if len(st.Ports) != 2 || st.Ports[0].Name != "pon1" || st.Ports[0].Counters.InOctets != 9_000_000_100 || st.Ports[0].Counters.OutOctets != 600 {
		t.Fatalf("exported %+v, want pon1 first with in 9000000100, out 600", st.Ports)
	}

	// Standby blade: a different kernel with smaller counters, and a
	// port the active did not have. It imports the active's state.
	srcB := &fakePorts{}
	srcB.set(port("base0", true, 10, 20), port("pon1", true, 50, 60), port("craft0", true, 1, 1))
	standby, a := newModule(t, srcB, ifmib.Options{})
	standby.Refresh() // the standby looked at its ports before the failover
	if err := standby.Import(st); err != nil {
		t.Fatalf("Import = %v", err)
	}
	vbs := mibtest.Walk(t, a, ifXEntry)
	mibtest.Want(t, vbs, ifXEntry+".1.1", "STRING", "pon1")
	mibtest.Want(t, vbs, ifXEntry+".1.2", "STRING", "base0")
	mibtest.Want(t, vbs, ifXEntry+".1.3", "STRING", "craft0")
	mibtest.Want(t, vbs, ifXEntry+".6.1", "Counter64", "9000000100")
	mibtest.Want(t, vbs, ifXEntry+".6.2", "Counter64", "1500")

	// Traffic on the new active adds to the imported values.
	srcB.set(port("base0", true, 110, 20), port("pon1", true, 80, 60), port("craft0", true, 1, 1))
	standby.Refresh()
	vbs = mibtest.Walk(t, a, ifXEntry+".6")
	mibtest.Want(t, vbs, ifXEntry+".6.1", "Counter64", "9000000130")
	mibtest.Want(t, vbs, ifXEntry+".6.2", "Counter64", "1600")

	// Export of the new active round-trips.
	again := standby.Export()
	if again.NextIndex != 4 || len(again.Ports) != 3 || again.Ports[2].Name != "craft0" {
		t.Errorf("re-export = %+v, want next 4 and craft0 at 3", again)
	}
}

func TestImportRejectsBadState(t *testing.T) {
	ifs := ifmib.New(&fakePorts{}, ifmib.Options{Clock: fixedClock{}})
	for _, st := range []ifmib.State{
		{Ports: []ifmib.PortState{{Name: "a", Index: 1}, {Name: "b", Index: 1}}},
		{Ports: []ifmib.PortState{{Name: "a", Index: 1}, {Name: "a", Index: 2}}},
		{Ports: []ifmib.PortState{{Name: "", Index: 1}}},
		{Ports: []ifmib.PortState{{Name: "a", Index: 0}}},
		{Ports: []ifmib.PortState{{Name: "a", Index: 1, Alias: strings.Repeat("x", 65)}}},
	} {
		if err := ifs.Import(st); err == nil {
			t.Errorf("Import(%+v) = nil, want error", st)
		}
	}
}
