package ckpt

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/cgoa/cgoa/ha/transport"
)

var linkKey = transport.Key("link-test-shelf-key-0123456789ab")

// linkPair dials a Link over TCP on loopback: writer slot 1, replica 2.
func linkPair(t *testing.T, replicaKey transport.Key) (*Link, *Link, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		l   *Link
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			ch <- res{nil, err}
			return
		}
		l, err := NewLink(c, replicaKey, 2, 1, false)
		ch <- res{l, err}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewLink(c, linkKey, 1, 2, true)
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	t.Cleanup(func() { w.Close() })
	if r.l != nil {
		t.Cleanup(func() { r.l.Close() })
	}
	return w, r.l, r.err
}

// TestNodesOverLink: a writer and a replica Node over a TCP Link with
// large frames: synchronous writes are on the replica when they return,
// asynchronous writes of 64 KiB sections arrive whole and in order.
func TestNodesOverLink(t *testing.T) {
	wl, rl, err := linkPair(t, linkKey)
	if err != nil {
		t.Fatal(err)
	}
	opt := Options{Ring: 4 << 20, MaxFrame: 256 << 10, Window: 1024, AckEvery: 64}
	opt.Self, opt.Send = 1, wl.Send
	w := NewNode(opt)
	t.Cleanup(w.Close)
	opt.Self, opt.Send = 2, rl.Send
	r := NewNode(opt)
	t.Cleanup(r.Close)
	go wl.Run(w.Receive)
	go rl.Run(r.Receive)
	w.Do(func(s *Service, now time.Duration) {
		s.Promote(now)
		s.Open(now, "c", time.Minute)
		s.SetReplicas(now, []uint8{2})
	})
	r.Do(func(s *Service, _ time.Duration) { s.Follow(1) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var last uint64
	for i := range 200 {
		seq, err := w.Write(ctx, "c", "big", payload(uint64(i), 64<<10), false)
		if err != nil {
			t.Fatal(err)
		}
		last = seq
	}
	if err := w.WaitDurable(ctx, last); err != nil {
		t.Fatalf("WaitDurable(%d) = %v", last, err)
	}
	if got, err := r.Read("c", "big"); err != nil || !bytes.Equal(got, payload(199, 64<<10)) {
		t.Fatalf("replica big section after WaitDurable: %d bytes %v, want write 199 whole", len(got), err)
	}
	for i := range 50 {
		data := payload(uint64(1000+i), 1024)
		if _, err := w.Write(ctx, "c", "sync", data, true); err != nil {
			t.Fatalf("sync Write(%d) = %v", i, err)
		}
		if got, err := r.Read("c", "sync"); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("replica after sync write %d: %d bytes %v", i, len(got), err)
		}
	}
	if d := wl.Dropped() + rl.Dropped(); d != 0 {
		t.Errorf("links dropped %d messages, want 0", d)
	}
}

// TestLinkWrongKey: a replica with another key cannot read the writer's
// frames (the link fails authentication instead of applying them).
func TestLinkWrongKey(t *testing.T) {
	wl, rl, err := linkPair(t, transport.Key("some-other-shelf-key-0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	wl.Send(2, []byte("hello"))
	errc := make(chan error, 1)
	go func() { errc <- rl.Run(func(uint8, []byte) { t.Error("a frame under another key was accepted") }) }()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrLinkAuth) {
			t.Errorf("Run() = %v, want %v", err, ErrLinkAuth)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run() still running after a forged frame")
	}
}

func FuzzLinkFrame(f *testing.F) {
	m := hmac.New(sha256.New, linkKey)
	good := []byte{0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o'}
	good = appendTag(good, m, 1, good)
	f.Add(good)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var buf []byte
		msg, err := readFrame(bufio.NewReader(bytes.NewReader(b)), m, 1, &buf)
		if err == nil && (len(msg) > MaxLinkFrame || !bytes.Equal(msg, b[4:4+len(msg)])) {
			t.Fatalf("readFrame(%x) = %x", b, msg)
		}
	})
}
