package shelf_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cgoa/cgoa/image"
	"github.com/cgoa/cgoa/image/flash"
	qshelf "github.com/cgoa/cgoa/qemu/shelf"
	"github.com/cgoa/cgoa/qemu/shelftest"
	"github.com/cgoa/cgoa/qemu/topology"
	"github.com/cgoa/cgoa/qemu/vm"
)

// testImages makes signed images for the update tests from the built ones.
type testImages struct {
	t    *testing.T
	a    vm.Artifacts
	base *image.Image
}

func newTestImages(t *testing.T, a vm.Artifacts, role string) *testImages {
	raw, err := os.ReadFile(a.SignedImage(role))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := image.LoadPublicKey(a.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	img, err := image.Verify(bytes.NewReader(raw), []ed25519.PublicKey{pub})
	if err != nil {
		t.Fatalf("the built %s image does not verify: %v", role, err)
	}
	return &testImages{t: t, a: a, base: img}
}

// build signs kernel and initramfs as role/version with build/keys/dev.key.
func (ti *testImages) build(role, version string, kernel, initramfs []byte) []byte {
	ti.t.Helper()
	key, err := image.LoadPrivateKey(filepath.Join(ti.a.Build, "keys", "dev.key"))
	if err != nil {
		ti.t.Fatal(err)
	}
	var b bytes.Buffer
	if err := image.Build(&b, image.Header{Role: role, Version: version, Built: time.Now()}, kernel, initramfs, key); err != nil {
		ti.t.Fatal(err)
	}
	return b.Bytes()
}

// version is the built firmware under another version number.
func (ti *testImages) version(v string) []byte {
	return ti.build(ti.base.Header.Role, v, ti.base.Kernel, ti.base.Initramfs)
}

// hanging is an image whose /init never gets anywhere: a static program that sleeps
// forever, so the firmware never starts, never arms the watchdog and never confirms.
func (ti *testImages) hanging(v string) []byte {
	ti.t.Helper()
	dir := ti.t.TempDir()
	src := filepath.Join(dir, "init.go")
	os.WriteFile(src, []byte("package main\n\nimport \"time\"\n\nfunc main() {\n\tfor {\n\t\ttime.Sleep(time.Hour)\n\t}\n}\n"), 0o644)
	bin := filepath.Join(dir, "init")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, src)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		ti.t.Fatalf("go build the hanging init: %v\n%s", err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		ti.t.Fatal(err)
	}
	return ti.build(ti.base.Header.Role, v, ti.base.Kernel, newc(map[string][]byte{"init": b}))
}

