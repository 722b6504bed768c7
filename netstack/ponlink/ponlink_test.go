package ponlink

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func eth(n int) []byte {
	b := make([]byte, n)
	copy(b, []byte{0x01, 0x80, 0xc2, 0x00, 0x00, 0x01, 0x02, 0, 0, 0, 0, 1, 0x88, 0x08})
	for i := 14; i < n; i++ {
		b[i] = byte(i)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	for _, f := range []Frame{
		{LLID: 0x0101, Payload: eth(60)},
		{Mode: true, LLID: BroadcastLLID, Payload: eth(64)},
		{LLID: 0, HasTimestamp: true, Timestamp: 0xdeadbeef, Payload: eth(MinFrame)},
		{LLID: MaxLLID, HasTimestamp: true, Payload: eth(MaxFrame)},
	} {
		b, err := f.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary(%+v) = %v", f.LLID, err)
		}
		if len(b) != HeaderLen+len(f.Payload) {
			t.Errorf("len = %d, want %d", len(b), HeaderLen+len(f.Payload))
		}
		var g Frame
		if err := g.UnmarshalBinary(b); err != nil {
			t.Fatalf("UnmarshalBinary() = %v", err)
		}
		if g.Mode != f.Mode || g.LLID != f.LLID || g.HasTimestamp != f.HasTimestamp || g.Timestamp != f.Timestamp || !bytes.Equal(g.Payload, f.Payload) {
			t.Errorf("round trip: got %+v, want %+v", g, f)
		}
	}
}

func TestWireLayout(t *testing.T) {
	f := Frame{Mode: true, LLID: 0x1234, HasTimestamp: true, Timestamp: 0x01020304, Payload: eth(14)}
	b, err := f.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0x50, 0x4c, 1, 1, 0x92, 0x34, 0, 0, 1, 2, 3, 4}
	if !bytes.Equal(b[:HeaderLen], want) {
		t.Errorf("header = % x, want % x", b[:HeaderLen], want)
	}
}

func TestBadInput(t *testing.T) {
	good, _ := (&Frame{LLID: 1, Payload: eth(60)}).MarshalBinary()
	mod := func(i int, v byte) []byte {
		b := bytes.Clone(good)
		b[i] = v
		return b
	}
	for _, tt := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"short header", good[:11], ErrTruncated},
		{"runt frame", good[:HeaderLen+13], ErrFrameSize},
		{"giant frame", append(bytes.Clone(good), make([]byte, MaxFrame)...), ErrFrameSize},
		{"magic", mod(0, 0x33), ErrMagic},
		{"version", mod(2, 2), ErrVersion},
		{"flags", mod(3, 0x80), ErrReserved},
		{"reserved", mod(7, 1), ErrReserved},
		{"timestamp without T", mod(11, 1), ErrReserved},
		{"an IPv6 frame", eth(80), ErrMagic},
	} {
		var f Frame
		if err := f.UnmarshalBinary(tt.b); !errors.Is(err, tt.want) {
			t.Errorf("%s: UnmarshalBinary() = %v, want %v", tt.name, err, tt.want)
		}
	}
	for _, f := range []Frame{{LLID: 0x8000, Payload: eth(60)}, {LLID: 1, Payload: eth(13)}} {
		if _, err := f.MarshalBinary(); err == nil {
			t.Errorf("MarshalBinary(LLID %#x, %d bytes) = nil, want error", f.LLID, len(f.Payload))
		}
	}
}

func FuzzUnmarshal(f *testing.F) {
	for _, fr := range []Frame{{LLID: 1, Payload: eth(60)}, {Mode: true, LLID: BroadcastLLID, HasTimestamp: true, Timestamp: 7, Payload: eth(14)}} {
		b, _ := fr.MarshalBinary()
		f.Add(b)
	}
	f.Add([]byte{0x50, 0x4c, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add(eth(64))
	f.Fuzz(func(t *testing.T, b []byte) {
		var fr Frame
		if err := fr.UnmarshalBinary(b); err != nil {
			return
		}
		// Whatever decodes re-encodes to the same bytes.
		out, err := fr.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary of a decoded frame = %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("re-encoded % x, want % x", out, b)
		}
	})
}

func TestConnSocketpair(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_DGRAM, 0)
	if err != nil {
		t.Skipf("socketpair: %v", err)
	}
	a, b := fileConn(t, fds[0]), fileConn(t, fds[1])
	ca, cb := NewConn(a, nil), NewConn(b, nil)
	t.Cleanup(func() { ca.Close(); cb.Close() })
	// A stray datagram is counted and skipped.
	if _, err := a.Write(eth(60)); err != nil {
		t.Fatal(err)
	}
	want := Frame{LLID: 7, HasTimestamp: true, Timestamp: 99, Payload: eth(100)}
	if err := ca.WriteFrame(&want); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, MaxDatagram)
	got, err := cb.ReadFrame(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got.LLID != 7 || got.Timestamp != 99 || !bytes.Equal(got.Payload, want.Payload) {
		t.Errorf("ReadFrame() = %+v, want %+v", got, want)
	}
	if n := cb.RxErrors.Load(); n != 1 {
		t.Errorf("RxErrors = %d, want 1", n)
	}
}

func TestConnListen(t *testing.T) {
	dir := t.TempDir()
	pa, pb := filepath.Join(dir, "a.sock"), filepath.Join(dir, "b.sock")
	a, err := Listen(pa, pb)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	b, err := Listen(pb, pa)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := b.WriteFrame(&Frame{LLID: 3, Payload: eth(60)}); err != nil {
		t.Fatal(err)
	}
	got, err := a.ReadFrame(make([]byte, MaxDatagram))
	if err != nil || got.LLID != 3 {
		t.Fatalf("ReadFrame() = %+v, %v, want LLID 3", got, err)
	}
}

func fileConn(t *testing.T, fd int) *net.UnixConn {
	t.Helper()
	f := os.NewFile(uintptr(fd), "socketpair")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	return c.(*net.UnixConn)
}
