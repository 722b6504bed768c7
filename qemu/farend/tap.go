package farend

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/cgoa/cgoa/netstack/netns"
)

// Tap relays frames between an Endpoint and a Linux tap device, so that a host network
// namespace (a test's "core network" with net-snmp's tools, a kernel bridge, ...) sits on
// the link the endpoint faces: every frame the blade sends on it comes out of the tap into
// the namespace's kernel, and every frame the namespace sends through the tap goes to the
// blade. The tap is made inside the namespace (by name, as `ip netns add` makes them) and
// is gone when the Tap is closed. Bring it up and address it with ip -n NS.
//
//	tap, err := farend.NewTap(up, "core0", "cgoa-core")
//	defer tap.Close()
type Tap struct {
	ep   *Endpoint
	name string
	f    *os.File

	toTap, fromTap, tapErrors atomic.Uint64

	done chan struct{}
	once sync.Once
}

// TapCounters count the relay's frames.
type TapCounters struct {
	ToTap   uint64 // frames from the blade written to the tap
	FromTap uint64 // frames from the tap sent to the blade
	Errors  uint64 // failed writes to the tap, failed sends to the blade
}

// NewTap makes tap device name in network namespace ns (a name under /run/netns; ""
// means the caller's namespace) and relays between it and ep, whose handler it replaces.
func NewTap(ep *Endpoint, name, ns string) (*Tap, error) {
	if len(name) == 0 || len(name) >= unix.IFNAMSIZ {
		return nil, fmt.Errorf("farend: tap %q: name must be 1..%d characters", name, unix.IFNAMSIZ-1)
	}
	var fd int
	err := netns.Do(nsPath(ns), func() error {
		var err error
		fd, err = openTap(name)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("farend: tap %s in %q: %w", name, ns, err)
	}
	t := &Tap{ep: ep, name: name, f: os.NewFile(uintptr(fd), "/dev/net/tun:"+name), done: make(chan struct{})}
	ep.SetHandler(t.fromBlade)
	go t.read()
	return t, nil
}

// openTap opens /dev/net/tun as a tap device without packet information, non-blocking so that
// the runtime's poller serves it and Close ends a pending read.
func openTap(name string) (int, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return -1, err
	}
	var req [unix.IFNAMSIZ + 64]byte
	copy(req[:], name)
	*(*uint16)(unsafe.Pointer(&req[unix.IFNAMSIZ])) = unix.IFF_TAP | unix.IFF_NO_PI
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNSETIFF, uintptr(unsafe.Pointer(&req[0]))); e != 0 {
		unix.Close(fd)
		return -1, fmt.Errorf("TUNSETIFF: %w", e)
	}
	return fd, nil
}

// nsPath is the path of namespace name ("" : the caller's).
func nsPath(name string) string {
	if name == "" {
		return ""
	}
	return netns.Named(name)
}

// Name is the tap device's name.
func (t *Tap) Name() string { return t.name }

func (t *Tap) fromBlade(frame []byte) {
	if _, err := t.f.Write(frame); err != nil {
		t.tapErrors.Add(1)
		return
	}
	t.toTap.Add(1)
}

func (t *Tap) read() {
	defer close(t.done)
	buf := make([]byte, MaxFrame)
	for {
		n, err := t.f.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return
			}
			// EIO while the device is down or being deleted: back off instead of spinning.
			t.tapErrors.Add(1)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if n < MinFrame {
			continue
		}
		if t.ep.Send(buf[:n]) != nil {
			t.tapErrors.Add(1)
			continue
		}
		t.fromTap.Add(1)
	}
}

// Counters returns a snapshot of the relay's counters.
func (t *Tap) Counters() TapCounters {
	return TapCounters{ToTap: t.toTap.Load(), FromTap: t.fromTap.Load(), Errors: t.tapErrors.Load()}
}

// Close stops the relay (the endpoint goes back to counting only) and deletes the device.
func (t *Tap) Close() error {
	var err error
	t.once.Do(func() {
		t.ep.SetHandler(nil)
		err = t.f.Close()
		<-t.done
	})
	return err
}
