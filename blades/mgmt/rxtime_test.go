package mgmt

import (
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestRxTime: a datagram read with SO_TIMESTAMPNS on carries the kernel's receive time,
// between the send and the read.
func TestRxTime(t *testing.T) {
	uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	if err := setTimestamps(uc); err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp4", nil, uc.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sent := time.Now()
	if _, err := c.Write([]byte("probe")); err != nil {
		t.Fatal(err)
	}
	buf, oob := make([]byte, 64), make([]byte, 128)
	uc.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, n, _, _, err := uc.ReadMsgUDP(buf, oob)
	if err != nil {
		t.Fatal(err)
	}
	read := time.Now()
	got := rxTime(oob[:n])
	if got.Before(sent.Add(-time.Millisecond)) || got.After(read) {
		t.Errorf("rxTime = %v, want between the send %v and the read %v", got, sent, read)
	}
	if got := rxTime(nil); !got.IsZero() {
		t.Errorf("rxTime(no control messages) = %v, want zero", got)
	}
	// Another control message, or a timestamp of the wrong size, is not a receive time.
	other := unix.UnixRights(3)
	if got := rxTime(other); !got.IsZero() {
		t.Errorf("rxTime(SCM_RIGHTS) = %v, want zero", got)
	}
}

func TestFirstProbe(t *testing.T) {
	began := time.Unix(100, 0)
	got := firstProbe(began, began.Add(12*time.Millisecond), began.Add(15*time.Millisecond), began.Add(15500*time.Microsecond), began.Add(16*time.Millisecond))
	if want := "in the kernel +12ms, read +15ms, lease checked +16ms, answered +16ms"; got != want {
		t.Errorf("firstProbe = %q, want %q", got, want)
	}
	got = firstProbe(began, time.Time{}, began.Add(15*time.Millisecond), began.Add(15*time.Millisecond), began.Add(16*time.Millisecond))
	if want := "in the kernel ?, read +15ms, lease checked +15ms, answered +16ms"; got != want {
		t.Errorf("firstProbe(no kernel time) = %q, want %q", got, want)
	}
}

// FuzzRxTime: control messages are bytes from the kernel; nothing in them crashes the
// responder.
func FuzzRxTime(f *testing.F) {
	f.Add(unix.UnixRights(3))
	f.Add([]byte{})
	f.Add(make([]byte, 32))
	f.Fuzz(func(t *testing.T, b []byte) {
		rxTime(b)
	})
}
