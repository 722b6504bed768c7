package mgmt

import (
	"encoding/binary"
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// setTimestamps asks the kernel to hand each datagram's receive time to uc's reads
// (SO_TIMESTAMPNS, a control message).
func setTimestamps(uc *net.UDPConn) error {
	rc, err := uc.SyscallConn()
	if err != nil {
		return fmt.Errorf("receive timestamps: %w", err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	}); err != nil {
		return fmt.Errorf("receive timestamps: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("receive timestamps: SO_TIMESTAMPNS: %w", serr)
	}
	return nil
}

// rxTime is the receive time in a read's control messages (zero if they carry none or do
// not parse).
func rxTime(oob []byte) time.Time {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Time{}
	}
	for _, m := range msgs {
		// A struct timespec of two 64-bit words on the 64-bit blades; another size is
		// left unread.
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) == 16 {
			sec, nsec := binary.NativeEndian.Uint64(m.Data), binary.NativeEndian.Uint64(m.Data[8:])
			return time.Unix(int64(sec), int64(nsec))
		}
	}
	return time.Time{}
}
