// Package bootrom is the boot ROM of an emulated blade: what runs between power-on (or a
// reset) and the kernel. Before every boot it reads the blade's flash with the same code the
// firmware writes it with (package flash), applies the boot rule flash.NextBoot, writes the
// boot-control block back (so a trial booted now and never confirmed is a failed trial at the
// next boot), reads the chosen bank and verifies its signature (package image). A bank that
// fails is marked invalid and the other one is tried. The image's kernel is a bzImage; the
// ROM hands QEMU the uncompressed vmlinux for a PVH boot, cached by image digest.
//
//	rom := bootrom.ROM{Trusted: keys, BankSize: flash.DefaultBankSize, CacheDir: run + "/bootrom"}
//	_, err := bootrom.FactoryFlash(path, flash.DefaultBankSize, raw, keys) // once, on a new blade
//	b, err := rom.Boot(path, "mgmt") // b.Kernel, b.Initrd: the files to boot
package bootrom

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/cgoa/cgoa/image"
	"github.com/cgoa/cgoa/image/flash"
)

// ROM is a blade's boot ROM.
type ROM struct {
	Trusted  []ed25519.PublicKey
	BankSize int64
	// CacheDir keeps extracted kernels and initramfs files by image digest.
	CacheDir string
	// Log receives one line per decision; nil discards.
	Log func(format string, args ...any)
}

// Boot is what the ROM boots.
type Boot struct {
	flash.Decision
	Header image.Header
	Digest [32]byte
	Kernel string // uncompressed vmlinux
	Initrd string // initramfs
	Count  uint32 // boots counted in the boot-control block, this one included
}

func (r ROM) logf(format string, args ...any) {
	if r.Log != nil {
		r.Log(format, args...)
	}
}

// Boot picks, checks and unpacks the image to boot from the flash file at path, for a blade
// of the given role. It changes the boot-control block as the boot rule says.
func (r ROM) Boot(path, role string) (Boot, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return Boot{}, fmt.Errorf("bootrom: %w", err)
	}
	defer f.Close()
	fl := flash.Open(f, r.BankSize)
	c, _, err := fl.ReadBCB()
	if err != nil {
		return Boot{}, fmt.Errorf("bootrom: %s: %w", path, err)
	}
	// Each pass either boots or invalidates a bank, so two banks need at most three passes.
	for pass := 0; pass < 3; pass++ {
		d, next, err := flash.NextBoot(c)
		if err != nil {
			return Boot{}, fmt.Errorf("bootrom: %s: %w", path, err)
		}
		if next, err = fl.WriteBCB(next); err != nil {
			return Boot{}, fmt.Errorf("bootrom: %w", err)
		}
		c = next
		img, err := r.check(fl, c, d.Bank, role)
		if err != nil {
			r.logf("bootrom: bank %v refused: %v", d.Bank, err)
			c = invalidate(c, d)
			if c, err = fl.WriteBCB(c); err != nil {
				return Boot{}, fmt.Errorf("bootrom: %w", err)
			}
			continue
		}
		b := Boot{Decision: d, Header: img.Header, Digest: img.Digest, Count: c.Boots}
		if b.Kernel, b.Initrd, err = r.unpack(img); err != nil {
			return Boot{}, err
		}
		r.logf("bootrom: boot %d: bank %v, %s %s (%s)", c.Boots, d.Bank, img.Header.Role, img.Header.Version, d.Reason)
		return b, nil
	}
	return Boot{}, fmt.Errorf("bootrom: %s: %w", path, flash.ErrNoBootableBank)
}

// check reads bank b and verifies it: recorded digest, signature, role.
func (r ROM) check(fl *flash.Flash, c flash.BCB, b flash.Bank, role string) (*image.Image, error) {
	raw, err := fl.CheckBank(c, b)
	if err != nil {
		return nil, err
	}
	img, err := image.Verify(bytes.NewReader(raw), r.Trusted)
	if err != nil {
		return nil, err
	}
	if img.Header.Role != role {
		return nil, fmt.Errorf("%w: image is for %q, the slot holds a %q blade", image.ErrRole, img.Header.Role, role)
	}
	return img, nil
}

// invalidate marks a refused bank invalid: a trial is cancelled, a refused active bank
// gives way to the other bank if that one is valid.
func invalidate(c flash.BCB, d flash.Decision) flash.BCB {
	if d.Trial {
		c, _ = flash.Rollback(c)
		return c
	}
	c.Info(d.Bank).Valid = false
	if o := d.Bank.Other(); c.Info(o).Valid {
		c.Active = o
	}
	return c
}

// unpackMu serialises unpacking: blades booting the same image at once (a shelf powering
// up) extract its kernel once, and the others find it in the cache.
var unpackMu sync.Mutex

// unpack writes the image's vmlinux and initramfs into the cache (once per digest).
func (r ROM) unpack(img *image.Image) (kernel, initrd string, err error) {
	unpackMu.Lock()
	defer unpackMu.Unlock()
	if err := os.MkdirAll(r.CacheDir, 0o755); err != nil {
		return "", "", fmt.Errorf("bootrom: %w", err)
	}
	id := hex.EncodeToString(img.Digest[:12])
	kernel = filepath.Join(r.CacheDir, id+".vmlinux")
	initrd = filepath.Join(r.CacheDir, id+".initrd")
	if err := writeOnce(initrd, func() ([]byte, error) { return img.Initramfs, nil }); err != nil {
		return "", "", err
	}
	if err := writeOnce(kernel, func() ([]byte, error) { return image.Vmlinux(img.Kernel) }); err != nil {
		return "", "", err
	}
	return kernel, initrd, nil
}

// writeOnce creates path from make unless it exists; the rename makes a half-written file
// (the shelf killed mid-way) impossible to mistake for a cached one.
func writeOnce(path string, make func() ([]byte, error)) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	b, err := make()
	if err != nil {
		return fmt.Errorf("bootrom: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("bootrom: %w", err)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("bootrom: %w", err)
	}
	return nil
}

// FactoryFlash prepares a blade's flash file as the factory ships it: bank A holds raw (a
// signed image, verified first), active, no trial. A file that already holds a valid
// boot-control block is left alone (the blade keeps what it was updated to); it reports
// whether it flashed.
func FactoryFlash(path string, bankSize int64, raw []byte, trusted []ed25519.PublicKey) (bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return false, fmt.Errorf("bootrom: %w", err)
	}
	defer f.Close()
	fl := flash.Open(f, bankSize)
	if _, _, err := fl.ReadBCB(); err == nil {
		return false, nil
	} else if !errors.Is(err, flash.ErrBlank) {
		return false, fmt.Errorf("bootrom: %s: %w", path, err)
	}
	img, err := image.Verify(bytes.NewReader(raw), trusted)
	if err != nil {
		return false, fmt.Errorf("bootrom: factory image: %w", err)
	}
	if err := f.Truncate(flash.Size(bankSize)); err != nil {
		return false, fmt.Errorf("bootrom: %w", err)
	}
	if err := fl.WriteBank(flash.BankA, raw); err != nil {
		return false, fmt.Errorf("bootrom: %w", err)
	}
	var c flash.BCB
	c.Active = flash.BankA
	*c.Info(flash.BankA) = flash.BankInfo{Valid: true, Length: uint64(len(raw)), Digest: sha256.Sum256(raw), Version: img.Header.Version}
	if _, err := fl.WriteBCB(c); err != nil {
		return false, fmt.Errorf("bootrom: %w", err)
	}
	return true, nil
}
