// Package netnstest makes network namespaces for tests: New adds one with `ip netns add` and
// deletes it when the test ends, also when it fails; it skips the test where that cannot be
// done (not root, no iproute2). IP runs `ip -n NS ...` and fails the test on an error.
//
// A test process that is killed (SIGKILL, or the panic of go test -timeout) runs no cleanup.
// Each name carries the process's PID, so the first New of a later test process deletes the
// namespaces of processes that are gone (Sweep).
//
//	ns := netnstest.New(t, "carrier")
//	netnstest.IP(t, ns, "link", "add", "base0", "type", "veth", "peer", "name", "hub1")
//	err := netns.Do(netns.Named(ns), func() error { ... })
package netnstest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// New adds a network namespace named after tag and the test process, and deletes it at the
// test's end.
func New(tb testing.TB, tag string) string {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root for a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		tb.Skip("needs iproute2's ip")
	}
	SweepOnce(tb)
	name := Name(tag)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		tb.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	tb.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	return name
}

// Name is a namespace name for tag, unique to this process: cgoa-TAG-pPID-RANDOM.
func Name(tag string) string { return Namer()(tag) }

// Namer returns a function naming a set of namespaces (a test shelf's) as Name does, with
// one random part for the set: the same tag gives the same name, and Sweep removes them
// once this process is gone.
func Namer() func(tag string) string {
	var r [3]byte
	rand.Read(r[:])
	suffix := fmt.Sprintf("-p%d-%s", os.Getpid(), hex.EncodeToString(r[:]))
	return func(tag string) string { return "cgoa-" + tag + suffix }
}

var sweepOnce sync.Once

// SweepOnce runs Sweep the first time a test process calls it (New does) and logs to tb
// what it deleted or could not delete.
func SweepOnce(tb testing.TB) {
	sweepOnce.Do(func() {
		if gone, err := Sweep(); err != nil {
			tb.Logf("netnstest: sweeping namespaces of dead test processes: %v", err)
		} else if len(gone) > 0 {
			tb.Logf("netnstest: deleted namespaces of dead test processes: %v", gone)
		}
	})
}

// owned matches the names Name makes: the owner's PID is the submatch.
var owned = regexp.MustCompile(`^cgoa-.+-p([0-9]+)-[0-9a-f]{6}$`)

// Sweep deletes the namespaces Name made for processes that no longer exist, and returns
// their names. A namespace of a live process (this one, or a test running beside it) stays.
func Sweep() ([]string, error) {
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("ip netns list: %v: %s", err, out)
	}
	var gone []string
	var errs []error
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		m := owned.FindStringSubmatch(f[0])
		if m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || pid <= 0 || alive(pid) {
			continue
		}
		if out, err := exec.Command("ip", "netns", "del", f[0]).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("ip netns del %s: %v: %s", f[0], err, out))
			continue
		}
		gone = append(gone, f[0])
	}
	return gone, errors.Join(errs...)
}

// alive reports whether process pid exists (signal 0: no signal is sent).
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}

// IP runs `ip -n ns args...` and fails the test if it fails.
func IP(tb testing.TB, ns string, args ...string) {
	tb.Helper()
	if out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput(); err != nil {
		tb.Fatalf("ip -n %s %s: %v: %s", ns, strings.Join(args, " "), err, out)
	}
}
