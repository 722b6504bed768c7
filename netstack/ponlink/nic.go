package ponlink

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"
)

// Link is either end of an emulated PON link: a unixgram socket on the host (Conn) or the
// blade's PON NIC (NIC).
type Link interface {
	WriteFrame(f *Frame) error
	ReadFrame(buf []byte) (Frame, error)
	Close() error
}

var (
	_ Link = (*Conn)(nil)
	_ Link = (*NIC)(nil)
)

// NIC is the blade side of an emulated PON link: the PON port's NIC, read and written whole
// through a raw packet socket in promiscuous mode, since QEMU hands the guest each datagram
// as one "Ethernet frame" whose first bytes are the ponlink header.
type NIC struct {
	c   *packet.Conn
	ifi *net.Interface
	// RxErrors counts frames that were not ponlink datagrams (dropped).
	RxErrors atomic.Uint64
	drops    atomic.Uint64
}

// nicReadBuffer is the PON NIC socket's receive buffer, bytes.
const nicReadBuffer = 4 << 20

// Drops is the number of frames the kernel dropped because the socket's
// receive buffer was full, since the NIC was opened.
func (n *NIC) Drops() uint64 {
	if st, err := n.c.Stats(); err == nil {
		// PACKET_STATISTICS resets on each read.
		n.drops.Add(uint64(st.Drops))
	}
	return n.drops.Load()
}

// OpenNIC opens the PON NIC named ifname. It turns IPv6 off on it first, so the kernel does
// not put its own neighbour discovery on the PON, and brings it up.
func OpenNIC(ifname string) (*NIC, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("ponlink: %w", err)
	}
	_ = os.WriteFile(filepath.Join("/proc/sys/net/ipv6/conf", ifname, "disable_ipv6"), []byte("1"), 0o644)
	c, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_ALL, nil)
	if err != nil {
		return nil, fmt.Errorf("ponlink: %s: %w", ifname, err)
	}
	// Without this the socket would read back every frame it sends.
	if rc, err := c.SyscallConn(); err == nil {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
			// ONUs' upstream bursts arrive back to back: room for a
			// few thousand frames while the OLT's goroutine catches up
			// (SO_RCVBUFFORCE as root, else what rmem_max allows).
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, nicReadBuffer) != nil {
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, nicReadBuffer)
			}
		}); err != nil || serr != nil {
			c.Close()
			return nil, fmt.Errorf("ponlink: %s: ignore outgoing: %v %v", ifname, err, serr)
		}
	}
	if err := c.SetPromiscuous(true); err != nil {
		c.Close()
		return nil, fmt.Errorf("ponlink: %s: promiscuous: %w", ifname, err)
	}
	return &NIC{c: c, ifi: ifi}, nil
}

// WriteFrame sends one frame on the PON.
func (n *NIC) WriteFrame(f *Frame) error {
	b, err := f.MarshalBinary()
	if err != nil {
		return err
	}
	// The destination in the socket address is not looked at for a raw socket's frame body,
	// but sockaddr_ll needs one.
	if _, err := n.c.WriteTo(b, &packet.Addr{HardwareAddr: b[:6]}); err != nil {
		return fmt.Errorf("ponlink: %s: send LLID %#x: %w", n.ifi.Name, f.LLID, err)
	}
	return nil
}

// ReadFrame reads the next ponlink frame into buf; see Conn.ReadFrame.
func (n *NIC) ReadFrame(buf []byte) (Frame, error) {
	for {
		k, _, err := n.c.ReadFrom(buf)
		if err != nil {
			return Frame{}, fmt.Errorf("ponlink: %s: read: %w", n.ifi.Name, err)
		}
		var f Frame
		if err := f.UnmarshalBinary(buf[:k]); err != nil {
			n.RxErrors.Add(1)
			continue
		}
		return f, nil
	}
}

// Close closes the socket.
func (n *NIC) Close() error { return n.c.Close() }
