package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/cgoa/cgoa/blades/blade"
	"github.com/cgoa/cgoa/image/flash"
	"github.com/cgoa/cgoa/image/update"
)

// trustedKey is the hex ed25519 public key images must be signed with, set at link time from
// build/keys/dev.pub by the Makefile. Without one the update service refuses every image.
var trustedKey = ""

func trustedKeys() ([]ed25519.PublicKey, error) {
	if trustedKey == "" {
		return nil, nil
	}
	b, err := hex.DecodeString(strings.TrimSpace(trustedKey))
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("built-in image key %q is not a hex ed25519 public key", trustedKey)
	}
	return []ed25519.PublicKey{b}, nil
}

// flashFile is a flash device opened from a path (a file in process mode, /dev/vda on a
// blade), with its size.
type flashFile struct {
	*os.File
	size int64
}

func openFlash(path string) (*flashFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	// Seek works for files and block devices alike.
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, err
	}
	if size < flash.Size(1<<20) {
		f.Close()
		return nil, fmt.Errorf("flash %s: %d bytes is too small", path, size)
	}
	return &flashFile{File: f, size: size}, nil
}

// startUpdate wires the flash and the update service into the blade: `show image`, `image
// confirm`, `image rollback`, and the update listener. confirmWhenHealthy confirms a trial
// boot once healthy() holds for a few seconds.
func startUpdate(ctx context.Context, b *blade.Blade, flashPath string, listen func() (net.Listener, error), healthy func() bool) {
	dev, err := openFlash(flashPath)
	if err != nil {
		b.Log.Printf("image: no flash: %v", err)
		b.Console.View([]string{"show", "image"}, "", "flash banks, versions, trial state", 0, 0,
			func([]string) (any, error) { return nil, fmt.Errorf("no flash on this blade: %v", err) }, nil)
		return
	}
	keys, kerr := trustedKeys()
	if kerr != nil {
		b.Log.Errorf("image: %v", kerr)
	}
	bankSize := (dev.size - flash.BankBase) / 2
	svc := &update.Service{Flash: flash.Open(dev, bankSize), Role: role.Name, Running: version, Trusted: keys,
		MaxSize: bankSize, Log: b.Log.Printf}
	b.Console.View([]string{"show", "image"}, "", "flash banks, versions, trial state", 0, 0,
		func([]string) (any, error) { return svc.Status() }, func(w io.Writer, v any) {
			st := v.(update.Status)
			fmt.Fprintf(w, "active bank %s, trial %s (%s), %d boots, %d fallbacks, updates accepted %d refused %d\n",
				st.Active, st.Trial, st.State, st.Boots, st.Fallback, st.Accepted, st.Refused)
			for _, bs := range st.Banks {
				fmt.Fprintf(w, "  bank %s: valid %v version %q %d bytes sha256 %s…\n", bs.Bank, bs.Valid, bs.Version, bs.Bytes, bs.Digest)
			}
		})
	b.Console.Action([]string{"image", "confirm"}, "", "confirm the trial image: keep it from now on", 0, 0,
		func(w io.Writer, _ []string) error {
			if err := svc.Confirm(); err != nil {
				return err
			}
			fmt.Fprintln(w, "trial image confirmed")
			return nil
		})
	b.Console.Action([]string{"image", "rollback"}, "", "cancel a trial, or go back to the other bank at the next boot", 0, 0,
		func(w io.Writer, _ []string) error {
			if err := svc.Rollback(); err != nil {
				return err
			}
			fmt.Fprintln(w, "rolled back; takes effect at the next boot")
			return nil
		})
	if listen != nil {
		b.Supervise(ctx, "image-update", func(ctx context.Context) error {
			ln, err := listen()
			if err != nil {
				return err
			}
			go func() {
				<-ctx.Done()
				ln.Close()
			}()
			b.Log.Printf("image: update service on %s", ln.Addr())
			err = svc.Serve(ln)
			if ctx.Err() != nil {
				return nil
			}
			return err
		})
	}
	// A trial boot is confirmed by the firmware itself once the blade has been healthy for a
	// while; one that hangs or crashes before that is rolled back by the boot ROM.
	b.Supervise(ctx, "image-confirm", func(ctx context.Context) error {
		st, err := svc.Status()
		if err != nil || st.State != "booting" {
			return nil
		}
		healthySince := time.Time{}
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case now := <-t.C:
				if !healthy() {
					healthySince = time.Time{}
					continue
				}
				if healthySince.IsZero() {
					healthySince = now
				}
				if now.Sub(healthySince) >= 3*time.Second {
					if err := svc.Confirm(); err != nil {
						return err
					}
					b.Log.Printf("image: trial boot healthy for 3s: confirmed")
					return nil
				}
			}
		}
	})
}
