// Command bench measures the QEMU shelf and writes the project's benchmark
// JSON (see DESIGN.md) under build/bench/.
//
//	go run ./qemu/cmd/bench boot    # build/bench/boot.json: boot.<role> (median of 5 boots, s),
//	                                #   image.<role> (MiB), rss.<role> (firmware RSS at idle, MiB)
//	go run ./qemu/cmd/bench shelf   # build/bench/shelf.json: shelf.up (s), shelf.rss (MiB),
//	                                #   shelf.exec_rtt (median of 50 exec round trips, ms),
//	                                #   shelf.pss (PSS of the QEMU processes: shared pages split, MiB)
//	go run ./qemu/cmd/bench failover # build/bench/failover.json: qemu.p50, qemu.p99 (ms) over 20
//	                                #   kills of the active mgmt blade, merged into the file
//
// Flags: --build DIR (default <repo>/build, or $CGOA_BUILD), --boots N, --execs N, -o FILE.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cgoa/cgoa/qemu/shelf"
	"github.com/cgoa/cgoa/qemu/topology"
	"github.com/cgoa/cgoa/qemu/vm"
	"github.com/u-root/u-root/pkg/cpio"
)

// Result is one metric.
type Result struct {
	Metric  string  `json:"metric"`
	Unit    string  `json:"unit"`
	Value   float64 `json:"value"`
	Samples int     `json:"samples"`
	Peer    *Peer   `json:"peer,omitempty"`
}

// Peer is the same figure measured on a reference.
type Peer struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
}

// Report is a bench file.
type Report struct {
	Bench   string   `json:"bench"`
	Machine string   `json:"machine"`
	Results []Result `json:"results"`
}

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "boot" && os.Args[1] != "shelf" && os.Args[1] != "failover" && os.Args[1] != "switchover") {
		fmt.Fprintln(os.Stderr, "usage: bench boot|shelf|failover [--build DIR] [--boots N] [--execs N] [--kills N] [-o FILE]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	buildDir := fs.String("build", "", "build directory (default <repo>/build)")
	boots := fs.Int("boots", 5, "boots per role (boot bench)")
	execs := fs.Int("execs", 50, "exec round trips (shelf bench)")
	kills := fs.Int("kills", 20, "kills of the active mgmt blade (failover bench)")
	haTimers := fs.String("ha-timers", "", "shelf HA timers INTERVALxMISSES (failover bench; default the shelf's)")
	outPath := fs.String("o", "", "output file (default <build>/bench/<bench>.json)")
	verbose := fs.Bool("v", false, "failover bench: the standby's checkpoint before each kill, the new active's log after it, and the active's log around a gap of over 300 ms while the pulled blade rejoins")
	fs.Parse(os.Args[2:])
	a, err := vm.FindArtifacts(*buildDir)
	if err != nil {
		fail(err)
	}
	var rep Report
	switch os.Args[1] {
	case "boot":
		rep, err = benchBoot(a, *boots)
	case "shelf":
		rep, err = benchShelf(a, *execs)
	case "failover":
		out := *outPath
		if out == "" {
			out = filepath.Join(a.Build, "bench", "failover.json")
		}
		rep, err = benchFailover(a, *kills, *haTimers, out, *verbose)
	case "switchover":
		rep, err = benchSwitchover(a, *kills, *haTimers)
	}
	if err != nil {
		fail(err)
	}
	rep.Machine = machine()
	out := *outPath
	if out == "" {
		out = filepath.Join(a.Build, "bench", rep.Bench+".json")
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		fail(err)
	}
	b, _ := json.MarshalIndent(rep, "", "  ")
	if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
		fail(err)
	}
	fmt.Printf("%s\nwrote %s\n", b, out)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

func machine() string {
	model := "unknown cpu"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	return fmt.Sprintf("%s, %d cores", model, runtime.NumCPU())
}

func sum(xs []float64) (t float64) {
	for _, x := range xs {
		t += x
	}
	return t
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func round(x float64, digits int) float64 {
	p, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'f', digits, 64), 64)
	return p
}

