// Command imgtool makes, shows and checks signed CGOA blade images.
//
//	imgtool keygen -dir build/keys
//	imgtool build -key build/keys/dev.key -role mgmt -version 0.1.0 -kernel K -initramfs I -o mgmt.img
//	imgtool inspect FILE
//	imgtool verify [-key build/keys/dev.pub] [-role mgmt] [-running 0.1.0] [-force] FILE
//
// verify exits non-zero, with the reason, when any check fails.
package main

import (
	"bufio"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cgoa/cgoa/image"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "imgtool: %v\n", err)
		os.Exit(1)
	}
}

var errUsage = errors.New("usage: imgtool keygen|build|inspect|verify ... (see go doc ./image/cmd/imgtool)")

func run(args []string, out io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	fs := flag.NewFlagSet("imgtool "+args[0], flag.ContinueOnError)
	switch args[0] {
	case "keygen":
		dir := fs.String("dir", "build/keys", "directory for dev.key and dev.pub")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		pub, err := image.GenerateKeys(*dir)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "key %x in %s\n", image.KeyID(pub), *dir)
		return nil
	case "build":
		key := fs.String("key", "build/keys/dev.key", "private key")
		role := fs.String("role", "", "blade role")
		version := fs.String("version", "", "firmware version")
		kernel := fs.String("kernel", "", "kernel (bzImage)")
		initramfs := fs.String("initramfs", "", "initramfs (cpio)")
		o := fs.String("o", "", "output image")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		k, err := image.LoadPrivateKey(*key)
		if err != nil {
			return err
		}
		kb, err := os.ReadFile(*kernel)
		if err != nil {
			return err
		}
		ib, err := os.ReadFile(*initramfs)
		if err != nil {
			return err
		}
		f, err := os.Create(*o + ".tmp")
		if err != nil {
			return err
		}
		w := bufio.NewWriter(f)
		err = image.Build(w, image.Header{Role: *role, Version: *version, Built: time.Now()}, kb, ib, k)
		if err == nil {
			err = w.Flush()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(*o + ".tmp")
			return err
		}
		return os.Rename(*o+".tmp", *o)
	case "inspect":
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return errUsage
		}
		f, err := os.Open(fs.Arg(0))
		if err != nil {
			return err
		}
		defer f.Close()
		hb := make([]byte, image.HeaderLen)
		if _, err := io.ReadFull(f, hb); err != nil {
			return fmt.Errorf("%w: %v", image.ErrTruncated, err)
		}
		h, err := image.ParseHeader(hb)
		if err != nil {
			return err
		}
		fi, _ := f.Stat()
		fmt.Fprintf(out, "role       %s\nversion    %s\nbuilt      %s\nkernel     %d bytes\ninitramfs  %d bytes\nkey id     %s\nsize       %d bytes (header says %d)\n",
			h.Role, h.Version, h.Built.Format(time.RFC3339), h.KernelLen, h.InitramfsLen, hex.EncodeToString(h.KeyID[:]), fi.Size(), h.Size())
		return nil
	case "verify":
		key := fs.String("key", "build/keys/dev.pub", "trusted public key")
		role := fs.String("role", "", "refuse unless the image is for this role")
		running := fs.String("running", "", "refuse an image older than this version")
		force := fs.Bool("force", false, "accept an older version")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return errUsage
		}
		pub, err := image.LoadPublicKey(*key)
		if err != nil {
			return err
		}
		f, err := os.Open(fs.Arg(0))
		if err != nil {
			return err
		}
		defer f.Close()
		img, err := image.Verify(bufio.NewReader(f), []ed25519.PublicKey{pub})
		if err != nil {
			return err
		}
		if *role != "" {
			run := *running
			if run == "" {
				run = "0.0.0"
			}
			if err := image.Accept(img.Header, *role, run, *force); err != nil {
				return err
			}
		}
		fmt.Fprintf(out, "ok: %s %s, digest %x\n", img.Header.Role, img.Header.Version, img.Digest)
		return nil
	}
	return errUsage
}
