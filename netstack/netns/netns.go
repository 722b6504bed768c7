// Package netns runs code inside a Linux network namespace: the blade's
// shells that open sockets in a namespace they were given (a test's, or a
// role's), and the tests and emulator tools that make namespaces with
// `ip netns add`.
//
// Linux keeps the network namespace per thread, so Do enters it on a
// dedicated goroutine locked to its OS thread, runs f there (sockets f
// opens belong to the namespace for their whole life), and switches the
// thread back. A thread that cannot be switched back stays locked, and the
// runtime discards it when the goroutine ends: it never runs other code in
// the wrong namespace.
package netns

import (
	"errors"
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// Named is the path of the namespace `ip netns add name` made.
func Named(name string) string { return "/run/netns/" + name }

// Do runs f on a thread in the network namespace at path ("" runs f
// here, in the caller's namespace) and returns f's error, or why the
// namespace could not be entered or left.
func Do(path string, f func() error) error {
	if path == "" {
		return f()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns: own namespace: %w", err)
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns: %s: %w", path, err)
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns: enter %s: %w", path, err)
			return
		}
		ferr := f()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("netns: leave %s: %w", path, err))
			return // still locked: the runtime discards the thread
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
