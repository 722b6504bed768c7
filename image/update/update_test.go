package update

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cgoa/cgoa/image"
	"github.com/cgoa/cgoa/image/flash"
)

const bankSize = 1 << 20

func key(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32))
}

func mkImage(t *testing.T, role, version string, k ed25519.PrivateKey) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := image.Build(&b, image.Header{Role: role, Version: version, Built: time.Unix(1, 0)}, []byte("kernel "+version), []byte("initramfs "+version), k); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// newService makes a flash file holding v1.0.0 in bank A, as a factory-flashed blade.
func newService(t *testing.T) (*Service, *os.File) {
	t.Helper()
	fd, err := os.Create(filepath.Join(t.TempDir(), "flash"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fd.Close() })
	if err := fd.Truncate(flash.Size(bankSize)); err != nil {
		t.Fatal(err)
	}
	f := flash.Open(fd, bankSize)
	k := key(1)
	v1 := mkImage(t, "mgmt", "1.0.0", k)
	if err := f.WriteBank(flash.BankA, v1); err != nil {
		t.Fatal(err)
	}
	var c flash.BCB
	c.Active = flash.BankA
	*c.Info(flash.BankA) = flash.BankInfo{Valid: true, Length: uint64(len(v1)), Digest: sha256.Sum256(v1), Version: "1.0.0"}
	if _, err := f.WriteBCB(c); err != nil {
		t.Fatal(err)
	}
	return &Service{Flash: f, Role: "mgmt", Running: "1.0.0", Trusted: []ed25519.PublicKey{k.Public().(ed25519.PublicKey)}, MaxSize: bankSize}, fd
}

func snapshot(t *testing.T, fd *os.File) []byte {
	t.Helper()
	b, err := os.ReadFile(fd.Name())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRefusedWritesNothing: each bad image is refused with its reason and the flash is
// byte-for-byte unchanged.
func TestRefusedWritesNothing(t *testing.T) {
	s, fd := newService(t)
	good := mkImage(t, "mgmt", "1.1.0", key(1))
	corrupt := append([]byte{}, good...)
	corrupt[image.HeaderLen+2] ^= 0xff
	unsigned := append([]byte{}, good...)
	copy(unsigned[len(unsigned)-64:], make([]byte, 64))
	tests := []struct {
		name string
		raw  []byte
		want error
	}{
		{"wrong signature", mkImage(t, "mgmt", "1.1.0", key(2)), image.ErrSignature},
		{"truncated", good[:len(good)-100], image.ErrTruncated},
		{"corrupted", corrupt, image.ErrDigest},
		{"other role", mkImage(t, "epon", "1.1.0", key(1)), image.ErrRole},
		{"older version", mkImage(t, "mgmt", "0.9.0", key(1)), image.ErrOlder},
		{"unsigned", unsigned, image.ErrUnsigned},
	}
	before := snapshot(t, fd)
	for _, tt := range tests {
		if _, _, err := s.Install(tt.raw, false); !errors.Is(err, tt.want) {
			t.Errorf("Install(%s) = %v, want %v", tt.name, err, tt.want)
		}
		if !bytes.Equal(before, snapshot(t, fd)) {
			t.Fatalf("Install(%s) changed the flash", tt.name)
		}
	}
	if got := s.Refused.Load(); got != uint64(len(tests)) {
		t.Errorf("Refused = %d, want %d", got, len(tests))
	}
	// An older version goes in when forced.
	if bank, _, err := s.Install(mkImage(t, "mgmt", "0.9.0", key(1)), true); err != nil || bank != flash.BankB {
		t.Errorf("Install(older, force) = %v, %v; want bank B", bank, err)
	}
}

// TestServeOverTCP sends images over a loopback connection the way `shelf flash` does.
func TestServeOverTCP(t *testing.T) {
	s, _ := newService(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go s.Serve(ln)
	ans, err := Send(ln.Addr().String(), mkImage(t, "mgmt", "1.2.0", key(1)), false, 10*time.Second)
	if err != nil || ans != "ok bank B version 1.2.0 staged" {
		t.Fatalf("Send(good) = %q, %v", ans, err)
	}
	if _, err := Send(ln.Addr().String(), mkImage(t, "switch", "1.3.0", key(1)), false, 10*time.Second); err == nil || !strings.Contains(err.Error(), "wrong role") {
		t.Errorf("Send(switch image) = %v, want wrong role", err)
	}
	st, err := s.Status()
	if err != nil || st.Trial != "B" || st.State != "pending" || st.Banks[1].Version != "1.2.0" || st.Accepted != 1 {
		t.Errorf("Status() = %+v, %v", st, err)
	}
	// Malformed requests are answered with an error, not a hang or a crash.
	for _, req := range []string{"HELLO\n", "CGOA-FLASH 1 -5 0\n", "CGOA-FLASH 1 99999999999 0\n", "CGOA-FLASH 1 10 2\n", "CGOA-FLASH 1 100 0\nshort"} {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte(req))
		if tc, ok := c.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		buf := make([]byte, 512)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, _ := c.Read(buf)
		c.Close()
		if !strings.HasPrefix(string(buf[:n]), "error: ") {
			t.Errorf("request %q answered %q, want an error line", req, buf[:n])
		}
	}
}

func TestConfirmRollback(t *testing.T) {
	s, _ := newService(t)
	if err := s.Confirm(); err == nil {
		t.Errorf("Confirm() with no trial = nil error")
	}
	if _, _, err := s.Install(mkImage(t, "mgmt", "2.0.0", key(1)), false); err != nil {
		t.Fatal(err)
	}
	if err := s.Rollback(); err != nil {
		t.Fatal(err)
	}
	st, _ := s.Status()
	if st.State != "none" || st.Active != "A" || st.Banks[1].Valid {
		t.Errorf("after rollback of a pending trial: %+v", st)
	}
}
