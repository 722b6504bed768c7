package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/cgoa/cgoa/blades/blade"
	"github.com/cgoa/cgoa/hal"
)

// mounts are the file systems PID 1 provides before anything else runs.
var mounts = []struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
}{
	{"proc", "/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"sysfs", "/sys", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755"},
	{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "gid=5,mode=0620,ptmxmode=0666"},
	{"tmpfs", "/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755,size=16m"},
	{"tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777,size=32m"},
}

// early prints to the kernel console before the serial console is up.
func early(format string, args ...any) {
	fmt.Fprintf(os.Stdout, "cgoa: "+format+"\n", args...)
}

// bladeMain is PID 1. It never returns.
func bladeMain() {
	log := blade.NewLog(1024, nil)
	if n, set := bladeProcs(runtime.NumCPU(), os.Getenv("GOMAXPROCS")); set {
		runtime.GOMAXPROCS(n)
		log.Printf("go: %d processors on %d CPU (a goroutine the network wakes need not wait for a busy one)", n, runtime.NumCPU())
	}
	var warns []error
	for _, m := range mounts {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			warns = append(warns, fmt.Errorf("mkdir %s: %w", m.target, err))
			continue
		}
		if err := unix.Mount(m.source, m.target, m.fstype, m.flags, m.data); err != nil && !errors.Is(err, unix.EBUSY) {
			warns = append(warns, fmt.Errorf("mount %s on %s: %w", m.fstype, m.target, err))
		}
	}
	go reapOrphans(log)

	var uts unix.Utsname
	_ = unix.Uname(&uts)
	release := unix.ByteSliceToString(uts.Release[:])
	t0 := time.Now()
	loaded, errs := hal.LoadModules(filepath.Join("/lib/modules", release))
	warns = append(warns, errs...)
	log.Printf("kernel %s: loaded %d modules in %v: %s", release, len(loaded), time.Since(t0).Round(time.Millisecond), strings.Join(loaded, " "))

	hw, herrs := hal.OpenBlade(hal.BladeConfig{Role: role.Name})
	warns = append(warns, herrs...)
	id := hw.Identity
	if err := unix.Sethostname([]byte(id.Hostname())); err != nil {
		warns = append(warns, fmt.Errorf("sethostname: %w", err))
	}
	// From here on the serial console belongs to the operator: kernel messages go to the log
	// buffer only (console_loglevel 1 = emergencies).
	if err := os.WriteFile("/proc/sys/kernel/printk", []byte("1 4 1 7"), 0o644); err != nil {
		warns = append(warns, fmt.Errorf("quiet kernel console: %w", err))
	}
	for _, w := range warns {
		log.Errorf("%v", w)
		early("warning: %v", w)
	}
	wdt := watchdogTimeout(log)
	hac, err := haConfig(id, haFromCmdline())
	if err != nil {
		log.Errorf("ha: %v; HA not started", err)
		early("warning: ha: %v; HA not started", err)
	} else if hac == nil {
		log.Printf("ha: no shelf key on the kernel command line (cgoa.key=): HA not started")
	}
	b := blade.New(blade.Config{Role: role, HW: hw, Build: buildInfo(), Log: log, WatchdogTimeout: wdt, HA: hac,
		Reboot: func(poweroff bool) error {
			unix.Sync()
			cmd := unix.LINUX_REBOOT_CMD_RESTART
			if poweroff {
				cmd = unix.LINUX_REBOOT_CMD_POWER_OFF
			}
			return unix.Reboot(cmd)
		}})
	ctx := context.Background()
	go serveConsoleForever(ctx, b, openSerial)
	startUpdate(ctx, b, "/dev/vda", craftListener(b), func() bool { return b.Healthy() && (hac == nil || b.HAJoined()) })
	b.Run(ctx)
	// Run only returns when its context ends, which it never does for PID 1; if it ever did,
	// the console must keep serving, so PID 1 waits forever instead of exiting (which would
	// panic the kernel).
	select {}
}

// The craft port is a QEMU user-mode NIC: the blade takes slirp's guest address and serves
// image updates there only, never on the backplane.
const (
	craftAddr   = "10.0.2.15/24"
	craftListen = "10.0.2.15:7070"
)

func craftListener(b *blade.Blade) func() (net.Listener, error) {
	if _, err := b.HW.Ports.Get("craft0"); err != nil {
		return nil
	}
	return func() (net.Listener, error) {
		if err := b.HW.Ports.AddAddress("craft0", craftAddr); err != nil {
			return nil, err
		}
		return net.Listen("tcp", craftListen)
	}
}

// haFromCmdline reads cgoa.shelfmap=, cgoa.key= and cgoa.ha= (timers; default 50msx4, loose
// enough for TCG emulation) from the kernel command line.
func haFromCmdline() haSettings {
	s := haSettings{timers: "50msx4"}
	b, _ := os.ReadFile("/proc/cmdline")
	for _, f := range strings.Fields(string(b)) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "cgoa.shelfmap":
			s.shelfMap = v
		case "cgoa.key":
			s.key = v
		case "cgoa.ha":
			s.timers = v
		}
	}
	return s
}

// watchdogTimeout reads cgoa.wdt=SECONDS (2..60) from the kernel command line; default 10 s.
func watchdogTimeout(log *blade.Log) time.Duration {
	b, _ := os.ReadFile("/proc/cmdline")
	for _, f := range strings.Fields(string(b)) {
		if v, ok := strings.CutPrefix(f, "cgoa.wdt="); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 2 || n > 60 {
				log.Errorf("cgoa.wdt=%q: want whole seconds 2..60; using 10", v)
				break
			}
			return time.Duration(n) * time.Second
		}
	}
	return 10 * time.Second
}

// openSerial opens ttyS0 in raw mode: the console's line editor does echo and editing.
func openSerial() (io.ReadWriteCloser, error) {
	f, err := os.OpenFile("/dev/ttyS0", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	if _, err := term.MakeRaw(int(f.Fd())); err != nil {
		f.Close()
		return nil, fmt.Errorf("ttyS0 raw mode: %w", err)
	}
	return f, nil
}

// reapOrphans waits for every child that PID 1 inherits, so none stays a zombie.
func reapOrphans(log *blade.Log) {
	sig := make(chan os.Signal, 8)
	signal.Notify(sig, unix.SIGCHLD)
	for range sig {
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
			log.Printf("reaped pid %d (status %d)", pid, ws.ExitStatus())
		}
	}
}
