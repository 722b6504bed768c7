package farend

import (
	"bytes"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// blade is a stand-in for a QEMU dgram netdev: a bound unixgram socket.
func blade(t *testing.T, path string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func frame(n int, fill byte) []byte { return bytes.Repeat([]byte{fill}, n) }

func recv(t *testing.T, c *net.UnixConn) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, MaxFrame)
	n, _, err := c.ReadFromUnix(b)
	if err != nil {
		t.Fatalf("blade did not receive a frame: %v", err)
	}
	return b[:n]
}

// waitCounters polls until cond holds (frames cross a socket asynchronously).
func waitCounters(t *testing.T, e *Endpoint, what string, cond func(Counters) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond(e.Counters()) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: counters %+v never satisfied %s", e.Name(), e.Counters(), what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSinkCountsAndSends(t *testing.T) {
	dir := t.TempDir()
	bl := blade(t, filepath.Join(dir, "s1-uplink0.sock"))
	got := make(chan []byte, 10)
	e, err := Listen("uplink-s1", filepath.Join(dir, "host.sock"), filepath.Join(dir, "s1-uplink0.sock"), func(f []byte) {
		got <- append([]byte(nil), f...)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	host := &net.UnixAddr{Name: filepath.Join(dir, "host.sock"), Net: "unixgram"}
	for i := 0; i < 3; i++ {
		if _, err := bl.WriteToUnix(frame(60+i, byte(i)), host); err != nil {
			t.Fatal(err)
		}
	}
	bl.WriteToUnix(frame(5, 9), host) // runt
	waitCounters(t, e, "3 frames and 1 runt", func(c Counters) bool { return c.RxFrames == 3 && c.RxErrors == 1 })
	if c := e.Counters(); c.RxBytes != 60+61+62 {
		t.Errorf("RxBytes = %d, want %d", c.RxBytes, 60+61+62)
	}
	if f := <-got; !bytes.Equal(f, frame(60, 0)) {
		t.Errorf("handler got %x, want the first frame", f)
	}
	if err := e.Send(frame(64, 7)); err != nil {
		t.Fatalf("Send = %v", err)
	}
	if f := recv(t, bl); !bytes.Equal(f, frame(64, 7)) {
		t.Errorf("blade got %d bytes, want the 64-byte frame", len(f))
	}
	if err := e.Send(frame(3, 0)); !errors.Is(err, ErrFrameSize) {
		t.Errorf("Send(3 bytes) = %v, want ErrFrameSize", err)
	}
	if c := e.Counters(); c.TxFrames != 1 || c.TxBytes != 64 {
		t.Errorf("Tx counters = %+v, want 1 frame 64 bytes", c)
	}
}

func TestEndpointDown(t *testing.T) {
	dir := t.TempDir()
	bl := blade(t, filepath.Join(dir, "b.sock"))
	e, err := Listen("x", filepath.Join(dir, "h.sock"), filepath.Join(dir, "b.sock"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	e.SetUp(false)
	if err := e.Send(frame(60, 1)); !errors.Is(err, ErrDown) {
		t.Errorf("Send while down = %v, want ErrDown", err)
	}
	bl.WriteToUnix(frame(60, 1), &net.UnixAddr{Name: filepath.Join(dir, "h.sock"), Net: "unixgram"})
	waitCounters(t, e, "1 dropped", func(c Counters) bool { return c.RxDropped == 1 })
	if c := e.Counters(); c.RxFrames != 0 {
		t.Errorf("RxFrames while down = %d, want 0", c.RxFrames)
	}
	e.SetUp(true)
	if err := e.Send(frame(60, 1)); err != nil {
		t.Errorf("Send after up = %v", err)
	}
}

func TestSendToMissingBlade(t *testing.T) {
	dir := t.TempDir()
	e, err := Listen("x", filepath.Join(dir, "h.sock"), filepath.Join(dir, "gone.sock"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.Send(frame(60, 1)); err == nil {
		t.Errorf("Send to a missing blade = nil, want error")
	}
	if c := e.Counters(); c.TxErrors != 1 || c.TxFrames != 0 {
		t.Errorf("counters = %+v, want 1 tx error", c)
	}
}

func TestONUEmulatorEndpoint(t *testing.T) {
	dir := t.TempDir()
	p := func(s string) string { return filepath.Join(dir, s) }
	olt := blade(t, p("s5-pon0.sock"))
	o, err := ListenONU("onu-s5-pon0", p("onu.sock"), p("s5-pon0.sock"), ONUConfig{Slot: 5, PON: 0, N: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if o.Emulator().Len() != 3 {
		t.Fatalf("emulator has %d ONUs, want 3", o.Emulator().Len())
	}
	// A datagram that is not ponlink is counted by the emulator and dropped, not relayed.
	olt.WriteToUnix(frame(70, 0xd), &net.UnixAddr{Name: p("onu.sock"), Net: "unixgram"})
	waitCounters(t, o.PON(), "1 down", func(c Counters) bool { return c.RxFrames == 1 })
	for deadline := time.Now().Add(5 * time.Second); o.Emulator().Stats().RxErrors != 1; {
		if time.Now().After(deadline) {
			t.Fatalf("emulator stats = %+v, want 1 rx error", o.Emulator().Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	o.SetUp(false)
	if err := o.PON().Send(frame(60, 0)); !errors.Is(err, ErrDown) {
		t.Errorf("PON Send while down = %v, want ErrDown", err)
	}
	if _, err := ListenONU("x", p("x.sock"), p("y.sock"), ONUConfig{N: 33}); err == nil {
		t.Errorf("ListenONU(33 ONUs) = nil error")
	}
}
