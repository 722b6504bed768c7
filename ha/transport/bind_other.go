//go:build !linux

package transport

import (
	"fmt"
	"runtime"
)

func sockopts(fd uintptr, iface string, broadcast bool) error {
	return fmt.Errorf("transport: interface binding and broadcast paths not implemented on %s", runtime.GOOS)
}
