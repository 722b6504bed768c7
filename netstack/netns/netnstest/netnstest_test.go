package netnstest

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestNewAndCleanup: the namespace exists during the test and is gone after its cleanup.
func TestNewAndCleanup(t *testing.T) {
	var name string
	t.Run("inner", func(t *testing.T) {
		name = New(t, "nstest")
		IP(t, name, "link", "set", "lo", "up")
		out, _ := exec.Command("ip", "netns", "list").CombinedOutput()
		if !strings.Contains(string(out), name) {
			t.Fatalf("ip netns list = %q, want %s", out, name)
		}
	})
	if name == "" {
		t.Skip("no namespace could be made here")
	}
	out, _ := exec.Command("ip", "netns", "list").CombinedOutput()
	if strings.Contains(string(out), name) {
		t.Errorf("namespace %s still listed after its test ended: %q", name, out)
	}
}

// TestSweep: a namespace named for a process that has exited is deleted; one named for this
// (live) process, and one not named by Name, stay.
func TestSweep(t *testing.T) {
	New(t, "sweep") // skips where namespaces cannot be made
	child := exec.Command("true")
	if err := child.Run(); err != nil {
		t.Fatal(err)
	}
	dead := fmt.Sprintf("cgoa-sweep-p%d-abcdef", child.Process.Pid)
	live := fmt.Sprintf("cgoa-sweep-p%d-fedcba", os.Getpid())
	other := "cgoa-sweep-notours"
	for _, n := range []string{dead, live, other} {
		if out, err := exec.Command("ip", "netns", "add", n).CombinedOutput(); err != nil {
			t.Fatalf("ip netns add %s: %v: %s", n, err, out)
		}
		t.Cleanup(func() { exec.Command("ip", "netns", "del", n).Run() })
	}
	gone, err := Sweep()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(gone, dead) {
		t.Errorf("Sweep() deleted %v, want %s among them", gone, dead)
	}
	out, _ := exec.Command("ip", "netns", "list").CombinedOutput()
	list := string(out)
	if strings.Contains(list, dead) {
		t.Errorf("%s still listed after Sweep", dead)
	}
	for _, n := range []string{live, other} {
		if !strings.Contains(list, n) {
			t.Errorf("Sweep deleted %s, which it must keep", n)
		}
	}
}

// TestNamer: a Namer gives one name per tag, in the form Sweep knows as this process's, and
// two Namers give different names for the same tag.
func TestNamer(t *testing.T) {
	a, b := Namer(), Namer()
	if a("s3") != a("s3") {
		t.Errorf("Namer: %s then %s for one tag", a("s3"), a("s3"))
	}
	if a("s3") == b("s3") {
		t.Errorf("two Namers both name s3 %s", a("s3"))
	}
	for _, n := range []string{a("has3"), Name("tap")} {
		m := owned.FindStringSubmatch(n)
		if m == nil || m[1] != fmt.Sprint(os.Getpid()) {
			t.Errorf("%s: not in the form Sweep knows as this process's (%q)", n, m)
		}
	}
}