// benchBoot boots each role alone, one VM at a time, and times QEMU start
// to the console prompt.
func benchBoot(a vm.Artifacts, boots int) (Report, error) {
	rep := Report{Bench: "boot"}
	slots := map[topology.Role]int{topology.Switch: 1, topology.Mgmt: 3, topology.EPON: 5}
	for _, role := range topology.Roles {
		img := a.Image(string(role))
		fi, err := os.Stat(img)
		if err != nil {
			return rep, fmt.Errorf("image missing (make image ROLE=%s): %w", role, err)
		}
		var times []float64
		var rssKiB int
		for i := 0; i < boots; i++ {
			run, err := os.MkdirTemp("", "bench-boot-")
			if err != nil {
				return rep, err
			}
			secs, rss, err := bootOnce(a, role, slots[role], run, i == boots-1)
			os.RemoveAll(run)
			if err != nil {
				return rep, fmt.Errorf("%s boot %d: %w", role, i+1, err)
			}
			times = append(times, secs)
			if rss > 0 {
				rssKiB = rss
			}
			fmt.Fprintf(os.Stderr, "boot %s %d/%d: %.2fs\n", role, i+1, boots, secs)
		}
		rep.Results = append(rep.Results,
			Result{Metric: "boot." + string(role), Unit: "s", Value: round(median(times), 2), Samples: len(times)},
			Result{Metric: "image." + string(role), Unit: "MiB", Value: round(float64(fi.Size())/(1<<20), 2), Samples: 1},
			Result{Metric: "rss." + string(role), Unit: "MiB", Value: round(float64(rssKiB)/1024, 2), Samples: 1},
		)
	}
	return rep, nil
}

func bootOnce(a vm.Artifacts, role topology.Role, slot int, run string, askRSS bool) (float64, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	v, err := vm.Start(ctx, vm.Config{Kernel: a.Kernel, Initrd: a.Image(string(role)), Role: string(role), Shelf: 1, Slot: slot, RunDir: run})
	if err != nil {
		return 0, 0, err
	}
	defer v.Stop(context.Background())
	if err := v.WaitBoot(ctx, 1); err != nil {
		return 0, 0, fmt.Errorf("%w\n%s", err, v.Log())
	}
	secs := time.Since(start).Seconds()
	if !askRSS {
		return secs, 0, nil
	}
	rss, err := idleRSS(ctx, v.Console())
	return secs, rss, err
}

