package hal

import (
	"errors"
	"testing"
)

// qemuWatchdogSDR is the compact sensor record QEMU's ipmi-bmc-sim carries by default.
var qemuWatchdogSDR = []byte{0x00, 0x00, 0x51, 0x02, 35, 0x20, 0x00, 0x00, 0x23, 0x01, 0x63, 0x00, 0x23, 0x6f, 0x0f, 0x01,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xc8, 'W', 'a', 't', 'c', 'h', 'd', 'o', 'g'}

func TestParseSDR(t *testing.T) {
	r, err := ParseSDR(qemuWatchdogSDR)
	if err != nil {
		t.Fatalf("ParseSDR(qemu watchdog) = %v", err)
	}
	if r.Name != "Watchdog" || r.SensorType != 0x23 || r.Type != sdrCompactSensor {
		t.Errorf("ParseSDR(qemu watchdog) = %+v, want Watchdog, type 0x23, compact", r)
	}
	bad := [][]byte{nil, {1, 2, 3}, qemuWatchdogSDR[:20], append(append([]byte{}, qemuWatchdogSDR[:4]...), 3, 0, 0, 0)}
	for _, b := range bad {
		if _, err := ParseSDR(b); !errors.Is(err, ErrBadSDR) {
			t.Errorf("ParseSDR(% x) = %v, want ErrBadSDR", b, err)
		}
	}
	long := append([]byte{}, qemuWatchdogSDR...)
	long[31] = 0xdf // name length 31: runs past the record
	if _, err := ParseSDR(long); !errors.Is(err, ErrBadSDR) {
		t.Errorf("ParseSDR(name past end) = %v, want ErrBadSDR", err)
	}
}

func FuzzParseSDR(f *testing.F) {
	f.Add(qemuWatchdogSDR)
	f.Add([]byte{0, 0, 0x51, 0x01, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseSDR(b)
	})
}
