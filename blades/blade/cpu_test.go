package blade

import (
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
	if l != want {
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

func FuzzProcStat(f *testing.F) {
	f.Add([]byte(procStat))
	f.Add([]byte("1 (fw) S 0 1 1 0 -1 4194560 1 0 0 0 40 10 0"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s cpuSample
		_ = parseProcStat(b, &s)
		_ = parseSelfStat(b, &s)
	})
}
