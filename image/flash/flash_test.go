package flash

import (
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// memDev is an in-memory disk that can lose power after a number of bytes.
type memDev struct {
	b         []byte
	budget    int // bytes that may still be written; <0 unlimited
	powerLost bool
}

var errPower = errors.New("power lost")

func (m *memDev) ReadAt(p []byte, off int64) (int, error) { return copy(p, m.b[off:]), nil }
func (m *memDev) Sync() error                             { return nil }
func (m *memDev) WriteAt(p []byte, off int64) (int, error) {
	if m.powerLost {
		return 0, errPower
	}
	n := len(p)
	if m.budget >= 0 && n > m.budget {
		n = m.budget
		m.powerLost = true
	}
	copy(m.b[off:], p[:n])
	if m.budget >= 0 {
		m.budget -= n
	}
	if m.powerLost {
		return n, errPower
	}
	return n, nil
}

const bank = 64 << 10

func image(tag byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = tag + byte(i)
	}
	return b
}

// install writes img into the inactive bank, stages it and returns the new block.
func install(t *testing.T, f *Flash, img []byte, version string) BCB {
	t.Helper()
	c, _, err := f.ReadBCB()
	if err != nil {
		t.Fatal(err)
	}
	target := c.Active.Other()
	if err := f.WriteBank(target, img); err != nil {
		t.Fatal(err)
	}
	c, err = Stage(c, target, uint64(len(img)), sha256.Sum256(img), version)
	if err != nil {
		t.Fatal(err)
	}
	c, err = f.WriteBCB(c)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// boot runs the boot ROM rule and writes the block back, as the launcher does.
func boot(t *testing.T, f *Flash) (Decision, []byte) {
	t.Helper()
	c, _, err := f.ReadBCB()
	if err != nil {
		t.Fatal(err)
	}
	d, c, err := NextBoot(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteBCB(c); err != nil {
		t.Fatal(err)
	}
	img, err := f.CheckBank(c, d.Bank)
	if err != nil {
		t.Fatalf("boot %v: %v", d.Bank, err)
	}
	return d, img
}

func factory(t *testing.T, dev Device, img []byte) *Flash {
	t.Helper()
	f := Open(dev, bank)
	if err := f.WriteBank(BankA, img); err != nil {
		t.Fatal(err)
	}
	var c BCB
	c.Active = BankA
	*c.Info(BankA) = BankInfo{Valid: true, Length: uint64(len(img)), Digest: sha256.Sum256(img), Version: "1.0.0"}
	if _, err := f.WriteBCB(c); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestTrialConfirmAndFallback(t *testing.T) {
	dev := &memDev{b: make([]byte, Size(bank)), budget: -1}
	v1, v2, v3 := image(1, 5000), image(2, 7000), image(3, 6000)
	f := factory(t, dev, v1)
	if d, img := boot(t, f); d.Bank != BankA || string(img) != string(v1) {
		t.Fatalf("factory boot = %v", d)
	}
	install(t, f, v2, "1.1.0")
	d, img := boot(t, f)
	if d.Bank != BankB || !d.Trial || string(img) != string(v2) {
		t.Fatalf("after staging v2: boot %+v, want trial of B", d)
	}
	c, _, _ := f.ReadBCB()
	c, err := Confirm(c)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteBCB(c)
	if d, _ := boot(t, f); d.Bank != BankB || d.Trial {
		t.Fatalf("after confirm: boot %+v, want B, no trial", d)
	}
	// v3 goes to A on trial, and is never confirmed (it hangs): the next boot falls back to B.
	install(t, f, v3, "1.2.0")
	if d, _ := boot(t, f); d.Bank != BankA || !d.Trial {
		t.Fatalf("trial of v3: %+v", d)
	}
	d, img = boot(t, f)
	if d.Bank != BankB || d.Trial || string(img) != string(v2) {
		t.Fatalf("after an unconfirmed trial: boot %+v, want fallback to B", d)
	}
	c, _, _ = f.ReadBCB()
	if c.Fallback != 1 || c.Info(BankA).Valid {
		t.Errorf("after fallback: %+v, want 1 fallback and bank A invalid", c)
	}
	if err := f.WriteBank(BankB, v1); err == nil {
		t.Errorf("WriteBank(active bank) = nil, want a refusal")
	}
}

// TestPowerCutAnywhere cuts power after every possible number of bytes during an update
// (bank write, then block write) and checks that the blade still boots a complete image: the
// old one, or the new one on trial if the block made it.
func TestPowerCutAnywhere(t *testing.T) {
	v1, v2 := image(1, 3000), image(9, 3000)
	total := len(v2) + BCBSize
	for cut := 0; cut <= total; cut += 97 {
		dev := &memDev{b: make([]byte, Size(bank)), budget: -1}
		f := factory(t, dev, v1)
		dev.budget = cut
		func() {
			c, _, _ := f.ReadBCB()
			if f.WriteBank(BankB, v2) != nil {
				return
			}
			c, _ = Stage(c, BankB, uint64(len(v2)), sha256.Sum256(v2), "2.0.0")
			_, _ = f.WriteBCB(c)
		}()
		dev.powerLost, dev.budget = false, -1 // power comes back
		d, img := boot(t, f)
		switch {
		case d.Bank == BankA && string(img) == string(v1):
		case d.Bank == BankB && d.Trial && string(img) == string(v2):
		default:
			t.Fatalf("cut after %d bytes: booted %+v (%d bytes)", cut, d, len(img))
		}
	}
}

func TestBCBRejectsGarbage(t *testing.T) {
	var c BCB
	good, _ := BCB{Seq: 5, Active: BankA}.MarshalBinary()
	for i, mut := range []func([]byte){
		func(b []byte) { b[0] = 'X' },
		func(b []byte) { b[100] ^= 1 },
		func(b []byte) { b[16] = 7; fixCRC(b) },
		func(b []byte) { b[18] = 1; b[17] = 0; fixCRC(b) },
	} {
		b := append([]byte{}, good...)
		mut(b)
		if err := c.UnmarshalBinary(b); err == nil {
			t.Errorf("mutation %d accepted", i)
		}
	}
	if err := c.UnmarshalBinary(good); err != nil || c.Seq != 5 {
		t.Errorf("UnmarshalBinary(good) = %v, %+v", err, c)
	}
}

func fixCRC(b []byte) {
	sum := crcOf(b)
	b[BCBSize-4], b[BCBSize-3], b[BCBSize-2], b[BCBSize-1] = byte(sum>>24), byte(sum>>16), byte(sum>>8), byte(sum)
}

func TestFileDevice(t *testing.T) {
	p := filepath.Join(t.TempDir(), "flash.img")
	fd, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	if err := fd.Truncate(Size(bank)); err != nil {
		t.Fatal(err)
	}
	f := Open(fd, bank)
	if _, _, err := f.ReadBCB(); !errors.Is(err, ErrBlank) {
		t.Fatalf("ReadBCB(blank file) = %v, want ErrBlank", err)
	}
	factory(t, fd, image(4, 100))
	if d, _ := boot(t, f); d.Bank != BankA {
		t.Errorf("boot from file = %+v", d)
	}
	if _, err := f.ReadBank(BankA, bank+1); err == nil {
		t.Errorf("ReadBank past the bank = nil error")
	}
}

func FuzzBCB(f *testing.F) {
	good, _ := BCB{Seq: 1, Active: BankB, Trial: BankA, State: TrialPending}.MarshalBinary()
	f.Add(good)
	f.Fuzz(func(t *testing.T, b []byte) {
		var c BCB
		if len(b) != BCBSize {
			b = append(b, make([]byte, max(0, BCBSize-len(b)))...)[:BCBSize]
		}
		if c.UnmarshalBinary(b) != nil {
			return
		}
		// Anything accepted must survive the boot ROM rule without a panic.
		_, _, _ = NextBoot(c)
	})
}
