package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cgoa/cgoa/blades/epon/onu"
	nsutil "github.com/cgoa/cgoa/netstack/netns"
	"github.com/cgoa/cgoa/netstack/ponlink"
	"github.com/cgoa/cgoa/qemu/vm"
)

// TestProcessModeEPON runs the EPON firmware in a namespace whose pon0 is one end of a veth
// pair; the test's ONU emulator sits on the other end, as the shelf's host-side emulator does
// on a PON link. The OLT must register every ONU and range it.
func TestProcessModeEPON(t *testing.T) {
	if role.Name != "epon" {
		t.Skip("runs in the epon build")
	}
	ns := newNetns(t)
	bin := buildFirmware(t)
	ns.ip(t, "link", "add", "pon0", "type", "veth", "peer", "name", "pon0-far")
	ns.ip(t, "link", "set", "pon0-far", "up")
	var nic *ponlink.NIC
	if err := nsutil.Do(nsutil.Named(string(ns)), func() error {
		var err error
		nic, err = ponlink.OpenNIC("pon0-far")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer nic.Close()
	const n = 4
	var onus []onu.Emulated
	for i := 0; i < n; i++ {
		mac := net.HardwareAddr{0x02, 0xcc, 0, 0, 0, byte(i + 1)}
		onus = append(onus, onu.Emulated{Config: onu.Config{MAC: mac, Seed: uint64(i + 1)}, DistanceKm: float64(5 * i)})
	}
	em, err := onu.NewEmulator(onus, func(b []byte) error {
		var f ponlink.Frame
		if err := f.UnmarshalBinary(b); err != nil {
			return err
		}
		return nic.WriteFrame(&f)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer em.Close()
	go func() {
		buf := make([]byte, ponlink.MaxDatagram)
		for {
			f, err := nic.ReadFrame(buf)
			if err != nil {
				return
			}
			b, err := f.MarshalBinary()
			if err == nil {
				em.HandleDatagram(b)
			}
		}
	}()
	em.Start()
	if err := em.PowerOnAll(); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	sock := filepath.Join(dir, "console.sock")
	cmd := exec.Command("ip", "netns", "exec", string(ns), bin, "-slot", "5", "-console", "unix:"+sock)
	cmd.SysProcAttr = &unix.SysProcAttr{Pdeathsig: unix.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	con, err := vm.DialConsole(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	defer con.Close()
	if err := con.WaitBoot(ctx, 1); err != nil {
		t.Fatal(err)
	}
	var view struct {
		ONUs []struct {
			MAC   string  `json:"mac"`
			State string  `json:"state"`
			RTTUs float64 `json:"rtt_us"`
			LLID  uint16  `json:"llid"`
		} `json:"onus"`
	}
	for {
		out, err := con.Exec(ctx, "show onu pon0 json")
		if err == nil && json.Unmarshal([]byte(out), &view) == nil {
			reg := 0
			for _, u := range view.ONUs {
				if u.State == "registered" {
					reg++
				}
			}
			if reg == n {
				break
			}
		}
		select {
		case <-ctx.Done():
			log, _ := con.Exec(context.Background(), "show log 40")
			t.Fatalf("show onu pon0 json = %q (%v); want %d registered ONUs\nlog:\n%s", out, err, n, log)
		case <-time.After(100 * time.Millisecond):
		}
	}
	seen := map[uint16]bool{}
	for _, u := range view.ONUs {
		// The fibre is emulated (5 µs/km each way) on top of socket latency: an ONU at d km
		// cannot have a round trip under 10 µs/km.
		var i int
		fmt.Sscanf(u.MAC[len(u.MAC)-2:], "%x", &i)
		if min := float64(10 * 5 * (i - 1)); u.RTTUs < min {
			t.Errorf("ONU %s: RTT %.1f us, below its fibre round trip %.0f us", u.MAC, u.RTTUs, min)
		}
		if seen[u.LLID] {
			t.Errorf("LLID %#x given twice", u.LLID)
		}
		seen[u.LLID] = true
	}
	if _, err := con.Exec(ctx, "onu deregister pon0 "+view.ONUs[0].MAC); err != nil {
		t.Errorf("onu deregister: %v", err)
	}
	var ce *vm.CommandError
	if _, err := con.Exec(ctx, "show onu pon7"); !errorsAs(err, &ce) {
		t.Errorf("show onu pon7 = %v, want a console error", err)
	}
}
