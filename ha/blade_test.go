package ha

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cgoa/cgoa/ha/amf"
	"github.com/cgoa/cgoa/ha/clm"
	"github.com/cgoa/cgoa/ha/transport"
)

var testKey = transport.Key("blade-test-shelf-key-0123456789")

func testConfig() amf.Config {
	return amf.Config{
		Shelf:  3,
		Slots:  []uint8{1, 3, 4},
		Timers: clm.Timers{Interval: 10 * time.Millisecond, Misses: 3},
		Groups: []amf.ServiceGroup{{Name: "mgmt", Model: amf.TwoN, Units: []amf.ServiceUnit{{Name: "mgmt-3", Node: 3}, {Name: "mgmt-4", Node: 4}}}},
	}
}

// loopShelf starts blades for the slots over UDP on loopback, two sockets
// (paths) each, and wires their peers.
func loopShelf(t *testing.T, slots ...uint8) map[uint8]*Blade {
	t.Helper()
	lo := netip.MustParseAddrPort("127.0.0.1:0")
	trs := map[uint8]*transport.UDPTransport{}
	blades := map[uint8]*Blade{}
	var mu sync.Mutex
	for _, slot := range slots {
		b, err := StartWith(Options{Config: testConfig(), Slot: slot, Key: testKey}, func(ep *transport.Endpoint, h transport.Handler) (transport.Transport, error) {
			tr, err := transport.ListenUDP(ep, []transport.UDPPath{{Local: lo}, {Local: lo}}, h)
			if err == nil {
				mu.Lock()
				trs[slot] = tr
				mu.Unlock()
			}
			return tr, err
		})
		if err != nil {
			t.Fatalf("StartWith(slot %d) error %v", slot, err)
		}
		blades[slot] = b
		t.Cleanup(func() { crash(b) })
	}
	for slot, tr := range trs {
		for path := 0; path < 2; path++ {
			peers := map[uint8]netip.AddrPort{}
			for other, otr := range trs {
				if other != slot {
					peers[other] = otr.LocalAddr(path)
				}
			}
			tr.SetPeers(path, peers)
		}
	}
	return blades
}

// crash stops a blade without a word to the others, like kill -9.
func crash(b *Blade) {
	b.once.Do(func() {
		close(b.stop)
		<-b.done
		b.tr.Close()
	})
}

func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

func TestBladesOverUDP(t *testing.T) {
	bl := loopShelf(t, 1, 3, 4)
	var mu sync.Mutex
	var told []amf.HAState
	if err := bl[4].Register(amf.Component{Name: "addr", Unit: "mgmt-4", Assign: func(a amf.Assignment) {
		mu.Lock()
		told = append(told, a.State)
		mu.Unlock()
	}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "mgmt-3 active", 5*time.Second, func() bool { return bl[3].Active("mgmt", "") })
	waitFor(t, "mgmt-4 standby", 5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(told) > 0 && told[len(told)-1] == amf.Standby
	})
	var buf bytes.Buffer
	if err := WriteStatus(&buf, bl[4].Status()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"in quorum: yes", "mgmt-3", "active", "standby"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("show ha output lacks %q:\n%s", want, buf.String())
		}
	}
	if _, err := json.Marshal(bl[4].Status()); err != nil {
		t.Errorf("json.Marshal(Status) error %v", err)
	}
	// Admin switchover from the standby's blade, then back by lock/unlock.
	if err := bl[4].Switchover("mgmt"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "mgmt-4 active after switchover", 5*time.Second, func() bool { return bl[4].Active("mgmt", "") })
	if bl[3].Active("mgmt", "") {
		t.Error("mgmt-3 still active after switchover")
	}
	// kill -9 of the active: the standby takes over within the lease.
	crash(bl[4])
	took := waitFor(t, "mgmt-3 active after crash of 4", 5*time.Second, func() bool { return bl[3].Active("mgmt", "") })
	t.Logf("takeover after crash: %v", took)
	st := bl[3].Status()
	if st.Transport.Forged+st.Transport.Garbled+st.Transport.Short != 0 {
		t.Errorf("transport counters %+v: unexpected bad frames", st.Transport)
	}
	if st.Transport.Duplicates == 0 {
		t.Errorf("no duplicates counted: frames did not travel both paths (%+v)", st.Transport)
	}
	if err := bl[3].Close(context.Background()); err != nil {
		t.Errorf("Close() = %v", err)
	}
	if err := bl[3].Close(context.Background()); err != ErrClosed {
		t.Errorf("second Close() = %v, want %v", err, ErrClosed)
	}
}
