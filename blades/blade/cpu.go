package blade

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// cpuSample is one reading of the kernel's CPU accounting: the whole
// system's jiffies by kind (/proc/stat), interrupts and context switches
// since boot, and the firmware process's own user and system jiffies
// (/proc/self/stat).
type cpuSample struct {
	User, Nice, System, Idle, IOWait, IRQ, SoftIRQ, Steal uint64
	Intr, Ctxt                                            uint64
	SelfUser, SelfSystem                                  uint64
	// Sources counts interrupts by source (/proc/interrupts: the line's
	// label and description, "LOC Local timer interrupts").
	Sources map[string]uint64
	// SelfSwitches counts the firmware's threads' context switches, voluntary
	// (a wait: each is a wake-up later) and not.
	SelfSwitches uint64
}

func (s cpuSample) total() uint64 {
	return s.User + s.Nice + s.System + s.Idle + s.IOWait + s.IRQ + s.SoftIRQ + s.Steal
}

// parseProcStat reads the aggregate "cpu" line and the intr and ctxt
// counters of /proc/stat into s.
func parseProcStat(b []byte, s *cpuSample) error {
	var haveCPU bool
	for _, line := range bytes.Split(b, []byte{'\n'}) {
		f := strings.Fields(string(line))
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "cpu":
			if len(f) < 9 {
				return fmt.Errorf("/proc/stat: cpu line has %d fields, want at least 9", len(f))
			}
			dst := []*uint64{&s.User, &s.Nice, &s.System, &s.Idle, &s.IOWait, &s.IRQ, &s.SoftIRQ, &s.Steal}
			for i, p := range dst {
				v, err := strconv.ParseUint(f[i+1], 10, 64)
				if err != nil {
					return fmt.Errorf("/proc/stat: cpu field %d: %w", i+1, err)
				}
				*p = v
			}
			haveCPU = true
		case "intr", "ctxt":
			v, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				return fmt.Errorf("/proc/stat: %s: %w", f[0], err)
			}
			if f[0] == "intr" {
				s.Intr = v
			} else {
				s.Ctxt = v
			}
		}
	}
	if !haveCPU {
		return errors.New("/proc/stat: no cpu line")
	}
	return nil
}

// parseSelfStat reads utime and stime (fields 14 and 15) of
// /proc/<pid>/stat. The command name in parentheses may hold spaces and
// parentheses itself, so fields are counted after the last ')'.
func parseSelfStat(b []byte, s *cpuSample) error {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return errors.New("/proc/self/stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): utime is field 14, stime 15.
	if len(f) < 13 {
		return fmt.Errorf("/proc/self/stat: %d fields after the name, want at least 13", len(f))
	}
	var err error
	if s.SelfUser, err = strconv.ParseUint(f[11], 10, 64); err != nil {
		return fmt.Errorf("/proc/self/stat: utime: %w", err)
	}
	if s.SelfSystem, err = strconv.ParseUint(f[12], 10, 64); err != nil {
		return fmt.Errorf("/proc/self/stat: stime: %w", err)
	}
	return nil
}

func readCPU() (cpuSample, error) {
	var s cpuSample
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s, err
	}
	if err := parseProcStat(b, &s); err != nil {
		return s, err
	}
	if b, err = os.ReadFile("/proc/self/stat"); err != nil {
		return s, err
	}
	if err := parseSelfStat(b, &s); err != nil {
		return s, err
	}
	// The breakdowns are best effort: a kernel without them leaves them empty.
	if b, err = os.ReadFile("/proc/interrupts"); err == nil {
		s.Sources, _ = parseInterrupts(b)
	}
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, t := range tasks {
		if b, err := os.ReadFile("/proc/self/task/" + t.Name() + "/status"); err == nil {
			s.SelfSwitches += statusCount(b, "voluntary_ctxt_switches:") + statusCount(b, "nonvoluntary_ctxt_switches:")
		}
	}
	return s, nil
}

// parseInterrupts reads /proc/interrupts: per source (the label and the
// description after the per-CPU counts), the count summed over the CPUs.
func parseInterrupts(b []byte) (map[string]uint64, error) {
	lines := bytes.Split(b, []byte{'\n'})
	if len(lines) == 0 {
		return nil, errors.New("/proc/interrupts: empty")
	}
	cpus := len(strings.Fields(string(lines[0])))
	if cpus == 0 || cpus > 4096 {
		return nil, errors.New("/proc/interrupts: no CPU header")
	}
	out := map[string]uint64{}
	for _, line := range lines[1:] {
		f := strings.Fields(string(line))
		if len(f) < 2 || !strings.HasSuffix(f[0], ":") {
			continue
		}
		var n uint64
		i := 1
		for ; i < len(f) && i <= cpus; i++ {
			v, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				break
			}
			n += v
		}
		if i == 1 {
			continue // no count
		}
		name := strings.TrimSuffix(f[0], ":")
		if rest := f[i:]; len(rest) > 0 {
			name += " " + strings.Join(rest, " ")
		}
		out[name] += n
	}
	return out, nil
}

