package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/cgoa/cgoa/blades/blade"
	"github.com/cgoa/cgoa/hal"
	"golang.org/x/term"
)

// processMain runs the blade as an ordinary process. It returns the exit status.
func processMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	pf, err := parseProcessFlags(args, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "firmware: %v\n", err)
		return 2
	}
	hw, err := hal.OpenProcess(hal.ProcessConfig{Role: role.Name, Shelf: pf.shelf, Slot: pf.slot, Serial: pf.serial})
	if err != nil {
		fmt.Fprintf(stderr, "firmware: %v\n", err)
		return 2
	}
	defer hw.Close()
	mirror := io.Writer(stderr)
	if pf.state != "" {
		if err := os.MkdirAll(pf.state, 0o755); err != nil {
			fmt.Fprintf(stderr, "firmware: state directory: %v\n", err)
			return 1
		}
		f, err := os.OpenFile(filepath.Join(pf.state, "firmware.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			fmt.Fprintf(stderr, "firmware: %v\n", err)
			return 1
		}
		defer f.Close()
		mirror = f
	}
	hac, err := haConfig(hw.Identity, pf.ha)
	if err != nil {
		fmt.Fprintf(stderr, "firmware: %v\n", err)
		return 2
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	exit := make(chan int, 1)
	log := blade.NewLog(1024, mirror)
	b := blade.New(blade.Config{Role: role, HW: hw, Build: buildInfo(), Log: log, WatchdogTimeout: pf.wdt, HA: hac,
		Reboot: func(poweroff bool) error {
			// A process has no machine to restart: poweroff exits 0, reboot exits 3 so the
			// test harness that started it can start it again.
			if poweroff {
				exit <- 0
			} else {
				exit <- 3
			}
			cancel()
			return nil
		}})
	b.Log.Printf("process mode: shelf %d slot %d role %s", pf.shelf, pf.slot, role.Name)
	switch {
	case pf.console == "stdio":
		go func() {
			serveStdio(b, stdin, stdout)
			b.Log.Printf("console: stdin closed")
			exit <- 0
			cancel()
		}()
	default:
		path := strings.TrimPrefix(pf.console, "unix:")
		ln, err := listenUnix(path)
		if err != nil {
			fmt.Fprintf(stderr, "firmware: console: %v\n", err)
			return 1
		}
		defer os.Remove(path)
		defer ln.Close()
		go func() {
			<-ctx.Done()
			ln.Close()
		}()
		go serveUnix(b, ln)
	}
	if pf.flash != "" {
		var listen func() (net.Listener, error)
		if pf.update != "" {
			listen = func() (net.Listener, error) { return net.Listen("tcp", pf.update) }
		}
		startUpdate(ctx, b, pf.flash, listen, func() bool { return b.Healthy() && (hac == nil || b.HAJoined()) })
	}
	b.Run(ctx)
	select {
	case code := <-exit:
		return code
	default:
		return 0
	}
}

// serveStdio runs one console session on stdin/stdout, in raw mode when stdin is a terminal.
func serveStdio(b *blade.Blade, stdin io.Reader, stdout io.Writer) {
	<-b.Ready()
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		if old, err := term.MakeRaw(int(f.Fd())); err == nil {
			defer term.Restore(int(f.Fd()), old)
		}
	}
	if err := b.Console.Serve(struct {
		io.Reader
		io.Writer
	}{stdin, stdout}, b.Prompt(), b.Banner()); err != nil {
		b.Log.Errorf("console: %v", err)
	}
}

func listenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	// A socket left by a killed predecessor would make listen fail; it is ours to replace.
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		os.Remove(path)
	}
	return net.Listen("unix", path)
}

// serveUnix gives every connection its own console session.
func serveUnix(b *blade.Blade, ln net.Listener) {
	<-b.Ready()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			if err := b.Console.Serve(c, b.Prompt(), b.Banner()); err != nil {
				b.Log.Errorf("console session: %v", err)
			}
		}()
	}
}
