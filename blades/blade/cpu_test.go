package blade

import (
	"reflect"
	"testing"
	"time"
)

const procStat = `cpu  100 5 50 800 10 3 2 0 0 0
cpu0 100 5 50 800 10 3 2 0 0 0
intr 12345 1 2 3
ctxt 67890
btime 1
`

func TestCPULoad(t *testing.T) {
	var a, b cpuSample
	if err := parseProcStat([]byte(procStat), &a); err != nil {
		t.Fatal(err)
	}
	if err := parseSelfStat([]byte("1 (fw (x) y) S 0 1 1 0 -1 4194560 1 0 0 0 40 10 0 0 20 0 5 0 1 1 1"), &a); err != nil {
		t.Fatal(err)
	}
	if a.User != 100 || a.Idle != 800 || a.Intr != 12345 || a.Ctxt != 67890 || a.SelfUser != 40 || a.SelfSystem != 10 {
		t.Fatalf("parsed %+v", a)
	}
	b = a
	// 100 jiffies pass: 20 user (15 of them the firmware's), 10 system, 70 idle.
	b.User += 20
	b.System += 10
	b.Idle += 70
	b.SelfUser += 15
	b.SelfSystem += 5
	b.Intr += 500
	b.Ctxt += 1000
	l, err := load(a, b, time.Second, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := cpuLoad{Window: time.Second, FirmwareUser: 15, FirmwareSys: 5, User: 20, System: 10, Idle: 70, IntrPerSec: 500, CtxtPerSec: 1000}
	if !reflect.DeepEqual(l, want) {
		t.Errorf("load = %+v, want %+v", l, want)
	}
	if _, err := load(b, a, time.Second, 1); err == nil {
		t.Error("load with counters going backwards: no error")
	}
	for _, bad := range []string{"", "cpu 1 2", "cpu a b c d e f g h", "intr x\ncpu 1 2 3 4 5 6 7 8"} {
		var s cpuSample
		if err := parseProcStat([]byte(bad), &s); err == nil {
			t.Errorf("parseProcStat(%q) = nil error", bad)
		}
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 (x) S 0 1 1 0 -1 4 1 0 0 0 u s"} {
		var s cpuSample
		if err := parseSelfStat([]byte(bad), &s); err == nil {
			t.Errorf("parseSelfStat(%q) = nil error", bad)
		}
	}
}

// procInterrupts is /proc/interrupts of a two-CPU guest.
const procInterrupts = `           CPU0       CPU1
  0:         40          2   IO-APIC   2-edge      timer
 11:        300        200   IO-APIC  11-fasteoi   virtio1, virtio2
LOC:       1000         10   Local timer interrupts
ERR:          0
`

// TestInterruptSources: the busiest sources over a window, summed over the CPUs, and the
// firmware's context switches from its threads' status files.
func TestInterruptSources(t *testing.T) {
	a, err := parseInterrupts([]byte(procInterrupts))
	if err != nil {
		t.Fatal(err)
	}
	if got := a["11 IO-APIC 11-fasteoi virtio1, virtio2"]; got != 500 {
		t.Fatalf("virtio source = %d, want 500 (both CPUs); parsed %v", got, a)
	}
	if got := a["LOC Local timer interrupts"]; got != 1010 {
		t.Fatalf("LOC = %d, want 1010; parsed %v", got, a)
	}
	b := map[string]uint64{}
	for k, v := range a {
		b[k] = v
	}
	b["LOC Local timer interrupts"] += 250
	b["11 IO-APIC 11-fasteoi virtio1, virtio2"] += 50
	x := cpuSample{Sources: a, SelfSwitches: statusCount([]byte("Name:\tfw\nvoluntary_ctxt_switches:\t100\n"), "voluntary_ctxt_switches:")}
	y := cpuSample{Sources: b, SelfSwitches: 400, Intr: 300}
	l, err := load(x, y, 2*time.Second, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := []irqRate{{"LOC Local timer interrupts", 125}, {"11 IO-APIC 11-fasteoi virtio1, virtio2", 25}}
	if !reflect.DeepEqual(l.TopInterrupts, want) || l.FirmwareSwitchesPerSec != 150 {
		t.Errorf("load = top %v, firmware switches %v/s; want %v, 150/s", l.TopInterrupts, l.FirmwareSwitchesPerSec, want)
	}
	for _, bad := range []string{"", "\n\n"} {
		if _, err := parseInterrupts([]byte(bad)); err == nil {
			t.Errorf("parseInterrupts(%q) = nil error", bad)
		}
	}
}

func FuzzProcStat(f *testing.F) {
	f.Add([]byte(procStat))
	f.Add([]byte("1 (fw) S 0 1 1 0 -1 4194560 1 0 0 0 40 10 0"))
	f.Add([]byte(procInterrupts))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s cpuSample
		_ = parseProcStat(b, &s)
		_ = parseSelfStat(b, &s)
		_, _ = parseInterrupts(b)
		_ = statusCount(b, "voluntary_ctxt_switches:")
	})
}
