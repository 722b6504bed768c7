package ckpt

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cgoa/cgoa/ha/procmode"
	"golang.org/x/sys/unix"
)

// TestBenchCkpt is the checkpoint bench (make bench-ckpt), not a test: it
// runs only with CGOA_BENCH_CKPT=<output json path>. Two ckptnode
// processes (slots 3 and 4) in network namespaces over veth (procmode's
// backplane); the writer measures, in one run: raw TCP throughput and the
// raw TCP 1 KiB round trip over the same veth (the peers), then
// asynchronous throughput of 1 KiB and 64 KiB sections, synchronous 1 KiB
// write latency and RSS growth, over the direct TCP Link (the metrics
// without suffix) and over the HA transport (".ha"). With
// CGOA_BENCH_CKPT_PROFILE=<dir> both sides write CPU profiles there.
//
// Where the two processes run: the full bench runs them unpinned, sharing
// the machine's CPUs. Then the throughput streams run again (metrics
// ".pinned") with the writer and the replica each pinned to a CPU of its
// own and GOMAXPROCS 2, raw TCP and the Link alike: a blade of one CPU as
// in the QEMU shelf (qemu/vm: -smp 1), where the firmware runs two Go
// processors (firmware/procs.go). There each side's own work bounds its
// throughput (the writer's CPU per MB), with no wait behind the other
// side's goroutines. On a machine of one CPU only the shared pass runs.
// CGOA_BENCH_CKPT_PLACE=shared|pinned runs one pass only (pinned: the
// full bench, without suffix).
func TestBenchCkpt(t *testing.T) {
	out := os.Getenv("CGOA_BENCH_CKPT")
	if out == "" {
		t.Skip("bench: set CGOA_BENCH_CKPT=build/bench/ckpt.json to run")
	}
	procmode.Require(t)
	dir := t.TempDir()
	bin := procmode.BuildCmd(t, dir, "github.com/cgoa/cgoa/ha/ckpt/cmd/ckptnode")
	shelf := procmode.New(t, bin, []uint8{3, 4}, "groups: []\n")
	conf := filepath.Join(dir, "shelf.yaml")
	if err := os.WriteFile(conf, []byte("shelf: 7\nslots: [3, 4]\ntimers:\n  interval: 20ms\n  misses: 5\ngroups: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	kb := make([]byte, 32)
	rand.Read(kb)
	key := hex.EncodeToString(kb)
	var results []procmode.Result
	var mu sync.Mutex
	// stop ends a process start began (done: its output read and it
	// waited for): SIGTERM first (a profiling replica writes its
	// profile), then SIGKILL. Again is harmless.
	stop := func(cmd *exec.Cmd, done chan struct{}) {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	start := func(slot, other uint8, role string, cpu int, extra ...string) (*exec.Cmd, chan struct{}, chan struct{}) {
		args := []string{"ip", "netns", "exec", shelf.NS(slot), bin, "-config", conf, "-slot", fmt.Sprint(slot), "-key", key,
			"-base0", "base0=" + procmode.Base0Net, "-base1", "base1=" + procmode.Base1Net, "-port", fmt.Sprint(procmode.HAPort),
			"-ring", fmt.Sprint(4 << 20), "-bench", role, "-peer-slot", fmt.Sprint(other), "-peer", fmt.Sprintf("169.254.70.%d", other)}
		args = append(args, extra...)
		var env []string // nil: this process's
		if cpu >= 0 {
			// Pinned before it starts (every thread inherits it), with
			// the firmware's two processors on a CPU of its own.
			args = append([]string{"taskset", "-c", fmt.Sprint(cpu)}, args...)
			env = append(os.Environ(), "GOMAXPROCS=2")
		}
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = env
		// The collector as the firmware runs it: the runtime's default
		// (the firmware sets no GOGC). A tighter GOGC is no saving here:
		// each extra collection costs the runtime more metadata (about
		// 0.5 MiB of RSS measured) than the garbage it frees, as the
		// write path makes none.
		if d := os.Getenv("CGOA_BENCH_CKPT_PROFILE"); d != "" {
			// CPU profiles of both sides, for go tool pprof with the binary.
			cmd.Args = append(cmd.Args, "-cpuprofile", filepath.Join(d, role+".pprof"))
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		cmd.Stderr = os.Stderr
		pipe, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ready, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			sc := bufio.NewScanner(pipe)
			for sc.Scan() {
				l := sc.Text()
				switch {
				case l == "ready":
					close(ready)
				case strings.HasPrefix(l, "result "):
					var r procmode.Result
					if err := json.Unmarshal([]byte(l[7:]), &r); err != nil {
						t.Errorf("bad result line %q: %v", l, err)
						continue
					}
					mu.Lock()
					results = append(results, r)
					mu.Unlock()
					t.Log(l[7:])
				default:
					t.Logf("slot %d: %s", slot, l)
				}
			}
			cmd.Wait()
		}()
		t.Cleanup(func() { stop(cmd, done) })
		return cmd, ready, done
	}
	// pass runs the replica and the writer (on CPUs rcpu and wcpu, or
	// unpinned: -1) until the writer is done, then stops the replica.
	pass := func(rcpu, wcpu int, extra ...string) {
		rcmd, rready, rdone := start(4, 3, "replica", rcpu)
		select {
		case <-rready:
		case <-rdone:
			t.Fatal("replica exited before ready")
		case <-time.After(10 * time.Second):
			t.Fatal("replica not ready after 10s")
		}
		wcmd, _, wdone := start(3, 4, "writer", wcpu, extra...)
		select {
		case <-wdone:
		case <-time.After(15 * time.Minute):
			t.Fatal("writer not done after 15 min")
		}
		if !wcmd.ProcessState.Success() {
			t.Fatalf("writer: %v", wcmd.ProcessState)
		}
		stop(rcmd, rdone)
	}
	place := os.Getenv("CGOA_BENCH_CKPT_PLACE")
	cpus := benchCPUs()
	pinned := func(extra ...string) {
		pass(cpus[1], cpus[0], append([]string{"-placement", fmt.Sprintf("; writer and replica each pinned to a CPU of its own (%d and %d), GOMAXPROCS 2: two blades of one CPU", cpus[0], cpus[1])}, extra...)...)
	}
	switch {
	case len(cpus) < 2:
		pass(-1, -1, "-placement", "; writer and replica sharing the machine's one CPU")
	case place == "pinned":
		pinned()
	default:
		pass(-1, -1, "-placement", fmt.Sprintf("; writer and replica unpinned, sharing the machine's %d CPUs", len(cpus)))
		if place != "shared" {
			pinned("-throughput-only", "-metric-suffix", ".pinned")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(results) == 0 {
		t.Fatal("no results")
	}
	if err := procmode.WriteReport(out, procmode.Report{Bench: "ckpt", Machine: procmode.Machine(), Results: results}); err != nil {
		t.Fatal(err)
	}
}

// benchCPUs lists the CPUs this process may run on, in order.
func benchCPUs() []int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil
	}
	var cpus []int
	for i := range len(set) * 64 { // (a CPUSet is a bit mask in 64-bit words)
		if set.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	return cpus
}
