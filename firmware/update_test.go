package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/cgoa/cgoa/image"
	"github.com/cgoa/cgoa/image/flash"
	"github.com/cgoa/cgoa/image/update"
	"github.com/cgoa/cgoa/qemu/vm"
)

// TestProcessModeImageUpdate runs the firmware with a flash file and its update service on
// loopback, sends it images over TCP as `shelf flash` does, and reads the result on the console.
func TestProcessModeImageUpdate(t *testing.T) {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	pub := key.Public().(ed25519.PublicKey)
	dir := t.TempDir()
	bin := filepath.Join(dir, "firmware")
	cmd := exec.Command("go", "build", "-tags", role.Name, "-ldflags", "-X main.version=1.0.0 -X main.trustedKey="+hex.EncodeToString(pub), "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	mk := func(r, v string) []byte {
		var b bytes.Buffer
		if err := image.Build(&b, image.Header{Role: r, Version: v, Built: time.Now()}, []byte("k"), []byte("i"), key); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	// A factory-flashed disk: 1.0.0 in bank A.
	flashPath := filepath.Join(dir, "flash.img")
	fd, err := os.Create(flashPath)
	if err != nil {
		t.Fatal(err)
	}
	const bank = 1 << 20
	fd.Truncate(flash.Size(bank))
	fl := flash.Open(fd, bank)
	v1 := mk(role.Name, "1.0.0")
	fl.WriteBank(flash.BankA, v1)
	var c flash.BCB
	c.Active = flash.BankA
	*c.Info(flash.BankA) = flash.BankInfo{Valid: true, Length: uint64(len(v1)), Digest: sha256.Sum256(v1), Version: "1.0.0"}
	if _, err := fl.WriteBCB(c); err != nil {
		t.Fatal(err)
	}
	fd.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sock := filepath.Join(dir, "console.sock")
	fw := exec.Command(bin, "-slot", "4", "-console", "unix:"+sock, "-flash", flashPath, "-update", "127.0.0.1:0")
	if err := fw.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fw.Process.Kill(); fw.Wait() })
	con, err := vm.DialConsole(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	defer con.Close()
	if err := con.WaitBoot(ctx, 1); err != nil {
		t.Fatal(err)
	}
	// The service logs its address once it listens.
	re := regexp.MustCompile(`update service on (127\.0\.0\.1:\d+)`)
	var addr string
	for addr == "" {
		out, err := con.Exec(ctx, "show log 100")
		if err != nil {
			t.Fatal(err)
		}
		if m := re.FindStringSubmatch(out); m != nil {
			addr = m[1]
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no update service address in the log: %s", out)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if _, err := update.Send(addr, mk("other", "2.0.0"), false, 10*time.Second); err == nil {
		t.Errorf("an image for another role was accepted")
	}
	if _, err := update.Send(addr, mk(role.Name, "0.9.0"), false, 10*time.Second); err == nil {
		t.Errorf("an older image was accepted without force")
	}
	ans, err := update.Send(addr, mk(role.Name, "1.1.0"), false, 10*time.Second)
	if err != nil || ans != "ok bank B version 1.1.0 staged" {
		t.Fatalf("update.Send(good) = %q, %v", ans, err)
	}
	out, err := con.Exec(ctx, "show image json")
	if err != nil {
		t.Fatal(err)
	}
	var st update.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("show image json: %q: %v", out, err)
	}
	if st.Active != "A" || st.Trial != "B" || st.State != "pending" || st.Refused != 2 || st.Accepted != 1 || st.Banks[1].Version != "1.1.0" {
		t.Errorf("show image json = %+v", st)
	}
	if _, err := con.Exec(ctx, "image confirm"); err == nil {
		t.Errorf("image confirm with a trial not yet booted = nil error")
	}
	if _, err := con.Exec(ctx, "image rollback"); err != nil {
		t.Errorf("image rollback: %v", err)
	}
}
