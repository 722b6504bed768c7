// Command firmware is the one binary that runs every CGOA blade. The blade role is chosen at
// build time by exactly one tag: mgmt, switch or epon.
//
// As PID 1 (blade mode) it is the blade's init: it mounts the kernel file systems, loads the
// kernel modules the image carries, names the ports from the backplane wiring, arms the
// watchdog and serves the serial console on ttyS0. It never exits: a failing component is
// recovered and restarted, and only reboot/poweroff end the blade.
//
// As an ordinary process (process mode, for tests in network namespaces) it takes its identity
// from flags:
//
//	firmware -shelf 1 -slot 3 -console unix:/run/cgoa/s3.console -state /tmp/s3
//
// Under another name (argv[0]) it runs one of the role's helpers, e.g. /sbin/bridge-stp.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/cgoa/cgoa/blades/blade"
	"github.com/cgoa/cgoa/blades/shelf"
)

// Set at link time by the Makefile (-X main.version=... and so on).
var (
	version  = "0.1.0-dev"
	revision = ""
	built    = ""
)

func buildInfo() blade.BuildInfo {
	bi := blade.BuildInfo{Version: version, Revision: revision, Built: built}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			switch {
			case s.Key == "vcs.revision" && bi.Revision == "":
				bi.Revision = s.Value
			case s.Key == "vcs.time" && bi.Built == "":
				bi.Built = s.Value
			}
		}
	}
	if bi.Revision == "" {
		bi.Revision = "unknown"
	}
	if bi.Built == "" {
		bi.Built = "unknown"
	}
	return bi
}

func main() {
	if h, ok := role.Helpers[filepath.Base(os.Args[0])]; ok {
		os.Exit(h(os.Args[1:], os.Stderr))
	}
	if os.Getpid() == 1 {
		bladeMain() // never returns
	}
	os.Exit(processMain(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

const shelfDefault = shelf.DefaultMap

// processFlags are process mode's configuration.
type processFlags struct {
	shelf, slot int
	serial      string
	console     string
	state       string
	flash       string
	update      string
	ha          haSettings
	wdt         time.Duration
}

func parseProcessFlags(args []string, stderr io.Writer) (processFlags, error) {
	var pf processFlags
	fs := flag.NewFlagSet("firmware", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&pf.shelf, "shelf", 1, "shelf number (1..255)")
	fs.IntVar(&pf.slot, "slot", 0, "slot number (1..16), required")
	fs.StringVar(&pf.serial, "serial", "", "serial number (default: derived from shelf and slot)")
	fs.StringVar(&pf.console, "console", "stdio", "console: stdio, or unix:PATH to serve it on a unix socket")
	fs.StringVar(&pf.state, "state", "", "directory for the blade's persistent state (created if missing)")
	fs.StringVar(&pf.flash, "flash", "", "flash disk file (boot-control block and banks A/B); none when empty")
	fs.StringVar(&pf.update, "update", "", "address for the image update service, e.g. 127.0.0.1:7070 (needs -flash)")
	fs.StringVar(&pf.ha.shelfMap, "shelfmap", "", "shelf map SLOT:ROLE,... (default "+shelfDefault+")")
	fs.StringVar(&pf.ha.key, "shelfkey", "", "shelf key for HA traffic, hex (at least 16 bytes); HA is off without one")
	fs.StringVar(&pf.ha.timers, "ha-timers", "10msx3", "HA heartbeat interval and misses")
	fs.DurationVar(&pf.wdt, "watchdog", 10*time.Second, "software main-loop watchdog period reported in show hardware")
	if err := fs.Parse(args); err != nil {
		return pf, err
	}
	if fs.NArg() > 0 {
		return pf, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if pf.slot == 0 {
		return pf, fmt.Errorf("-slot is required (1..16)")
	}
	if pf.console != "stdio" && !strings.HasPrefix(pf.console, "unix:") {
		return pf, fmt.Errorf("-console %q: want stdio or unix:PATH", pf.console)
	}
	if pf.update != "" && pf.flash == "" {
		return pf, fmt.Errorf("-update needs -flash")
	}
	if pf.console == "unix:" {
		return pf, fmt.Errorf("-console unix: needs a path")
	}
	return pf, nil
}

// serveConsoleForever keeps a console session on a device or stream; when a session ends (EOF
// on a serial line, a read error) it is started again, so the blade never loses its console.
func serveConsoleForever(ctx context.Context, b *blade.Blade, open func() (io.ReadWriteCloser, error)) {
	select {
	case <-b.Ready():
	case <-ctx.Done():
		return
	}
	banner := b.Banner()
	for ctx.Err() == nil {
		rw, err := open()
		if err != nil {
			b.Log.Errorf("console: %v", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		if err := b.Console.Serve(rw, b.Prompt(), banner); err != nil {
			b.Log.Errorf("console: %v", err)
		}
		rw.Close()
		banner = ""
	}
}
