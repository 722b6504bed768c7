package blade

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/cgoa/cgoa/hal"
)

type versionView struct {
	Role string `json:"role"`
	BuildInfo
	Go string `json:"go"`
}

type hardwareView struct {
	Mode     string             `json:"mode"`
	Watchdog hal.WatchdogStatus `json:"watchdog"`
	IPMI     hal.IPMIStatus     `json:"ipmi"`
	HotSwap  hal.HotSwapStatus  `json:"hotswap"`
}

type slotView struct {
	hal.Identity
	Hostname string  `json:"hostname"`
	Hub      bool    `json:"hub"`
	UptimeS  float64 `json:"uptime_s"`
	// Clock is the blade's wall clock when it answered: set against the caller's, it gives
	// the offset that lines up the blade's log with other clocks (the failover bench's
	// timeline).
	Clock time.Time `json:"clock"`
}

type logView struct {
	Total   uint64  `json:"total"`
	Entries []Entry `json:"entries"`
}

type portsView struct {
	Ports []hal.Port `json:"ports"`
}

func (b *Blade) registerCommands() {
	c := b.Console
	c.View([]string{"show", "version"}, "", "firmware role, version, revision and build time", 0, 0,
		func([]string) (any, error) {
			return versionView{Role: b.cfg.Role.Name, BuildInfo: b.cfg.Build, Go: runtime.Version()}, nil
		}, func(w io.Writer, v any) {
			vv := v.(versionView)
			fmt.Fprintf(w, "CGOA firmware %s, role %s\nrevision %s, built %s, %s\n", vv.Version, vv.Role, vv.Revision, vv.Built, vv.Go)
		})
	c.View([]string{"show", "slot"}, "", "shelf, slot, role and serial number of this blade", 0, 0,
		func([]string) (any, error) {
			id := b.HW.Identity
			now := b.cfg.Now()
			return slotView{Identity: id, Hostname: id.Hostname(), Hub: id.IsHub(), UptimeS: now.Sub(b.started).Seconds(), Clock: now}, nil
		}, func(w io.Writer, v any) {
			s := v.(slotView)
			fmt.Fprintf(w, "shelf %d slot %d (%s), role %s, serial %s, from %s, up %.0fs\n", s.Shelf, s.Slot,
				map[bool]string{true: "hub", false: "node"}[s.Hub], s.Role, s.Serial, s.Source, s.UptimeS)
		})
	c.View([]string{"show", "ports"}, "[PORT]", "ports with link state and counters", 0, 1,
		func(args []string) (any, error) {
			if b.HW.Ports == nil {
				return nil, fmt.Errorf("ports: no netlink access")
			}
			if len(args) == 1 {
				p, err := b.HW.Ports.Get(args[0])
				if err != nil {
					return nil, err
				}
				return portsView{Ports: []hal.Port{p}}, nil
			}
			ps, err := b.HW.Ports.List()
			if ps == nil {
				ps = []hal.Port{}
			}
			return portsView{Ports: ps}, err
		}, func(w io.Writer, v any) {
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PORT\tMAC\tADMIN\tLINK\tRX PKTS\tTX PKTS\tRX BYTES\tTX BYTES\tERRORS")
			for _, p := range v.(portsView).Ports {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\n", p.Name, p.MAC, upDown(p.AdminUp), upDown(p.OperUp),
					p.RxPackets, p.TxPackets, p.RxBytes, p.TxBytes, p.RxErrors+p.TxErrors)
			}
			tw.Flush()
		})
	c.View([]string{"show", "hardware"}, "", "watchdog, IPMI controller and sensors, hot-swap state", 0, 0,
		func([]string) (any, error) {
			now := b.cfg.Now()
			return hardwareView{Mode: b.HW.Mode, Watchdog: b.HW.Watchdog.Status(now), IPMI: b.HW.BMC.Status(), HotSwap: b.HW.HotSwap.Status(now)}, nil
		}, printHardware)
	c.View([]string{"show", "log"}, "[N]", "the last N log lines (default 50)", 0, 1,
		func(args []string) (any, error) {
			n := 50
			if len(args) == 1 {
				v, err := strconv.Atoi(args[0])
				if err != nil || v < 1 {
					return nil, fmt.Errorf("%q is not a positive number of lines", args[0])
				}
				n = v
			}
			es, total := b.Log.Last(n)
			return logView{Total: total, Entries: es}, nil
		}, func(w io.Writer, v any) {
			for _, e := range v.(logView).Entries {
				fmt.Fprintf(w, "%s %-5s %s\n", e.Time.UTC().Format("2006-01-02 15:04:05.000"), e.Level, e.Msg)
			}
		})
	c.View([]string{"show", "memory"}, "", "the firmware's memory use", 0, 0,
		func([]string) (any, error) {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			st := readStatus()
			return memory{RSSKiB: procStatusKiB(st, "VmRSS"), HWMKiB: procStatusKiB(st, "VmHWM"), HeapKiB: ms.HeapAlloc / 1024,
				SysKiB: ms.Sys / 1024, Goroutines: runtime.NumGoroutine(), NumGC: ms.NumGC}, nil
		}, func(w io.Writer, v any) {
			m := v.(memory)
			fmt.Fprintf(w, "rss %d KiB (peak %d KiB), heap %d KiB, go runtime %d KiB, %d goroutines, %d GC cycles\n",
				m.RSSKiB, m.HWMKiB, m.HeapKiB, m.SysKiB, m.Goroutines, m.NumGC)
		})
	c.View([]string{"show", "cpu"}, "[SECONDS]", "where the CPU went over a window (default 1 s, at most 10)", 0, 1,
		func(args []string) (any, error) {
			window := time.Second
			if len(args) == 1 {
				n, err := strconv.Atoi(args[0])
				if err != nil || n < 1 || n > 10 {
					return nil, fmt.Errorf("show cpu: window %q: want whole seconds 1..10", args[0])
				}
				window = time.Duration(n) * time.Second
			}
			a, err := readCPU()
			if err != nil {
				return nil, err
			}
			t0 := time.Now()
			time.Sleep(window) // the measurement window itself, not a wait for an event
			b, err := readCPU()
			if err != nil {
				return nil, err
			}
			return load(a, b, time.Since(t0), runtime.NumCPU())
		}, func(w io.Writer, v any) {
			l := v.(cpuLoad)
			fmt.Fprintf(w, "over %v: firmware user %.1f%% system %.1f%%; all: user %.1f%% system %.1f%% irq %.1f%% softirq %.1f%% steal %.1f%% idle %.1f%%\n",
				l.Window.Round(time.Millisecond), l.FirmwareUser, l.FirmwareSys, l.User, l.System, l.IRQ, l.SoftIRQ, l.Steal, l.Idle)
			fmt.Fprintf(w, "interrupts %.1f/s, context switches %.1f/s (firmware threads %.1f/s)\n", l.IntrPerSec, l.CtxtPerSec, l.FirmwareSwitchesPerSec)
			for _, r := range l.TopInterrupts {
				fmt.Fprintf(w, "  %8.1f/s  %s\n", r.PerSec, r.Source)
			}
		})
	c.View([]string{"show", "components"}, "", "supervised components and their restarts", 0, 0,
		func([]string) (any, error) {
			b.mu.Lock()
			defer b.mu.Unlock()
			out := []component{}
			for _, c := range b.components {
				out = append(out, *c)
			}
			sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
			return map[string]any{"components": out, "panics_recovered": b.panics.Load(), "main_loop_ticks": b.loopTicks.Load()}, nil
		}, nil)
	c.Action([]string{"hotswap", "handle"}, "open|close", "operate the ATCA hot-swap handle (open requests deactivation)", 1, 1,
		func(w io.Writer, args []string) error {
			now := b.cfg.Now()
			var err error
			switch args[0] {
			case "open":
				err = b.HW.HotSwap.OpenHandle(now)
			case "close":
				err = b.HW.HotSwap.CloseHandle(now)
			default:
				return fmt.Errorf("%w: %q is neither open nor close", errUsage, args[0])
			}
			if err != nil {
				return err
			}
			st := b.HW.HotSwap.Status(now)
			fmt.Fprintf(w, "hot-swap state %s (%s), handle %s\n", st.State, st.Description, st.Handle)
			return nil
		})
	c.Action([]string{"reboot"}, "", "restart the blade", 0, 0, func(w io.Writer, _ []string) error {
		fmt.Fprintln(w, "rebooting")
		b.Log.Printf("reboot requested from the console")
		return b.cfg.Reboot(false)
	})
	c.Action([]string{"poweroff"}, "", "power the blade off", 0, 0, func(w io.Writer, _ []string) error {
		fmt.Fprintln(w, "powering off")
		b.Log.Printf("poweroff requested from the console")
		return b.cfg.Reboot(true)
	})
	c.Action([]string{"debug", "profile"}, "SECONDS", "CPU profile of the firmware over SECONDS (1..30), printed as base64 pprof for `go tool pprof`", 1, 1,
		func(w io.Writer, args []string) error {
			n, err := strconv.Atoi(args[0])
			if err != nil || n < 1 || n > 30 {
				return fmt.Errorf("debug profile: %q: want whole seconds 1..30", args[0])
			}
			var buf bytes.Buffer
			if err := pprof.StartCPUProfile(&buf); err != nil {
				return fmt.Errorf("debug profile: %w", err)
			}
			time.Sleep(time.Duration(n) * time.Second) // the profiling window itself
			pprof.StopCPUProfile()
			enc := base64.StdEncoding.EncodeToString(buf.Bytes())
			fmt.Fprintf(w, "pprof cpu %d s, %d bytes, base64:\n", n, buf.Len())
			for len(enc) > 0 {
				k := min(len(enc), 76)
				fmt.Fprintln(w, enc[:k])
				enc = enc[k:]
			}
			return nil
		})
	c.Action([]string{"debug", "hang"}, "", "hang the main loop: stop petting the watchdog", 0, 0, func(w io.Writer, _ []string) error {
		b.Hang()
		if b.HW.Watchdog.Present() {
			fmt.Fprintf(w, "main loop hung; the watchdog resets the blade within %v\n", 2*b.cfg.WatchdogTimeout)
		} else {
			fmt.Fprintln(w, "main loop hung; no watchdog on this blade, it stays hung")
		}
		return nil
	})
	c.Action([]string{"debug", "panic"}, "", "panic inside a supervised component (it is recovered and restarted)", 0, 0,
		func(w io.Writer, _ []string) error {
			done := make(chan struct{})
			b.Supervise(b.Context(), "debug-panic", func(context.Context) error {
				defer close(done)
				var m map[string]int
				m["boom"]++ // a real runtime panic
				return nil
			})
			<-done
			fmt.Fprintln(w, "component debug-panic panicked; recovered, see show log")
			return nil
		})
}

