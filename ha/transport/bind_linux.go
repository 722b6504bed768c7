package transport

import "golang.org/x/sys/unix"

func bindToDevice(fd uintptr, iface string) error {
	return unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, iface)
}