// idleRSS lets the firmware settle, then reads show memory json.
func idleRSS(ctx context.Context, c *vm.Console) (int, error) {
	select {
	case <-time.After(2 * time.Second): // "at idle": after start-up work has finished
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	out, err := c.Exec(ctx, "show memory json")
	if err != nil {
		return 0, err
	}
	var m struct {
		RSS int `json:"rss_kib"`
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil || m.RSS == 0 {
		return 0, fmt.Errorf("show memory json printed %q (%v)", out, err)
	}
	return m.RSS, nil
}

// benchShelf boots the default shelf and measures it.
func benchShelf(a vm.Artifacts, execs int) (Report, error) {
	rep := Report{Bench: "shelf"}
	run, err := os.MkdirTemp("", "bench-shelf-")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(run)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	s, err := shelf.New(shelf.Options{Topology: topology.Default(), Artifacts: a, RunDir: run})
	if err != nil {
		return rep, err
	}
	defer s.Close()
	if err := s.Start(ctx); err != nil {
		return rep, err
	}
	if err := s.WaitUp(ctx); err != nil {
		return rep, err
	}
	up := time.Since(start).Seconds()
	fmt.Fprintf(os.Stderr, "shelf up in %.2fs\n", up)

	var rssKiB, pssKiB int
	for slot, pid := range s.Pids() {
		kib, err := procField(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:")
		if err != nil {
			return rep, fmt.Errorf("slot %d: %w", slot, err)
		}
		rssKiB += kib
		// PSS splits pages shared between the VMs (the mapped vmlinux,
		// QEMU's own code) instead of counting them once per VM.
		kib, err = procField(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss:")
		if err != nil {
			return rep, fmt.Errorf("slot %d: %w", slot, err)
		}
		pssKiB += kib
	}

	// Idle cost: the host CPU each blade's QEMU burns on a settled, quiet shelf (every
	// wakeup of an emulated blade costs host CPU; this is what leaves room for heartbeats).
	for slot := range s.Pids() {
		for {
			out, err := s.Exec(ctx, slot, "show ha json")
			var v struct {
				InQuorum bool `json:"in_quorum"`
			}
			if err == nil && json.Unmarshal([]byte(out), &v) == nil && v.InQuorum {
				break
			}
			if ctx.Err() != nil {
				return rep, fmt.Errorf("slot %d never in quorum: %w", slot, ctx.Err())
			}
			time.Sleep(200 * time.Millisecond) // poll interval
		}
	}
	// The floor, in the same window: the same kernel on the same virtual hardware with an
	// init that does nothing.
	floor, err := startIdleGuest(ctx, a, run)
	if err != nil {
		return rep, err
	}
	defer floor.Stop(context.Background())
	cpuTime := func(pid int) (float64, error) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, err
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) < 13 {
			return 0, fmt.Errorf("pid %d: short /proc stat", pid)
		}
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		return (ut + st) / 100, nil // USER_HZ
	}
	cpuOf := func() (map[int]float64, error) {
		m := map[int]float64{}
		for slot, pid := range s.Pids() {
			v, err := cpuTime(pid)
			if err != nil {
				return nil, fmt.Errorf("slot %d: %w", slot, err)
			}
			m[slot] = v
		}
		v, err := cpuTime(floor.Pid())
		if err != nil {
			return nil, fmt.Errorf("idle guest: %w", err)
		}
		m[0] = v // slot 0: the idle guest
		return m, nil
	}
	// The idle guest boots in a second or two; its boot is not idle.
	select {
	case <-time.After(10 * time.Second): // the idle guest's boot is over well before
	case <-ctx.Done():
		return rep, ctx.Err()
	}
	c0, err := cpuOf()
	if err != nil {
		return rep, err
	}
	t0 := time.Now()
	time.Sleep(20 * time.Second) // the measurement window
	c1, err := cpuOf()
	if err != nil {
		return rep, err
	}
	var idle []float64
	var floorPct float64
	for slot, v := range c1 {
		pct := 100 * (v - c0[slot]) / time.Since(t0).Seconds()
		if slot == 0 {
			floorPct = pct
			fmt.Fprintf(os.Stderr, "idle guest (no firmware): %.1f%% of a host core\n", pct)
			continue
		}
		idle = append(idle, pct)
		fmt.Fprintf(os.Stderr, "slot %d idle: %.1f%% of a host core\n", slot, pct)
	}

	// Round trips the way `shelf exec` makes them: a control-socket
	// connection per command, through the supervisor, to the console.
	srv, err := shelf.Serve(s)
	if err != nil {
		return rep, err
	}
	defer srv.Close()
	cl := shelf.Client{RunDir: run}
	var rtts []float64
	for i := 0; i < execs; i++ {
		t0 := time.Now()
		resp, err := cl.Call(ctx, shelf.Request{Op: "exec", Slot: 3, Line: "show version json"})
		if err != nil {
			return rep, err
		}
		if resp.CmdError || !strings.Contains(resp.Output, `"role"`) {
			return rep, errors.New("exec returned " + resp.Output)
		}
		rtts = append(rtts, float64(time.Since(t0).Microseconds())/1000)
	}
	rep.Results = []Result{
		{Metric: "shelf.up", Unit: "s", Value: round(up, 2), Samples: 1},
		{Metric: "shelf.rss", Unit: "MiB", Value: round(float64(rssKiB)/1024, 1), Samples: len(s.Pids())},
		{Metric: "shelf.pss", Unit: "MiB", Value: round(float64(pssKiB)/1024, 1), Samples: len(s.Pids())},
		{Metric: "shelf.exec_rtt", Unit: "ms", Value: round(median(rtts), 2), Samples: len(rtts)},
		{Metric: "shelf.idle_cpu", Unit: "% of a host core per blade (median, 20 s window)", Value: round(median(idle), 1), Samples: len(idle),
			Peer: &Peer{Name: "the blades' kernel on the same QEMU machine (watchdog, IPMI; no NICs) with an init that does nothing, same window", Value: round(floorPct, 1)}},
		{Metric: "shelf.idle_cpu.sum", Unit: "% of a host core, all blades (20 s window)", Value: round(sum(idle), 1), Samples: len(idle),
			Peer: &Peer{Name: "host cores", Value: float64(runtime.NumCPU() * 100)}},
	}
	return rep, nil
}

// startIdleGuest boots the blades' kernel with idleinit as its only process (the floor of
// shelf.idle_cpu).
func startIdleGuest(ctx context.Context, a vm.Artifacts, run string) (*vm.VM, error) {
	dir := filepath.Join(run, "idle")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	bin := filepath.Join(dir, "init")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "github.com/cgoa/cgoa/qemu/cmd/bench/idleinit")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("idle guest: go build: %v\n%s", err, out)
	}
	code, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	initrd := filepath.Join(dir, "idle.cpio")
	f, err := os.Create(initrd)
	if err != nil {
		return nil, err
	}
	w := cpio.Newc.Writer(f)
	if err := cpio.WriteRecords(w, []cpio.Record{cpio.StaticFile("init", string(code), 0o755)}); err != nil {
		f.Close()
		return nil, fmt.Errorf("idle guest: cpio: %w", err)
	}
	if err := cpio.WriteTrailer(w); err != nil {
		f.Close()
		return nil, fmt.Errorf("idle guest: cpio: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return vm.Start(ctx, vm.Config{Kernel: a.Kernel, Initrd: initrd, Role: "idle", Shelf: 99, Slot: 99, RunDir: dir})
}

// procField reads a "Name:  123 kB" line of a /proc file.
func procField(path, name string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, name) {
			f := strings.Fields(l)
			if len(f) >= 2 {
				return strconv.Atoi(f[1])
			}
		}
	}
	return 0, fmt.Errorf("%s: no %s", path, name)
}