var errUsage = fmt.Errorf("bad arguments")

func upDown(up bool) string {
	if up {
		return "up"
	}
	return "down"
}

func printHardware(w io.Writer, v any) {
	h := v.(hardwareView)
	wd := h.Watchdog
	if wd.Present {
		fmt.Fprintf(w, "watchdog: %s (%s), armed %v, timeout %.0fs, %d pets, last %dms ago\n", wd.Device, wd.Identity, wd.Armed, wd.TimeoutS, wd.Pets, wd.LastPetMs)
	} else {
		fmt.Fprintf(w, "watchdog: not present (%s)\n", wd.Reason)
	}
	ip := h.IPMI
	if ip.Present {
		fmt.Fprintf(w, "ipmi: %s device id %#x rev %d, firmware %s, IPMI %s, manufacturer %d product %#x, %d SEL entries\n",
			ip.Device, ip.DeviceID, ip.DeviceRevision, ip.Firmware, ip.IPMIVersion, ip.ManufacturerID, ip.ProductID, ip.SELEntries)
		for _, s := range ip.Sensors {
			fmt.Fprintf(w, "  sensor %d %-16s type %#02x reading %d states %#04x\n", s.Number, s.Name, s.SensorType, s.Reading, s.States)
		}
		if ip.Error != "" {
			fmt.Fprintf(w, "  error: %s\n", ip.Error)
		}
	} else {
		fmt.Fprintf(w, "ipmi: not present (%s)\n", ip.Reason)
	}
	hs := h.HotSwap
	fmt.Fprintf(w, "hot-swap: %s (%s), handle %s, for %s\n", hs.State, hs.Description, hs.Handle, (time.Duration(hs.SinceMs) * time.Millisecond).String())
}
