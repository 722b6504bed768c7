// Package shelftest boots emulated shelves from Go tests.
//
//	func TestFailover(t *testing.T) {
//		sh := shelftest.Boot(t, topology.Default()) // skips if qemu, kernel or images are missing
//		out := sh.Exec(t, 3, "show ports json")
//		sh.Kill(t, 1)
//		sh.Eventually(t, 2*time.Second, "base0 down on slot 3", func() error { ... })
//	}
//
// Every VM is stopped when the test ends (t.Cleanup), also on failure, and
// on failure every blade's console log is attached to the test output.
package shelftest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/cgoa/cgoa/qemu/shelf"
	"github.com/cgoa/cgoa/qemu/topology"
	"github.com/cgoa/cgoa/qemu/vm"
)

// BootTimeout bounds the boot of a whole shelf. TCG on two shared cores is
// slow, so it is generous; a bench measures the real figure.
var BootTimeout = 4 * time.Minute

// Shelf is a shelf under test.
type Shelf struct {
	*shelf.Shelf
}

// Need skips the test unless QEMU, the kernel and the images of the given
// roles exist, and returns the artifacts. With CGOA_REQUIRE_VM=1 (make test)
// a missing piece fails the test instead: CI must not pass by skipping.
func Need(t testing.TB, roles ...topology.Role) vm.Artifacts {
	t.Helper()
	var rs []string
	for _, r := range roles {
		rs = append(rs, string(r))
	}
	a, err := vm.Need(rs...)
	if err != nil {
		if os.Getenv("CGOA_REQUIRE_VM") == "1" {
			t.Fatalf("CGOA_REQUIRE_VM=1 but %v", err)
		}
		t.Skipf("skipping VM test: %v", err)
	}
	return a
}

// Boot boots a topology in a temporary run directory and waits for every
// prompt. The shelf is stopped at the end of the test.
func Boot(t testing.TB, topo *topology.Shelf) *Shelf {
	t.Helper()
	var roles []topology.Role
	for _, b := range topo.Blades {
		roles = append(roles, b.Role)
	}
	a := Need(t, roles...)
	// Socket paths must stay under 108 bytes, so not t.TempDir() (long names).
	run, err := os.MkdirTemp("", "shelf-"+topo.Name+"-")
	if err != nil {
		t.Fatal(err)
	}
	s, err := shelf.New(shelf.Options{Topology: topo, Artifacts: a, RunDir: run, Log: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	sh := &Shelf{s}
	t.Cleanup(func() {
		s.Close()
		if t.Failed() {
			sh.dumpLogs(t)
		}
		os.RemoveAll(run)
	})
	ctx, cancel := context.WithTimeout(context.Background(), BootTimeout)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatalf("starting shelf %s: %v", topo.Name, err)
	}
	if err := s.WaitUp(ctx); err != nil {
		t.Fatalf("shelf %s did not boot: %v", topo.Name, err)
	}
	return sh
}

type testLog struct{ t testing.TB }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Logf("shelf: %s", p)
	return len(p), nil
}

func (sh *Shelf) dumpLogs(t testing.TB) {
	logs := sh.Logs()
	var slots []int
	for s := range logs {
		slots = append(slots, s)
	}
	sort.Ints(slots)
	for _, s := range slots {
		t.Logf("===== console log of slot %d (%s) =====\n%s", s, filepath.Join(sh.RunDir(), fmt.Sprintf("slot%d.log", s)), logs[s])
	}
}

// ExecTimeout bounds one console command.
var ExecTimeout = 30 * time.Second

// Exec runs a console command and fails the test on any error.
func (sh *Shelf) Exec(t testing.TB, slot int, line string) string {
	t.Helper()
	out, err := sh.TryExec(slot, line)
	if err != nil {
		t.Fatalf("slot %d: Exec(%q) = %q, %v", slot, line, out, err)
	}
	return out
}

// TryExec runs a console command and returns its error.
func (sh *Shelf) TryExec(slot int, line string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ExecTimeout)
	defer cancel()
	return sh.Shelf.Exec(ctx, slot, line)
}

