package hal

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/cgoa/cgoa/netstack/netns"
	"github.com/cgoa/cgoa/netstack/netns/netnstest"
)

func TestChannelPeer(t *testing.T) {
	for _, c := range []struct {
		port string
		self int
		want int
		ok   bool
	}{
		{"base0", 3, 1, true}, {"base1", 7, 2, true}, {"isl0", 1, 2, true}, {"isl0", 2, 1, true},
		{"node5", 1, 5, true}, {"node16", 2, 16, true},
		{"base0", 1, 0, false}, {"isl0", 3, 0, false}, {"node5", 4, 0, false}, {"node2", 1, 0, false},
		{"node05", 1, 0, false}, {"node17", 1, 0, false}, {"uplink0", 1, 0, false}, {"pon0", 5, 0, false}, {"craft0", 3, 0, false},
	} {
		got, ok := ChannelPeer(c.port, c.self)
		if got != c.want || ok != c.ok {
			t.Errorf("ChannelPeer(%q, %d) = %d, %v, want %d, %v", c.port, c.self, got, ok, c.want, c.ok)
		}
	}
}

// TestChannelWatchInNetns: a node blade's two channels are veths in a namespace the test
// makes; taking a far end down and up is reported at once and in order, and a port that is
// admin down is not reported.
func TestChannelWatchInNetns(t *testing.T) {
	ns := netnstest.New(t, "carrier")
	ip := func(args ...string) { t.Helper(); netnstest.IP(t, ns, args...) }
	ip("link", "add", "base0", "type", "veth", "peer", "name", "hub1")
	ip("link", "add", "base1", "type", "veth", "peer", "name", "hub2")
	for _, l := range []string{"base0", "base1", "hub1", "hub2"} {
		ip("link", "set", l, "up")
	}
	var w *ChannelWatch
	if err := netns.Do(netns.Named(ns), func() (err error) { w, err = OpenChannelWatch(3); return err }); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	reports := make(chan []uint8, 64)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, func(d []uint8) { reports <- d }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
	expect := func(want ...uint8) {
		t.Helper()
		select {
		case d := <-reports:
			if !slices.Equal(d, want) {
				t.Fatalf("report = %v, want %v", d, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no report, want %v", want)
		}
	}
	// veth carrier follows the far end coming up asynchronously: wait for both channels up.
	for up := false; !up; {
		select {
		case d := <-reports:
			up = len(d) == 0
		case <-time.After(10 * time.Second):
			t.Fatal("the channels never came up")
		}
	}
	ip("link", "set", "hub1", "down")
	expect(1)
	ip("link", "set", "hub2", "down")
	expect(1, 2)
	ip("link", "set", "hub1", "up")
	expect(2)
	// Admin down: the port tells nothing about its far end.
	ip("link", "set", "base1", "down")
	expect()
}
