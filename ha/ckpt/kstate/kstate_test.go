package kstate

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cgoa/cgoa/netstack/netns/netnstest"
)

func mkNS(t *testing.T, tag string) (string, int) {
	t.Helper()
	name := netnstest.New(t, tag)
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "d0", "type", "veth", "peer", "name", "d1"}, // no dummy module on every kernel
		{"link", "set", "d1", "up"},
		{"link", "set", "d0", "up"},
		{"addr", "add", "192.0.2.1/24", "dev", "d0"},
	} {
		if out, err := exec.Command("ip", append([]string{"-n", name}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip -n %s %v: %v %s", name, args, err, out)
		}
	}
	f, err := os.Open("/var/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return name, int(f.Fd())
}

// TestRoutesAcrossNamespaces installs routes of protocol 188 in
// namespace A (and one of another protocol that must not be taken),
// captures them, restores them into namespace B and compares.
func TestRoutesAcrossNamespaces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("kstate: needs root for network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("kstate: needs the ip command")
	}
	nsA, a := mkNS(t, "ckpt-a")
	_, b := mkNS(t, "ckpt-b")
	for _, r := range []string{
		"198.51.100.0/24 via 192.0.2.254 proto 188",
		"203.0.113.0/25 dev d0 proto 188 metric 50",
		"10.9.0.0/16 via 192.0.2.7 proto static",
	} {
		args := append([]string{"-n", nsA, "route", "add"}, strings.Fields(r)...)
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	sec, err := CaptureRoutes(a, 188)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := Decode(sec)
	if err != nil || len(rs.Routes) != 2 {
		t.Fatalf("CaptureRoutes(A, 188) = %s (%v), want the 2 routes of protocol 188", sec, err)
	}
	if err := RestoreRoutes(b, sec); err != nil {
		t.Fatal(err)
	}
	got, err := CaptureRoutes(b, 188)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(sec) {
		t.Errorf("routes in B = %s, want A's %s", got, sec)
	}
	if other, _ := CaptureRoutes(b, unix.RTPROT_STATIC); strings.Contains(string(other), "10.9.0.0") {
		t.Errorf("route of another protocol was restored: %s", other)
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, b := range []string{``, `{`, `{"routes":[{"dst":"10.0.0.0/8"}]}`, `{"routes":[{"dst":"10.0.0.0/8","dev":"x","gateway":"::1"}]}`,
		`{"routes":[{"dst":"10.0.0.0/8","dev":"../x"}]}`} {
		if _, err := Decode([]byte(b)); !errors.Is(err, ErrBad) {
			t.Errorf("Decode(%q) = %v, want %v", b, err, ErrBad)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"routes":[{"dst":"198.51.100.0/24","gateway":"192.0.2.254","dev":"d0","metric":0,"table":254,"protocol":188,"scope":0}]}`))
	f.Add([]byte(`{"routes":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, err := Decode(b)
		if err == nil && len(rs.Routes) > MaxRoutes {
			t.Fatalf("Decode accepted %d routes", len(rs.Routes))
		}
	})
}
