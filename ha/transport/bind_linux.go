package transport

import "golang.org/x/sys/unix"

// sockopts binds the socket to iface (if set) and, for a broadcast path,
// allows broadcasting and sharing the port with the other path's socket
// (each bound to its own interface).
func sockopts(fd uintptr, iface string, broadcast bool) error {
	if broadcast {
		if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 1); err != nil {
			return err
		}
		if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return err
		}
	}
	if iface != "" {
		return unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, iface)
	}
	return nil
}
