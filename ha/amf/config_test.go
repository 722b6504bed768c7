package amf

import (
	"strings"
	"testing"
	"time"

	"github.com/cgoa/cgoa/ha/transport"
)

const sampleConfig = `shelf: 1
slots: [1, 2, 3, 4, 5]
timers: {interval: 10ms, misses: 3}
groups:
  - name: mgmt
    model: 2n
    units: [{name: mgmt-3, node: 3}, {name: mgmt-4, node: 4}]
  - name: olt
    model: n+m
    instances: [pon-a]
    units: [{name: olt-5, node: 5}, {name: olt-4, node: 4}]
`

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte(sampleConfig))
	if err != nil {
		t.Fatalf("ParseConfig(sample) error %v", err)
	}
	if c.Timers.Interval != 10*time.Millisecond || len(c.Groups) != 2 || c.Groups[1].Model != NPlusM {
		t.Errorf("ParseConfig(sample) = %+v", c)
	}
	bad := map[string]string{
		"not yaml":       "slots: [",
		"unknown model":  strings.Replace(sampleConfig, "model: 2n", "model: 3n", 1),
		"unit off shelf": strings.Replace(sampleConfig, "node: 5", "node: 9", 1),
		"duplicate slot": strings.Replace(sampleConfig, "[1, 2, 3, 4, 5]", "[1, 2, 3, 4, 5, 5]", 1),
		"zero interval":  strings.Replace(sampleConfig, "interval: 10ms", "interval: 0s", 1),
		"duplicate unit": strings.Replace(sampleConfig, "olt-4", "mgmt-4", 1),
		"two units/slot": strings.Replace(sampleConfig, "{name: olt-4, node: 4}", "{name: olt-4, node: 5}", 1),
		"slash in name":  strings.Replace(sampleConfig, "name: mgmt\n", "name: mg/mt\n", 1),
		"no slots":       "timers: {interval: 10ms, misses: 3}\n",
		"negative drift": sampleConfig + "drift: -1\n",
	}
	for name, text := range bad {
		if _, err := ParseConfig([]byte(text)); err == nil {
			t.Errorf("ParseConfig(%s) succeeded, want error", name)
		}
	}
}

// FuzzParseConfig: a configuration file never panics the parser or the
// engine built from it.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(sampleConfig))
	f.Add([]byte("slots: [1]\ntimers: {interval: 1ns, misses: 1}\n"))
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err != nil {
			return
		}
		n, err := NewNode(c, c.Slots[0], 1, 0, Env{Send: func(transport.Type, uint8, []byte) {}})
		if err != nil {
			return
		}
		n.Tick(0)
		n.Status(0)
	})
}
