//go:build !linux

package transport

import (
	"fmt"
	"runtime"
)

func sockopts(fd uintptr, iface string, broadcast bool, self uint8) error {
	if iface == "" && !broadcast {
		return nil
	}
	return fmt.Errorf("transport: interface binding and broadcast paths not implemented on %s", runtime.GOOS)
}
