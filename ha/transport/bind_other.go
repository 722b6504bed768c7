//go:build !linux

package transport

import (
	"fmt"
	"runtime"
)

func sockopts(fd uintptr, iface string, broadcast bool, self uint8, dsts [][4]byte) error {
	if iface == "" && !broadcast && len(dsts) == 0 {
		return nil
	}
	return fmt.Errorf("transport: interface binding, broadcast paths and destination filters not implemented on %s", runtime.GOOS)
}
