package epon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mdlayher/packet"

	"github.com/cgoa/cgoa/blades/epon/onu"
	"github.com/cgoa/cgoa/netstack/netns"
)

// TestUpstreamQueueFull: a frame the full queue cannot take is dropped and counted, never
// blocks the OLT; a runt is an error.
func TestUpstreamQueueFull(t *testing.T) {
	u := NewUpstream([]string{"base0", "base1"}, "", 2)
	src := net.HardwareAddr{2, 0x0e, 4, 0, 0, 1}
	for i := range 5 {
		u.Frame(onu.NumberedFrame(net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, src, 1, uint64(i), 64))
	}
	u.Frame([]byte{1, 2, 3})
	if v := u.View(); v.Dropped != 3 || v.Errors != 1 || v.Forwarded != 0 || v.Via != "base0" {
		t.Fatalf("View() = %+v, want dropped 3, errors 1, forwarded 0, via base0", v)
	}
}

func sh(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// TestUpstreamFollowsVia: upstream data frames leave, unchanged and in order, on the base
// channel Via names, and move with it (as hubpath moves to the other hub's channel); the
// other channel carries none meanwhile.
func TestUpstreamFollowsVia(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("epon: needs root for network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("epon: needs ip (iproute2)")
	}
	var r [3]byte
	rand.Read(r[:])
	node, hubs := "cgoa-up-"+hex.EncodeToString(r[:])+"-n", "cgoa-up-"+hex.EncodeToString(r[:])+"-h"
	for _, ns := range []string{node, hubs} {
		sh(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	}
	for i := range 2 {
		sh(t, "ip", "-n", node, "link", "add", fmt.Sprintf("base%d", i), "type", "veth", "peer", "name", fmt.Sprintf("h%d", i), "netns", hubs)
		sh(t, "ip", "-n", node, "link", "set", fmt.Sprintf("base%d", i), "up")
		sh(t, "ip", "-n", hubs, "link", "set", fmt.Sprintf("h%d", i), "up")
	}
	// What each hub's node port hears of the test stream.
	type heard struct {
		seqs chan uint64
		conn *packet.Conn
	}
	var hs [2]heard
	for i := range hs {
		hs[i].seqs = make(chan uint64, 256)
		err := netns.Do(netns.Named(hubs), func() error {
			ifi, err := net.InterfaceByName(fmt.Sprintf("h%d", i))
			if err != nil {
				return err
			}
			hs[i].conn, err = packet.Listen(ifi, packet.Raw, onu.TestEtherType, nil)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { hs[i].conn.Close() })
		go func() {
			buf := make([]byte, 2048)
			for {
				n, _, err := hs[i].conn.ReadFrom(buf)
				if err != nil {
					return
				}
				if _, seq, ok := onu.ParseNumbered(buf[:n]); ok {
					hs[i].seqs <- seq
				}
			}
		}()
	}

	u := NewUpstream([]string{"base0", "base1"}, netns.Named(node), UpstreamQueue)
	var via atomic.Value
	via.Store("base0")
	u.SetVia(func() string { return via.Load().(string) })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	src := net.HardwareAddr{2, 0x0e, 4, 0, 0, 1}
	dst := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	expect := func(port int, from, to uint64) {
		t.Helper()
		for seq := from; seq < to; seq++ {
			u.Frame(onu.NumberedFrame(dst, src, 7, seq, 100))
		}
		for seq := from; seq < to; seq++ {
			select {
			case got := <-hs[port].seqs:
				if got != seq {
					t.Fatalf("h%d heard sequence %d, want %d (in order)", port, got, seq)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("h%d: sequence %d not heard within 5 s; %+v", port, seq, u.View())
			}
		}
		select {
		case got := <-hs[1-port].seqs:
			t.Fatalf("h%d heard sequence %d, sent via base%d", 1-port, got, port)
		default:
		}
	}
	expect(0, 0, 20)
	via.Store("base1")
	expect(1, 20, 40)
	via.Store("") // no choice: the first channel
	expect(0, 40, 50)
	// The counters follow the write the listener already heard.
	deadline := time.Now().Add(5 * time.Second)
	for {
		v := u.View()
		if v.Forwarded == 50 && v.PerPort["base0"] == 30 && v.PerPort["base1"] == 20 && v.Dropped == 0 && v.Errors == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("View() = %+v, want forwarded 50 (base0 30, base1 20), none dropped or failed", v)
		}
		time.Sleep(time.Millisecond)
	}
}
