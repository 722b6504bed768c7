package hal

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/u-root/u-root/pkg/watchdog"
	"golang.org/x/sys/unix"
)

// Watchdog is the blade's hardware watchdog. The firmware arms it once and pets it from its
// main loop only while that loop is healthy, so a hung blade is reset by the hardware.
type Watchdog struct {
	mu       sync.Mutex
	path     string
	dev      *watchdog.Watchdog
	identity string
	timeout  time.Duration
	pets     uint64
	lastPet  time.Time
	lastErr  error
	reason   string // why it is not present
}

// WatchdogStatus is what `show hardware` reports of the watchdog.
type WatchdogStatus struct {
	Present   bool    `json:"present"`
	Device    string  `json:"device,omitempty"`
	Identity  string  `json:"identity,omitempty"`
	Armed     bool    `json:"armed"`
	TimeoutS  float64 `json:"timeout_s,omitempty"`
	Pets      uint64  `json:"pets"`
	LastPetMs int64   `json:"last_pet_ms_ago,omitempty"`
	Error     string  `json:"error,omitempty"`
	Reason    string  `json:"reason,omitempty"`
}

// absentWatchdog is the process backend's watchdog: reports not present, does nothing.
func absentWatchdog(reason string) *Watchdog { return &Watchdog{reason: reason} }

// openWatchdog checks that path exists; it is opened (which starts the timer) only by Arm.
func openWatchdog(path string) *Watchdog {
	if _, err := os.Stat(path); err != nil {
		return &Watchdog{reason: fmt.Sprintf("%s: %v", path, errors.Unwrap(err))}
	}
	return &Watchdog{path: path}
}

// Present reports whether the blade has a watchdog device.
func (w *Watchdog) Present() bool { return w.path != "" }

// Arm opens the device, which starts the timer, and sets the timeout. From then on Pet must be
// called well within the timeout or the hardware resets the blade.
func (w *Watchdog) Arm(timeout time.Duration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.path == "" {
		return fmt.Errorf("hal: watchdog: %w", ErrNotPresent)
	}
	if w.dev == nil {
		d, err := watchdog.Open(w.path)
		if err != nil {
			w.lastErr = err
			return fmt.Errorf("hal: watchdog: open %s: %w", w.path, err)
		}
		w.dev = d
		if info, err := d.Support(); err == nil {
			w.identity = cString(info.Identity[:])
		}
	}
	// u-root v0.16.0's SetTimeout hands the kernel a pointer to the time.Duration (int64
	// nanoseconds) where WDIOC_SETTIMEOUT reads an int of seconds, so it always fails with
	// EINVAL; the ioctl is made here with the right type.
	secs := int(timeout / time.Second)
	if secs < 1 {
		secs = 1
	}
	if err := unix.IoctlSetPointerInt(int(w.dev.File.Fd()), unix.WDIOC_SETTIMEOUT, secs); err != nil {
		w.lastErr = err
		return fmt.Errorf("hal: watchdog: set timeout %v: %w", timeout, err)
	}
	if t, err := w.dev.Timeout(); err == nil {
		w.timeout = t
	} else {
		w.timeout = timeout
	}
	w.petLocked(time.Now())
	return w.lastErr
}

// Pet restarts the timer. now is the caller's clock reading, kept for `show hardware`.
func (w *Watchdog) Pet(now time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dev == nil {
		return fmt.Errorf("hal: watchdog: not armed")
	}
	return w.petLocked(now)
}

func (w *Watchdog) petLocked(now time.Time) error {
	if err := w.dev.KeepAlive(); err != nil {
		w.lastErr = fmt.Errorf("hal: watchdog: keepalive: %w", err)
		return w.lastErr
	}
	w.pets++
	w.lastPet = now
	w.lastErr = nil
	return nil
}

// Status reports the watchdog's state.
func (w *Watchdog) Status(now time.Time) WatchdogStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := WatchdogStatus{Present: w.path != "", Device: w.path, Identity: w.identity, Armed: w.dev != nil,
		TimeoutS: w.timeout.Seconds(), Pets: w.pets, Reason: w.reason}
	if !s.Present && s.Reason == "" {
		s.Reason = ErrNotPresent.Error()
	}
	if !w.lastPet.IsZero() {
		s.LastPetMs = now.Sub(w.lastPet).Milliseconds()
	}
	if w.lastErr != nil {
		s.Error = w.lastErr.Error()
	}
	return s
}

func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