// statusCount reads a "name:\tN" line of a /proc status file (0 when absent).
func statusCount(b []byte, name string) uint64 {
	for _, line := range bytes.Split(b, []byte{'\n'}) {
		if rest, ok := bytes.CutPrefix(line, []byte(name)); ok {
			v, _ := strconv.ParseUint(strings.TrimSpace(string(rest)), 10, 64)
			return v
		}
	}
	return 0
}

// cpuLoad is `show cpu`: where the blade's CPU went over a window, in
// percent of one CPU's time, with the interrupt and context-switch rates
// (under emulation every wakeup costs host CPU, so the rates matter as
// much as the busy time).
type cpuLoad struct {
	Window       time.Duration `json:"window_ns"`
	FirmwareUser float64       `json:"firmware_user_pct"`
	FirmwareSys  float64       `json:"firmware_system_pct"`
	User         float64       `json:"user_pct"`
	System       float64       `json:"system_pct"`
	IRQ          float64       `json:"irq_pct"`
	SoftIRQ      float64       `json:"softirq_pct"`
	Steal        float64       `json:"steal_pct"`
	Idle         float64       `json:"idle_pct"`
	IntrPerSec   float64       `json:"interrupts_per_s"`
	CtxtPerSec   float64       `json:"context_switches_per_s"`
	// FirmwareSwitchesPerSec: the firmware's threads' context switches (its
	// wake-ups, near enough); TopInterrupts: the busiest interrupt sources.
	FirmwareSwitchesPerSec float64   `json:"firmware_switches_per_s"`
	TopInterrupts          []irqRate `json:"top_interrupts"`
}

// irqRate is one interrupt source's rate over the window.
type irqRate struct {
	Source string  `json:"source"`
	PerSec float64 `json:"per_s"`
}

// userHZ is the unit of /proc's CPU times (USER_HZ, 100 on every Linux
// architecture the firmware runs on).
const userHZ = 100

// load turns two samples window apart into percentages of the window's
// time on cpus CPUs and rates per second. The window, not the sum of the
// jiffies, is the denominator: a guest's tick-sampled accounting loses
// ticks under emulation, the clock does not.
func load(a, b cpuSample, window time.Duration, cpus int) (cpuLoad, error) {
	if b.total() < a.total() || b.Intr < a.Intr || b.Ctxt < a.Ctxt {
		return cpuLoad{}, errors.New("cpu: counters went backwards")
	}
	if window <= 0 || cpus <= 0 {
		return cpuLoad{}, errors.New("cpu: no time elapsed between samples")
	}
	tot := window.Seconds() * userHZ * float64(cpus)
	pct := func(x, y uint64) float64 {
		if y < x {
			return 0
		}
		return float64(int64(1000*float64(y-x)/tot)) / 10
	}
	sec := window.Seconds()
	rate := func(x, y uint64) float64 {
		if y < x {
			return 0
		}
		return float64(int64(float64(y-x)/sec*10)) / 10
	}
	var top []irqRate
	for name, n := range b.Sources {
		if r := rate(a.Sources[name], n); r > 0 {
			top = append(top, irqRate{Source: name, PerSec: r})
		}
	}
	sort.Slice(top, func(i, j int) bool {
		if top[i].PerSec != top[j].PerSec {
			return top[i].PerSec > top[j].PerSec
		}
		return top[i].Source < top[j].Source
	})
	if len(top) > 6 {
		top = top[:6]
	}
	return cpuLoad{Window: window, TopInterrupts: top, FirmwareSwitchesPerSec: rate(a.SelfSwitches, b.SelfSwitches),
		FirmwareUser: pct(a.SelfUser, b.SelfUser), FirmwareSys: pct(a.SelfSystem, b.SelfSystem),
		User: pct(a.User+a.Nice, b.User+b.Nice), System: pct(a.System, b.System), IRQ: pct(a.IRQ, b.IRQ),
		SoftIRQ: pct(a.SoftIRQ, b.SoftIRQ), Steal: pct(a.Steal, b.Steal), Idle: pct(a.Idle+a.IOWait, b.Idle+b.IOWait),
		IntrPerSec: float64(int64(float64(b.Intr-a.Intr)/sec*10)) / 10, CtxtPerSec: float64(int64(float64(b.Ctxt-a.Ctxt)/sec*10)) / 10}, nil
}
