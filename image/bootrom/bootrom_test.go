package bootrom

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ulikunitz/xz"

	"github.com/cgoa/cgoa/image"
	"github.com/cgoa/cgoa/image/flash"
)

const bankSize = 1 << 20

// fakeKernel is a "bzImage": a setup header, then an xz stream of an ELF file, as the
// kernel's build lays it out.
func fakeKernel(t *testing.T, body string) []byte {
	t.Helper()
	var z bytes.Buffer
	w, err := xz.WriterConfig{CheckSum: xz.CRC32}.NewWriter(&z)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("\x7fELF" + body))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return append([]byte("MZ setup code HdrS "), z.Bytes()...)
}

func mkImage(t *testing.T, key ed25519.PrivateKey, role, version, body string) []byte {
	t.Helper()
	var b bytes.Buffer
	err := image.Build(&b, image.Header{Role: role, Version: version, Built: time.Unix(1700000000, 0)},
		fakeKernel(t, body), []byte("initramfs of "+body), key)
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

type rig struct {
	t    *testing.T
	path string
	rom  ROM
	key  ed25519.PrivateKey
}

func newRig(t *testing.T) *rig {
	pub, key, _ := ed25519.GenerateKey(nil)
	dir := t.TempDir()
	r := &rig{t: t, path: filepath.Join(dir, "slot3.flash"), key: key,
		rom: ROM{Trusted: []ed25519.PublicKey{pub}, BankSize: bankSize, CacheDir: filepath.Join(dir, "cache"), Log: t.Logf}}
	flashed, err := FactoryFlash(r.path, bankSize, mkImage(t, key, "mgmt", "0.1.0", "old"), r.rom.Trusted)
	if err != nil || !flashed {
		t.Fatalf("FactoryFlash = %v, %v, want true, nil", flashed, err)
	}
	return r
}

// stage writes raw into bank B and asks for a trial, as the firmware's update service does.
func (r *rig) stage(raw []byte) {
	f, err := os.OpenFile(r.path, os.O_RDWR, 0)
	if err != nil {
		r.t.Fatal(err)
	}
	defer f.Close()
	fl := flash.Open(f, bankSize)
	c, _, err := fl.ReadBCB()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := fl.WriteBank(flash.BankB, raw); err != nil {
		r.t.Fatal(err)
	}
	c, err = flash.Stage(c, flash.BankB, uint64(len(raw)), sha256.Sum256(raw), "x")
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := fl.WriteBCB(c); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) boot(wantBank flash.Bank, wantTrial bool, wantKernel string) Boot {
	r.t.Helper()
	b, err := r.rom.Boot(r.path, "mgmt")
	if err != nil {
		r.t.Fatalf("Boot() = %v", err)
	}
	if b.Bank != wantBank || b.Trial != wantTrial {
		r.t.Fatalf("Boot() = bank %v trial %v (%s), want bank %v trial %v", b.Bank, b.Trial, b.Reason, wantBank, wantTrial)
	}
	k, err := os.ReadFile(b.Kernel)
	if err != nil || string(k) != "\x7fELF"+wantKernel {
		r.t.Fatalf("Boot() kernel %s = %q, %v, want the ELF of %q", b.Kernel, k, err, wantKernel)
	}
	if i, _ := os.ReadFile(b.Initrd); string(i) != "initramfs of "+wantKernel {
		r.t.Fatalf("Boot() initrd = %q", i)
	}
	return b
}

func (r *rig) bcb() flash.BCB {
	f, err := os.Open(r.path)
	if err != nil {
		r.t.Fatal(err)
	}
	defer f.Close()
	c, _, err := flash.Open(readOnly{f}, bankSize).ReadBCB()
	if err != nil {
		r.t.Fatal(err)
	}
	return c
}

type readOnly struct{ *os.File }

func (readOnly) WriteAt([]byte, int64) (int, error) { return 0, errors.New("read only") }

func TestFactoryFlashOnce(t *testing.T) {
	r := newRig(t)
	before, _ := os.ReadFile(r.path)
	if fi, _ := os.Stat(r.path); fi.Size() != flash.Size(bankSize) {
		t.Errorf("flash size = %d, want %d", fi.Size(), flash.Size(bankSize))
	}
	flashed, err := FactoryFlash(r.path, bankSize, mkImage(t, r.key, "mgmt", "0.2.0", "other"), r.rom.Trusted)
	if err != nil || flashed {
		t.Errorf("FactoryFlash of a flashed disk = %v, %v, want false, nil", flashed, err)
	}
	if after, _ := os.ReadFile(r.path); !bytes.Equal(before, after) {
		t.Errorf("FactoryFlash changed a flashed disk")
	}
	_, other, _ := ed25519.GenerateKey(nil)
	if _, err := FactoryFlash(filepath.Join(t.TempDir(), "x"), bankSize, mkImage(t, other, "mgmt", "0.1.0", "x"), r.rom.Trusted); !errors.Is(err, image.ErrSignature) {
		t.Errorf("FactoryFlash of an untrusted image = %v, want ErrSignature", err)
	}
}

// TestTrialAndFallback: a staged image boots once on trial; booted again unconfirmed, the
// ROM falls back to the old bank; confirmed, it stays.
func TestTrialAndFallback(t *testing.T) {
	r := newRig(t)
	r.boot(flash.BankA, false, "old")
	r.stage(mkImage(t, r.key, "mgmt", "0.2.0", "new"))
	r.boot(flash.BankB, true, "new")
	b := r.boot(flash.BankA, false, "old") // the trial was not confirmed: a hang, a crash
	if !strings.Contains(b.Reason, "not confirmed") {
		t.Errorf("fallback reason = %q", b.Reason)
	}
	if c := r.bcb(); c.Fallback != 1 || c.Info(flash.BankB).Valid || c.Boots != 3 {
		t.Errorf("after fallback: %+v, want 1 fallback, bank B invalid, 3 boots", c)
	}
	r.stage(mkImage(t, r.key, "mgmt", "0.3.0", "newer"))
	r.boot(flash.BankB, true, "newer")
	f, _ := os.OpenFile(r.path, os.O_RDWR, 0)
	fl := flash.Open(f, bankSize)
	c, _, _ := fl.ReadBCB()
	c, err := flash.Confirm(c)
	if err == nil {
		_, err = fl.WriteBCB(c)
	}
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	r.boot(flash.BankB, false, "newer")
}

// TestRefusedBanks: a trial bank that fails its checks is never booted, nor is a corrupted
// active bank while the other bank is good.
func TestRefusedBanks(t *testing.T) {
	_, stranger, _ := ed25519.GenerateKey(nil)
	for name, bad := range map[string]func(r *rig) []byte{
		"untrusted key": func(r *rig) []byte { return mkImage(t, stranger, "mgmt", "0.2.0", "evil") },
		"other role":    func(r *rig) []byte { return mkImage(t, r.key, "switch", "0.2.0", "sw") },
	} {
		t.Run(name, func(t *testing.T) {
			r := newRig(t)
			r.stage(bad(r))
			r.boot(flash.BankA, false, "old")
			if c := r.bcb(); c.State != flash.TrialNone || c.Info(flash.BankB).Valid {
				t.Errorf("after a refused trial: %+v", c)
			}
		})
	}
	t.Run("corrupted active bank", func(t *testing.T) {
		r := newRig(t)
		r.stage(mkImage(t, r.key, "mgmt", "0.2.0", "new"))
		r.boot(flash.BankB, true, "new")
		f, _ := os.OpenFile(r.path, os.O_RDWR, 0)
		fl := flash.Open(f, bankSize)
		c, _, _ := fl.ReadBCB()
		c, _ = flash.Confirm(c)
		fl.WriteBCB(c)
		f.WriteAt([]byte("rot"), flash.BankBase+bankSize+50) // bank B, inside the image
		f.Close()
		r.boot(flash.BankA, false, "old")
		if c := r.bcb(); c.Active != flash.BankA || c.Info(flash.BankB).Valid {
			t.Errorf("after a corrupted active bank: %+v, want A active and B invalid", c)
		}
	})
	t.Run("nothing bootable", func(t *testing.T) {
		r := newRig(t)
		f, _ := os.OpenFile(r.path, os.O_RDWR, 0)
		f.WriteAt([]byte("rot"), flash.BankBase+100)
		f.Close()
		if _, err := r.rom.Boot(r.path, "mgmt"); !errors.Is(err, flash.ErrNoBootableBank) {
			t.Errorf("Boot() of a disk with only a corrupted bank = %v, want ErrNoBootableBank", err)
		}
	})
}

// TestConcurrentBoots: blades of one role power up together and unpack the same image.
func TestConcurrentBoots(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	dir := t.TempDir()
	rom := ROM{Trusted: []ed25519.PublicKey{pub}, BankSize: bankSize, CacheDir: filepath.Join(dir, "cache")}
	raw := mkImage(t, key, "mgmt", "0.1.0", "same")
	errs := make(chan error, 4)
	for i := range 4 {
		path := filepath.Join(dir, fmt.Sprintf("slot%d.flash", i))
		if _, err := FactoryFlash(path, bankSize, raw, rom.Trusted); err != nil {
			t.Fatal(err)
		}
		go func() {
			_, err := rom.Boot(path, "mgmt")
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Boot() = %v", err)
		}
	}
}
