// Package netnstest makes network namespaces for tests: New adds one with `ip netns add` and
// deletes it when the test ends, also when it fails; it skips the test where that cannot be
// done (not root, no iproute2). IP runs `ip -n NS ...` and fails the test on an error.
//
//	ns := netnstest.New(t, "carrier")
//	netnstest.IP(t, ns, "link", "add", "base0", "type", "veth", "peer", "name", "hub1")
//	err := netns.Do(netns.Named(ns), func() error { ... })
package netnstest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"strings"
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
	var r [3]byte
	rand.Read(r[:])
	name := "cgoa-" + tag + "-" + hex.EncodeToString(r[:])
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		tb.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	tb.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	return name
}

// IP runs `ip -n ns args...` and fails the test if it fails.
func IP(tb testing.TB, ns string, args ...string) {
	tb.Helper()
	if out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput(); err != nil {
		tb.Fatalf("ip -n %s %s: %v: %s", ns, strings.Join(args, " "), err, out)
	}
}
