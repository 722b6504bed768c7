package transport

import (
	"bytes"
	"errors"
	"testing"
)

var testKey = Key("0123456789abcdef-shelf-key")

func TestSealOpenRoundTrip(t *testing.T) {
	f := Frame{Header: Header{Type: TypeHeartbeat, Shelf: 7, From: 3, To: Broadcast, Epoch: 42, Seq: 9}, Payload: []byte("hello")}
	b, err := Seal(testKey, f)
	if err != nil {
		t.Fatalf("Seal() error %v", err)
	}
	if len(b) != HeaderLen+5+TagLen {
		t.Fatalf("len(Seal()) = %d, want %d", len(b), HeaderLen+5+TagLen)
	}
	g, err := Open(testKey, b)
	if err != nil {
		t.Fatalf("Open(Seal()) error %v", err)
	}
	if g.Header != f.Header || !bytes.Equal(g.Payload, f.Payload) {
		t.Fatalf("Open(Seal(f)) = %+v, want %+v", g, f)
	}
}

func TestOpenRejects(t *testing.T) {
	f := Frame{Header: Header{Type: TypeLease, Shelf: 1, From: 2, To: 3, Epoch: 1, Seq: 1}, Payload: []byte("payload")}
	good, _ := Seal(testKey, f)
	// Any single flipped bit must be rejected, whatever field it hits.
	for i := range good {
		b := append([]byte(nil), good...)
		b[i] ^= 0x10
		if _, err := Open(testKey, b); err == nil {
			t.Fatalf("Open(flip byte %d) accepted a garbled frame", i)
		}
	}
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrShort},
		{"header only", good[:HeaderLen], ErrShort},
		{"truncated tag", good[:len(good)-1], ErrShort},
		{"trailing byte", append(append([]byte(nil), good...), 0), ErrLength},
		{"bad magic", append([]byte("XX"), good[2:]...), ErrMagic},
		{"version 2", append(append([]byte(nil), good[:2]...), append([]byte{2}, good[3:]...)...), ErrVersion},
	}
	for _, tc := range tests {
		if _, err := Open(testKey, tc.b); !errors.Is(err, tc.want) {
			t.Errorf("Open(%s) = %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := Open(Key("another-shelf-key-----"), good); !errors.Is(err, ErrAuth) {
		t.Errorf("Open(other key) = %v, want %v", err, ErrAuth)
	}
	if _, err := Seal(testKey, Frame{Payload: make([]byte, MaxPayload+1)}); !errors.Is(err, ErrTooBig) {
		t.Errorf("Seal(oversized) = %v, want %v", err, ErrTooBig)
	}
}

func TestWindow(t *testing.T) {
	var w window
	steps := []struct {
		epoch, seq uint64
		want       error
	}{
		{5, 10, nil},
		{5, 10, ErrDuplicate},
		{5, 12, nil},
		{5, 11, nil},
		{5, 11, ErrDuplicate},
		{5, 12 + WindowSize, nil},
		{5, 12, ErrReplay},  // fell out of the window
		{5, 13, nil},        // inside the window, unseen
		{4, 1000, ErrStale}, // older life of the sender
		{6, 1, nil},         // restarted sender
		{6, 12 + WindowSize, nil},
		{6, 1, ErrReplay},
		{5, 2000, ErrStale},
	}
	for i, s := range steps {
		if got := w.check(s.epoch, s.seq); !errors.Is(got, s.want) && got != s.want {
			t.Fatalf("step %d: check(%d, %d) = %v, want %v", i, s.epoch, s.seq, got, s.want)
		}
	}
}

func TestEndpointCounts(t *testing.T) {
	a, _ := NewEndpoint(testKey, 1, 2, 100)
	b, _ := NewEndpoint(testKey, 1, 3, 200)
	other, _ := NewEndpoint(testKey, 9, 4, 1)
	stranger, _ := NewEndpoint(Key("not-the-shelf-key!!"), 1, 5, 1)

	f1, _ := a.Seal(TypeHeartbeat, Broadcast, []byte("x"))
	if _, err := b.Accept(0, f1); err != nil {
		t.Fatalf("Accept(path 0) = %v, want nil", err)
	}
	if _, err := b.Accept(1, f1); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("Accept(same frame, path 1) = %v, want %v", err, ErrDuplicate)
	}
	forged, _ := stranger.Seal(TypeHeartbeat, Broadcast, []byte("x"))
	if _, err := b.Accept(0, forged); !errors.Is(err, ErrAuth) {
		t.Errorf("Accept(forged) = %v, want %v", err, ErrAuth)
	}
	// A forgery reusing an accepted frame's sender and sequence number is
	// dropped as a duplicate before its tag is checked: it changes nothing.
	reused := append([]byte(nil), f1...)
	reused[len(reused)-1] ^= 0xff
	if _, err := b.Accept(0, reused); !errors.Is(err, ErrDuplicate) {
		t.Errorf("Accept(altered copy of an accepted frame) = %v, want %v", err, ErrDuplicate)
	}
	wrongShelf, _ := other.Seal(TypeHeartbeat, Broadcast, nil)
	if _, err := b.Accept(0, wrongShelf); !errors.Is(err, ErrShelf) {
		t.Errorf("Accept(other shelf) = %v, want %v", err, ErrShelf)
	}
	toOther, _ := a.Seal(TypeLease, 7, nil)
	if _, err := b.Accept(0, toOther); !errors.Is(err, ErrNotForUs) {
		t.Errorf("Accept(for slot 7) = %v, want %v", err, ErrNotForUs)
	}
	if _, err := b.Accept(0, f1[:10]); !errors.Is(err, ErrShort) {
		t.Errorf("Accept(truncated) = %v, want %v", err, ErrShort)
	}
	// a restarts with a larger epoch: accepted; the old life's frames are stale.
	a2, _ := NewEndpoint(testKey, 1, 2, 101)
	f2, _ := a2.Seal(TypeHeartbeat, Broadcast, nil)
	if _, err := b.Accept(0, f2); err != nil {
		t.Errorf("Accept(restarted sender) = %v, want nil", err)
	}
	old, _ := a.Seal(TypeHeartbeat, Broadcast, nil)
	if _, err := b.Accept(0, old); !errors.Is(err, ErrStale) {
		t.Errorf("Accept(old epoch) = %v, want %v", err, ErrStale)
	}
	c := b.Counters()
	want := Counters{Received: 2, PathRx: [Paths]uint64{3, 1}, Duplicates: 2, Short: 1, Forged: 1, Stale: 1, Misrouted: 1, NotForUs: 1}
	if c != want {
		t.Errorf("Counters() = %+v, want %+v", c, want)
	}
	if _, err := NewEndpoint(Key("short"), 1, 1, 1); err == nil {
		t.Error("NewEndpoint(short key) succeeded, want error")
	}
	if _, err := NewEndpoint(testKey, 1, 1, 0); err == nil {
		t.Error("NewEndpoint(epoch 0) succeeded, want error")
	}
}