// ExecJSON runs a "... json" command and decodes its output.
func (sh *Shelf) ExecJSON(t testing.TB, slot int, line string, v any) {
	t.Helper()
	out := sh.Exec(t, slot, line)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("slot %d: %q printed %q: not JSON: %v", slot, line, out, err)
	}
}

func (sh *Shelf) op(t testing.TB, what string, f func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := f(ctx); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Kill pulls a blade.
func (sh *Shelf) Kill(t testing.TB, slot int) {
	t.Helper()
	sh.op(t, fmt.Sprintf("kill %d", slot), func(ctx context.Context) error { return sh.Shelf.Kill(ctx, slot) })
}

// Restart reinserts a blade and waits for its prompt.
func (sh *Shelf) Restart(t testing.TB, slot int) {
	t.Helper()
	sh.op(t, fmt.Sprintf("restart %d", slot), func(ctx context.Context) error { return sh.Shelf.Restart(ctx, slot) })
	sh.WaitBoot(t, slot, 1)
}

// WaitBoot waits for boot n of a blade (counted through the boot ROM since the blade was
// inserted: a reset is a new boot) to reach its prompt.
func (sh *Shelf) WaitBoot(t testing.TB, slot, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), BootTimeout)
	defer cancel()
	if err := sh.Shelf.WaitBoot(ctx, slot, n); err != nil {
		t.Fatal(err)
	}
}

// Cut cuts a channel; Mend repairs it.
func (sh *Shelf) Cut(t testing.TB, slot int, port string) {
	t.Helper()
	sh.op(t, fmt.Sprintf("cut %d %s", slot, port), func(ctx context.Context) error { return sh.Shelf.Cut(ctx, slot, port) })
}

// Mend repairs a cut channel.
func (sh *Shelf) Mend(t testing.TB, slot int, port string) {
	t.Helper()
	sh.op(t, fmt.Sprintf("mend %d %s", slot, port), func(ctx context.Context) error { return sh.Shelf.Mend(ctx, slot, port) })
}

// Hang stops a blade's CPU; Resume continues it.
func (sh *Shelf) Hang(t testing.TB, slot int) {
	t.Helper()
	sh.op(t, fmt.Sprintf("hang %d", slot), func(ctx context.Context) error { return sh.Shelf.Hang(ctx, slot) })
}

// Resume continues a hung blade.
func (sh *Shelf) Resume(t testing.TB, slot int) {
	t.Helper()
	sh.op(t, fmt.Sprintf("resume %d", slot), func(ctx context.Context) error { return sh.Shelf.Resume(ctx, slot) })
}

// Eventually polls cond until it returns nil or the timeout passes, then
// fails with cond's last error. It is how tests wait for a condition
// instead of sleeping.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	if err := Poll(timeout, cond); err != nil {
		t.Fatalf("%s: not within %v: %v", what, timeout, err)
	}
}

// Poll calls cond every few milliseconds until it returns nil or timeout.
func Poll(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Port is one entry of `show ports json`.
type Port struct {
	Name    string `json:"name"`
	MAC     string `json:"mac"`
	OperUp  bool   `json:"oper_up"`
	Carrier bool   `json:"carrier"`
}

// Ports runs `show ports json` on a blade.
func (sh *Shelf) Ports(slot int) (map[string]Port, error) {
	out, err := sh.TryExec(slot, "show ports json")
	if err != nil {
		return nil, err
	}
	var r struct {
		Ports []Port `json:"ports"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return nil, fmt.Errorf("show ports json printed %q: %w", out, err)
	}
	m := map[string]Port{}
	for _, p := range r.Ports {
		m[p.Name] = p
	}
	return m, nil
}

// LinkIs returns a condition: the blade reports port up (oper_up and
// carrier) or down (no carrier).
func (sh *Shelf) LinkIs(slot int, port string, up bool) func() error {
	return func() error {
		ports, err := sh.Ports(slot)
		if err != nil {
			return err
		}
		p, ok := ports[port]
		if !ok {
			return fmt.Errorf("slot %d has no port %s in show ports", slot, port)
		}
		if got := p.OperUp && p.Carrier; got != up {
			return fmt.Errorf("slot %d %s: oper_up=%v carrier=%v, want up=%v", slot, port, p.OperUp, p.Carrier, up)
		}
		return nil
	}
}
