package shelf

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cgoa/cgoa/image"
	"github.com/cgoa/cgoa/image/bootrom"
	"github.com/cgoa/cgoa/image/flash"
	"github.com/cgoa/cgoa/qemu/topology"
	"github.com/cgoa/cgoa/qemu/vm"
)

// newIdle makes a shelf whose VMs are never started (fake image files), to
// test wiring, status and the control socket without QEMU.
func newIdle(t *testing.T) *Shelf {
	t.Helper()
	build := t.TempDir()
	os.MkdirAll(filepath.Join(build, "images"), 0o755)
	if _, err := image.GenerateKeys(filepath.Join(build, "keys")); err != nil {
		t.Fatal(err)
	}
	key, err := image.LoadPrivateKey(filepath.Join(build, "keys", "dev.key"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range topology.Roles {
		os.WriteFile(filepath.Join(build, "images", string(r)+".cpio"), []byte("x"), 0o644)
		var img bytes.Buffer
		if err := image.Build(&img, image.Header{Role: string(r), Version: "0.1.0"}, []byte("kernel"), []byte("x"), key); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(build, "images", string(r)+".img"), img.Bytes(), 0o644)
	}
	run, err := os.MkdirTemp("", "shelf-unit-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(run) })
	s, err := New(Options{Topology: topology.Default(), Artifacts: vm.Artifacts{Build: build, Kernel: "/nonexistent"}, RunDir: run})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConfigWiring(t *testing.T) {
	s := newIdle(t)
	b, _ := s.topo.Blade(3)
	cfg, err := s.config(b, bootrom.Boot{Kernel: "/k", Initrd: "/i"}, 40000)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Kernel != "/k" || cfg.Initrd != "/i" || cfg.Flash != s.FlashPath(3) || cfg.Craft == nil ||
		cfg.Craft.HostPort != 40000 || cfg.Craft.MAC != "52:54:01:03:00:07" {
		t.Errorf("config(slot 3) = kernel %s initrd %s flash %s craft %+v, want the boot ROM's files, the slot's flash, the craft port",
			cfg.Kernel, cfg.Initrd, cfg.Flash, cfg.Craft)
	}
	if c, err := s.ReadBCB(3); err != nil || c.Active != flash.BankA || !c.Info(flash.BankA).Valid || c.Info(flash.BankA).Version != "0.1.0" {
		t.Errorf("slot 3 flash after New = %+v, %v, want factory-flashed bank A with 0.1.0", c, err)
	}
	if len(cfg.Ports) != 2 {
		t.Fatalf("config(slot 3) ports = %+v, want base0 and base1", cfg.Ports)
	}
	p := cfg.Ports[0]
	if p.Name != "base0" || p.PCIDevice != 8 || p.MAC != "52:54:01:03:00:08" ||
		p.Local != filepath.Join(s.runDir, "s3-base0.sock") || p.Remote != filepath.Join(s.runDir, "s1-node3.sock") {
		t.Errorf("config(slot 3) base0 = %+v", p)
	}
	hub, _ := s.topo.Blade(1)
	cfg, _ = s.config(hub, bootrom.Boot{}, 40001)
	for _, p := range cfg.Ports {
		if p.Name == "uplink0" && p.Remote != filepath.Join(s.runDir, "host-uplink-s1.sock") {
			t.Errorf("hub uplink0 remote = %s, want the host sink", p.Remote)
		}
		if p.Name == "isl0" && p.Remote != filepath.Join(s.runDir, "s2-isl0.sock") {
			t.Errorf("hub isl0 remote = %s, want hub 2's isl0", p.Remote)
		}
	}
	// The run dir's topology copy parses back to the same shelf.
	back, err := topology.LoadFile(filepath.Join(s.runDir, "topology.yaml"))
	if err != nil || back.String() != s.topo.String() {
		t.Errorf("topology.yaml round trip = %v, %v", back, err)
	}
}

func TestIdleStatusAndControl(t *testing.T) {
	s := newIdle(t)
	srv, err := Serve(s)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if _, err := Serve(s); err == nil {
		t.Errorf("second Serve on the same run dir = nil error, want 'already served'")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl := Client{RunDir: s.runDir}
	resp, err := cl.Call(ctx, Request{Op: "status"})
	if err != nil {
		t.Fatal(err)
	}
	st := resp.Status
	if len(st.Blades) != 5 || st.AllUp() {
		t.Fatalf("status = %+v, want 5 blades, not all up", st)
	}
	for _, b := range st.Blades {
		if b.State != vm.Down {
			t.Errorf("slot %d state = %s, want down (never started)", b.Slot, b.State)
		}
	}
	if got := st.Blades[2].Links["base0"]; got != "down" {
		t.Errorf("slot 3 base0 = %q, want down (peer absent)", got)
	}
	if len(st.FarEnds) != 4 {
		t.Errorf("far ends = %+v, want 4", st.FarEnds)
	}
	var sb strings.Builder
	st.WriteTable(&sb)
	if !strings.Contains(sb.String(), "3    mgmt   down") {
		t.Errorf("table = %q, want a line for slot 3", sb.String())
	}

	for _, tt := range []struct {
		req  Request
		want string
	}{
		{Request{Op: "exec", Slot: 3, Line: "show version"}, "pulled"},
		{Request{Op: "exec", Slot: 9, Line: "show version"}, "no such slot"},
		{Request{Op: "cut", Slot: 3, Port: "isl0"}, "no port"},
		{Request{Op: "kill", Slot: 3}, "pulled"},
		{Request{Op: "frob"}, "unknown op"},
	} {
		if _, err := cl.Call(ctx, tt.req); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Call(%+v) = %v, want error containing %q", tt.req, err, tt.want)
		}
	}
	if _, err := cl.Call(ctx, Request{Op: "cut", Slot: 3, Port: "base0"}); err != nil {
		t.Errorf("cut 3 base0 = %v", err)
	}
	if _, err := cl.Console(ctx, 3); err == nil {
		t.Errorf("console on a pulled blade = nil error")
	}
	if _, err := cl.Call(ctx, Request{Op: "down"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-srv.Down():
	case <-ctx.Done():
		t.Fatal("down request did not signal the supervisor")
	}
}