// FuzzAccept feeds arbitrary bytes to the receive path: it must never
// panic, must reject anything not sealed with the key, and must accept a
// frame at most once.
func FuzzAccept(f *testing.F) {
	src, _ := NewEndpoint(testKey, 1, 2, 1)
	for i, p := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte{0xAA}, 300)} {
		b, _ := src.Seal(Type(i+1), Broadcast, p)
		f.Add(b)
		f.Add(b[:len(b)-3])
		f.Add(b[:HeaderLen])
	}
	f.Add([]byte("HA\x01"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		dst, _ := NewEndpoint(testKey, 1, 3, 1)
		fr, err := dst.Accept(0, b)
		if err != nil {
			if c := dst.Counters(); c.Received != 0 {
				t.Fatalf("rejected frame counted as received: %+v", c)
			}
			return
		}
		if len(fr.Payload) > MaxPayload {
			t.Fatalf("accepted payload of %d bytes", len(fr.Payload))
		}
		if _, err := dst.Accept(1, b); err == nil {
			t.Fatal("same frame accepted twice")
		}
	})
}

// FuzzOpen checks the decoder alone with a key the fuzzer can match: a
// frame that opens re-seals to the same bytes.
func FuzzOpen(f *testing.F) {
	b, _ := Seal(testKey, Frame{Header: Header{Type: 1, Shelf: 1, From: 1, To: 2, Epoch: 1, Seq: 1}, Payload: []byte("abc")})
	f.Add(b)
	f.Add(b[:20])
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := Open(testKey, b)
		if err != nil {
			return
		}
		again, err := Seal(testKey, fr)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("Seal(Open(b)) = %x, %v, want %x", again, err, b)
		}
	})
}
