//go:build !linux

package transport

import (
	"fmt"
	"runtime"
)

func bindToDevice(fd uintptr, iface string) error {
	return fmt.Errorf("transport: binding to interface %s not implemented on %s", iface, runtime.GOOS)
}