// newc writes a cpio archive in the newc format the kernel unpacks.
func newc(files map[string][]byte) []byte {
	var b bytes.Buffer
	ino := 1
	entry := func(name string, mode int, data []byte) {
		fmt.Fprintf(&b, "070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
			ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
		ino++
		b.WriteString(name + "\x00")
		for b.Len()%4 != 0 {
			b.WriteByte(0)
		}
		b.Write(data)
		for b.Len()%4 != 0 {
			b.WriteByte(0)
		}
	}
	for name, data := range files {
		entry(name, 0o100755, data)
	}
	entry("TRAILER!!!", 0, nil)
	return b.Bytes()
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

type imageView struct {
	Active   string `json:"active"`
	State    string `json:"trial_state"`
	Boots    int    `json:"boots"`
	Fallback int    `json:"fallbacks"`
	Banks    []struct {
		Bank    string `json:"bank"`
		Valid   bool   `json:"valid"`
		Version string `json:"version"`
	} `json:"banks"`
}

func (v imageView) bank(b string) (valid bool, version string) {
	for _, x := range v.Banks {
		if x.Bank == b {
			return x.Valid, x.Version
		}
	}
	return false, ""
}

// TestFlashUpdate drives one small shelf (hub + mgmt blade) through the update paths of
// issue 6: the factory-flashed blade boots bank A; bad images are refused with nothing
// written; a watchdog reset boots again through the boot ROM; a power cut while a bank is
// being written leaves the old image booting; an image that hangs at start is reset by the
// trial watchdog and the blade falls back to its old bank by itself; a good image boots on
// trial and, confirmed, stays.
func TestFlashUpdate(t *testing.T) {
	topo, err := topology.LoadFile("../examples/single-mgmt.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sh := shelftest.Boot(t, topo)
	const slot = 3
	ti := newTestImages(t, shelftest.Need(t, topology.Mgmt), "mgmt")
	running := ti.base.Header.Version
	showImage := func() imageView {
		var v imageView
		sh.ExecJSON(t, slot, "show image json", &v)
		return v
	}
	ctx := t.Context()

	// Factory state: bank A active, holding the built image.
	if v := showImage(); v.Active != "A" || v.State != "none" {
		t.Fatalf("show image json after factory flash = %+v, want bank A active, no trial", v)
	} else if ok, ver := v.bank("A"); !ok || ver != running {
		t.Fatalf("bank A = valid %v version %q, want the built %s", ok, ver, running)
	}

	// Bad input: refused with the reason, the flash file untouched.
	before := fileSum(t, sh.FlashPath(slot))
	corrupt := ti.version("0.2.0")
	corrupt[len(corrupt)/2] ^= 0x01
	older := ti.version("0.0.9")
	other, err := os.ReadFile(ti.a.SignedImage("switch"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		raw  []byte
		want string
	}{
		{"corrupted", corrupt, "digest mismatch"},
		{"truncated", ti.version("0.2.0")[:1<<20], "truncated"},
		{"other role", other, "wrong role"},
		{"older", older, "older than the running firmware"},
	} {
		_, err = sh.Flash(ctx, slot, c.raw, false)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Flash(%s image) = %v, want refused with %q", c.name, err, c.want)
		} else {
			t.Logf("Flash(%s image) refused: %v", c.name, err)
		}
	}
	if after := fileSum(t, sh.FlashPath(slot)); after != before {
		t.Errorf("the flash file changed although every image was refused")
	}

	// A watchdog reset ends QEMU (-no-reboot); the shelf boots the blade again through the
	// boot ROM, from the same bank.
	hctx, hcancel := context.WithTimeout(ctx, 10*time.Second)
	sh.Shelf.Exec(hctx, slot, "debug hang") // may or may not answer before the reset
	hcancel()
	sh.WaitBoot(t, slot, 2)
	if b := sh.LastBoot(slot); b.Bank != flash.BankA || b.Trial {
		t.Errorf("boot after the watchdog reset: bank %v trial %v, want bank A", b.Bank, b.Trial)
	}
	if v := showImage(); v.Boots < 2 {
		t.Errorf("show image boots = %d after a reset, want >= 2", v.Boots)
	}

	// Power cut while bank B is being written: quit QEMU the moment the image's first
	// bytes reach bank B, before the boot-control block stages it.
	good := ti.version("0.2.0")
	flashed := make(chan error, 1)
	go func() {
		_, err := sh.Flash(context.Background(), slot, good, false)
		flashed <- err
	}()
	v, err := sh.VM(slot)
	if err != nil {
		t.Fatal(err)
	}
	bankB := flash.BankBase + flash.DefaultBankSize
	f, err := os.Open(sh.FlashPath(slot))
	if err != nil {
		t.Fatal(err)
	}
	magic := make([]byte, 8)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		f.ReadAt(magic, int64(bankB))
		if string(magic) == image.Magic {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bank B never started being written")
		}
		time.Sleep(time.Millisecond)
	}
	qctx, qcancel := context.WithTimeout(ctx, 5*time.Second)
	v.QMP().Execute(qctx, "quit", nil, nil)
	qcancel()
	f.Close()
	<-v.Exited()
	if err := <-flashed; err == nil {
		t.Errorf("Flash during a power cut = nil error")
	}
	c, err := sh.ReadBCB(slot)
	if err != nil {
		t.Fatal(err)
	}
	if c.State != flash.TrialNone || c.Info(flash.BankB).Valid {
		t.Fatalf("the power cut came after the image was staged (state %d, bank B valid %v): the test did not cut mid-write", c.State, c.Info(flash.BankB).Valid)
	}
	written := 0
	buf := make([]byte, len(good))
	if g, err := os.Open(sh.FlashPath(slot)); err == nil {
		g.ReadAt(buf, int64(bankB))
		g.Close()
		for written < len(good) && buf[written] == good[written] {
			written++
		}
	}
	t.Logf("power cut with %d of %d bytes of bank B written", written, len(good))
	sh.Restart(t, slot)
	if b := sh.LastBoot(slot); b.Bank != flash.BankA || b.Header.Version != running {
		t.Errorf("boot after the power cut: bank %v version %s, want bank A %s", b.Bank, b.Header.Version, running)
	}
	if v := showImage(); v.Active != "A" {
		t.Errorf("show image after the power cut: active %s, want A", v.Active)
	}

	// An image that hangs at start: the trial watchdog resets it, the boot ROM falls back.
	sh.SetTrialTimeout(45 * time.Second)
	if _, err := sh.Flash(ctx, slot, ti.hanging("9.9.9"), false); err != nil {
		t.Fatalf("Flash(hanging image) = %v", err)
	}
	n := sh.Boots(slot)
	start := time.Now()
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	sh.Shelf.Exec(rctx, slot, "reboot")
	rcancel()
	sh.WaitBoot(t, slot, n+2) // n+1: the hanging trial; n+2: the fallback
	t.Logf("hanging image: back on the old bank %v after the reboot", time.Since(start).Round(time.Second))
	if b := sh.LastBoot(slot); b.Bank != flash.BankA || !strings.Contains(b.Reason, "not confirmed") {
		t.Errorf("boot after the hanging trial: bank %v (%s), want bank A by fallback", b.Bank, b.Reason)
	}
	if v := showImage(); v.Active != "A" || v.Fallback != 1 {
		t.Errorf("show image after the hanging trial = %+v, want bank A active, 1 fallback", v)
	} else if ok, _ := v.bank("B"); ok {
		t.Errorf("bank B still valid after its trial failed")
	}

	// A good image: boots on trial and confirms itself once healthy.
	sh.SetTrialTimeout(qshelf.DefaultTrialTimeout)
	if _, err := sh.Flash(ctx, slot, good, false); err != nil {
		t.Fatalf("Flash(0.2.0) = %v", err)
	}
	n = sh.Boots(slot)
	rctx, rcancel = context.WithTimeout(ctx, 10*time.Second)
	sh.Shelf.Exec(rctx, slot, "reboot")
	rcancel()
	sh.WaitBoot(t, slot, n+1)
	if b := sh.LastBoot(slot); b.Bank != flash.BankB || !b.Trial {
		t.Errorf("boot after flashing 0.2.0: bank %v trial %v, want a trial of bank B", b.Bank, b.Trial)
	}
	// The blade confirms a trial itself once healthy with HA in quorum, which this one-hub
	// shelf never reaches (TestRollingUpgrade shows the automatic confirmation); here the
	// operator confirms it.
	if v := showImage(); v.Active != "A" || v.State != "booting" {
		t.Errorf("show image during the trial = %+v, want bank A active, trial booting", v)
	}
	sh.Exec(t, slot, "image confirm")
	if v := showImage(); v.Active != "B" || v.State != "none" {
		t.Errorf("show image after image confirm = %+v, want bank B active, no trial", v)
	} else if _, ver := v.bank("B"); ver != "0.2.0" {
		t.Errorf("bank B version %q, want 0.2.0", ver)
	}
	// The boot ROM now boots bank B as the active bank.
	n = sh.Boots(slot)
	rctx, rcancel = context.WithTimeout(ctx, 10*time.Second)
	sh.Shelf.Exec(rctx, slot, "reboot")
	rcancel()
	sh.WaitBoot(t, slot, n+1)
	if b := sh.LastBoot(slot); b.Bank != flash.BankB || b.Trial || b.Header.Version != "0.2.0" {
		t.Errorf("boot after the confirmation: bank %v trial %v version %s, want bank B 0.2.0", b.Bank, b.Trial, b.Header.Version)
	}
}
