package hal

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Hardware is everything the HAL gives a blade.
type Hardware struct {
	Mode     string // "blade" or "process"
	Identity Identity
	Ports    *Ports
	Watchdog *Watchdog
	BMC      *BMC
	HotSwap  *HotSwap
}

// Close releases the devices. The watchdog is not closed: a blade whose firmware stops must
// still be reset by it.
func (h *Hardware) Close() error {
	var errs []error
	if h.Ports != nil {
		errs = append(errs, h.Ports.Close())
	}
	if h.BMC != nil {
		errs = append(errs, h.BMC.Close())
	}
	return errors.Join(errs...)
}

// BladeConfig configures the blade backend.
type BladeConfig struct {
	Role        string
	Cmdline     string // the kernel command line; read from /proc/cmdline when empty
	Watchdog    string // device node; /dev/watchdog when empty
	IPMI        string // device node; /dev/ipmi0 when empty
	SysClassNet string // /sys/class/net when empty
	Now         time.Time
}

// OpenBlade opens the hardware of a real or QEMU blade. It never fails: problems (malformed
// identity, unnamed NICs) are returned as warnings for the console and log, and the blade
// runs with safe defaults.
func OpenBlade(cfg BladeConfig) (*Hardware, []error) {
	var warns []error
	if cfg.Cmdline == "" {
		b, err := os.ReadFile("/proc/cmdline")
		if err != nil {
			warns = append(warns, fmt.Errorf("hal: read kernel command line: %w", err))
		}
		cfg.Cmdline = strings.TrimSpace(string(b))
	}
	cfg.Watchdog = orDefault(cfg.Watchdog, "/dev/watchdog")
	cfg.IPMI = orDefault(cfg.IPMI, "/dev/ipmi0")
	cfg.SysClassNet = orDefault(cfg.SysClassNet, "/sys/class/net")
	if cfg.Now.IsZero() {
		cfg.Now = time.Now()
	}
	id, idErrs := IdentityFromCmdline(cfg.Cmdline, cfg.Role)
	warns = append(warns, idErrs...)
	hw := &Hardware{Mode: "blade", Identity: id, Watchdog: openWatchdog(cfg.Watchdog), BMC: openBMC(cfg.IPMI), HotSwap: NewHotSwap(cfg.Now)}
	// The hub's backplane bridge is a port too: the HA core and the management plane use it.
	ports, err := openPorts(func(name string) bool { return !onWiring(name, id.IsHub()) && name != "br0" })
	if err != nil {
		warns = append(warns, err)
	} else {
		hw.Ports = ports
		warns = append(warns, ports.nameByWiring(cfg.SysClassNet, id.IsHub())...)
	}
	return hw, warns
}

func onWiring(name string, hub bool) bool {
	_, err := PCIForPort(name, hub)
	return err == nil
}

// ProcessConfig configures the process backend.
type ProcessConfig struct {
	Role   string
	Shelf  int
	Slot   int
	Serial string
	Now    time.Time
}

// OpenProcess opens the process backend: identity from the configuration (flags), ports are
// the links of the current network namespace, no watchdog, no IPMI controller.
func OpenProcess(cfg ProcessConfig) (*Hardware, error) {
	if cfg.Shelf < 1 || cfg.Shelf > MaxShelf {
		return nil, fmt.Errorf("hal: shelf %d out of range 1..%d", cfg.Shelf, MaxShelf)
	}
	if cfg.Slot < MinSlot || cfg.Slot > MaxSlot {
		return nil, fmt.Errorf("hal: slot %d out of range %d..%d", cfg.Slot, MinSlot, MaxSlot)
	}
	if cfg.Now.IsZero() {
		cfg.Now = time.Now()
	}
	id := Identity{Shelf: cfg.Shelf, Slot: cfg.Slot, Role: cfg.Role, Serial: sanitizeSerial(cfg.Serial), Source: "flags"}
	if id.Serial == "" {
		id.Serial = defaultSerial(id)
	}
	ports, err := openPorts(func(string) bool { return false })
	if err != nil {
		return nil, err
	}
	return &Hardware{Mode: "process", Identity: id, Ports: ports,
		Watchdog: absentWatchdog("process mode: no hardware watchdog"),
		BMC:      absentBMC("process mode: no IPMI controller"),
		HotSwap:  NewHotSwap(cfg.Now)}, nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
