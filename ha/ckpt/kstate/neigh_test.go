package kstate

import (
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/cgoa/cgoa/netstack/netns/netnstest"
)

type ipNeigh struct {
	Dst    string   `json:"dst"`
	Dev    string   `json:"dev"`
	LLAddr string   `json:"lladdr"`
	State  []string `json:"state"`
}

func neighbours(t *testing.T, ns string) map[string]ipNeigh {
	t.Helper()
	out, err := exec.Command("ip", "-n", ns, "-j", "-4", "neigh", "show").Output()
	if err != nil {
		t.Fatalf("ip neigh show: %v", err)
	}
	var l []ipNeigh
	if err := json.Unmarshal(out, &l); err != nil {
		t.Fatalf("ip -j neigh show: %v: %s", err, out)
	}
	m := map[string]ipNeigh{}
	for _, n := range l {
		m[n.Dst+" "+n.Dev] = n
	}
	return m
}

// TestNeighborsAcrossTakeover: the entries with a known MAC on the chosen links and in the
// prefix are captured (not other links, other prefixes, or failed entries); restored on a
// kernel without them, they are there, stale (usable at once), with their MACs; an entry the
// kernel holds already is left as it is.
func TestNeighborsAcrossTakeover(t *testing.T) {
	ns := netnstest.New(t, "neigh")
	for _, args := range [][]string{
		{"link", "add", "base0", "type", "veth", "peer", "name", "hub0"},
		{"link", "add", "base1", "type", "veth", "peer", "name", "hub1"},
		{"link", "set", "base0", "up"}, {"link", "set", "hub0", "up"},
		{"link", "set", "base1", "up"}, {"link", "set", "hub1", "up"},
		{"neigh", "add", "169.254.3.250", "lladdr", "02:c0:00:00:00:fa", "dev", "base0", "nud", "reachable"},
		{"neigh", "add", "169.254.3.20", "lladdr", "02:c0:00:00:00:20", "dev", "base1", "nud", "stale"},
		{"neigh", "add", "169.254.3.21", "dev", "base1", "nud", "failed"},
		{"neigh", "add", "10.1.1.1", "lladdr", "02:c0:00:00:01:01", "dev", "base0", "nud", "permanent"},
		{"neigh", "add", "169.254.3.99", "lladdr", "02:c0:00:00:00:99", "dev", "hub0", "nud", "permanent"},
	} {
		netnstest.IP(t, ns, args...)
	}
	f, err := os.Open("/var/run/netns/" + ns)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd := int(f.Fd())
	b, err := CaptureNeighbors(fd, []string{"base0", "base1"}, netip.MustParsePrefix("169.254.3.0/24"))
	if err != nil {
		t.Fatalf("CaptureNeighbors: %v", err)
	}
	got, err := DecodeNeighbors(b)
	if err != nil {
		t.Fatalf("DecodeNeighbors(captured): %v", err)
	}
	want := []Neighbor{
		{netip.MustParseAddr("169.254.3.250"), "02:c0:00:00:00:fa", "base0"},
		{netip.MustParseAddr("169.254.3.20"), "02:c0:00:00:00:20", "base1"},
	}
	if !slices.Equal(got.Neighbors, want) {
		t.Fatalf("captured %+v, want %+v", got.Neighbors, want)
	}

	// The other blade: no entries but one of its own for .20, with another MAC.
	netnstest.IP(t, ns, "neigh", "flush", "dev", "base0")
	netnstest.IP(t, ns, "neigh", "flush", "dev", "base1")
	netnstest.IP(t, ns, "neigh", "replace", "169.254.3.20", "lladdr", "02:c0:00:00:00:21", "dev", "base1", "nud", "reachable")
	n, err := RestoreNeighbors(fd, b)
	if err != nil || n != 1 {
		t.Fatalf("RestoreNeighbors = %d, %v; want 1 installed (the other held already)", n, err)
	}
	have := neighbours(t, ns)
	if e := have["169.254.3.250 base0"]; e.LLAddr != "02:c0:00:00:00:fa" || !slices.Contains(e.State, "STALE") {
		t.Errorf("restored 169.254.3.250 on base0 = %+v, want 02:c0:00:00:00:fa, STALE", e)
	}
	if e := have["169.254.3.20 base1"]; e.LLAddr != "02:c0:00:00:00:21" {
		t.Errorf("169.254.3.20 on base1 = %+v, want the kernel's own entry (02:c0:00:00:00:21) kept", e)
	}
	// Again: nothing more to install.
	if n, err := RestoreNeighbors(fd, b); err != nil || n != 0 {
		t.Errorf("RestoreNeighbors again = %d, %v; want 0, nil", n, err)
	}
	for _, bad := range []string{"", "{", `{"neighbors":[{"addr":"169.254.3.1","mac":"zz","dev":"base0"}]}`,
		`{"neighbors":[{"addr":"0.0.0.0","mac":"02:00:00:00:00:01","dev":"base0"}]}`,
		`{"neighbors":[{"addr":"169.254.3.1","mac":"02:00:00:00:00:01","dev":"` + strings.Repeat("x", 16) + `"}]}`} {
		if _, err := RestoreNeighbors(fd, []byte(bad)); err == nil {
			t.Errorf("RestoreNeighbors(%q) = nil error", bad)
		}
	}
}

func FuzzDecodeNeighbors(f *testing.F) {
	f.Add([]byte(`{"neighbors":[{"addr":"169.254.3.250","mac":"02:c0:00:00:00:fa","dev":"base0"}]}`))
	f.Add([]byte(`{"neighbors":[]}`))
	f.Add([]byte(`{"neighbors":[{"addr":"::1","mac":"02:c0:00:00:00:fa","dev":""}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ns, err := DecodeNeighbors(b)
		if err != nil {
			return
		}
		// What decodes re-encodes and decodes the same.
		b2, err := json.Marshal(ns)
		if err != nil {
			t.Fatal(err)
		}
		ns2, err := DecodeNeighbors(b2)
		if err != nil || !slices.Equal(ns.Neighbors, ns2.Neighbors) {
			t.Fatalf("round trip of %q: %+v, %v", b, ns2, err)
		}
	})
}
