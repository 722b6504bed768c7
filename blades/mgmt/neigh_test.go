package mgmt

import (
	"strings"
	"testing"

	"github.com/cgoa/cgoa/ha/ckpt/kstate"
)

// TestOnEveryPort: each host of a captured section is installed on every base port, once,
// with its MAC; a bad section is refused.
func TestOnEveryPort(t *testing.T) {
	in := `{"neighbors":[{"addr":"169.254.3.250","mac":"02:c0:00:00:00:fa","dev":"base1"},` +
		`{"addr":"169.254.3.250","mac":"02:c0:00:00:00:fa","dev":"base0"},` +
		`{"addr":"169.254.3.9","mac":"02:c0:00:00:00:09","dev":"base0"}]}`
	out, err := onEveryPort([]byte(in), []string{"base0", "base1"})
	if err != nil {
		t.Fatalf("onEveryPort() error %v", err)
	}
	ns, err := kstate.DecodeNeighbors(out)
	if err != nil {
		t.Fatalf("onEveryPort() = %s, which does not decode: %v", out, err)
	}
	var got []string
	for _, n := range ns.Neighbors {
		got = append(got, n.Addr.String()+" "+n.MAC+" "+n.Dev)
	}
	want := "169.254.3.250 02:c0:00:00:00:fa base0,169.254.3.250 02:c0:00:00:00:fa base1," +
		"169.254.3.9 02:c0:00:00:00:09 base0,169.254.3.9 02:c0:00:00:00:09 base1"
	if strings.Join(got, ",") != want {
		t.Errorf("onEveryPort() entries %v, want %s", got, want)
	}
	if _, err := onEveryPort([]byte(`{"neighbors":[{"addr":"x"}]}`), []string{"base0"}); err == nil {
		t.Errorf("onEveryPort() of a bad section: no error")
	}
}
