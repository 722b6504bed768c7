package netnstest

import (
	"os/exec"
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
