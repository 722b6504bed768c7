package image

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"
)

func testKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

func buildTest(t *testing.T, h Header, key ed25519.PrivateKey) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Build(&b, h, []byte("kernel-bytes"), []byte("initramfs-bytes!"), key); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestBuildVerify(t *testing.T) {
	key := testKey(1)
	pub := key.Public().(ed25519.PublicKey)
	built := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	raw := buildTest(t, Header{Role: "mgmt", Version: "1.2.3", Built: built}, key)
	img, err := Verify(bytes.NewReader(raw), []ed25519.PublicKey{pub})
	if err != nil {
		t.Fatalf("Verify(good image) = %v", err)
	}
	if img.Header.Role != "mgmt" || img.Header.Version != "1.2.3" || !img.Header.Built.Equal(built) ||
		string(img.Kernel) != "kernel-bytes" || string(img.Initramfs) != "initramfs-bytes!" || img.Header.Size() != int64(len(raw)) {
		t.Errorf("Verify = %+v", img.Header)
	}

	other := testKey(2).Public().(ed25519.PublicKey)
	corrupt := append([]byte{}, raw...)
	corrupt[HeaderLen+3] ^= 0x40
	badSig := append([]byte{}, raw...)
	badSig[len(badSig)-1] ^= 1
	unsigned := append([]byte{}, raw...)
	copy(unsigned[len(unsigned)-64:], make([]byte, 64))
	roleEdit := append([]byte{}, raw...)
	copy(roleEdit[12:], "epon")
	tests := []struct {
		name    string
		b       []byte
		trusted []ed25519.PublicKey
		want    error
	}{
		{"untrusted key", raw, []ed25519.PublicKey{other}, ErrSignature},
		{"no trusted keys", raw, nil, ErrSignature},
		{"corrupted payload", corrupt, []ed25519.PublicKey{pub}, ErrDigest},
		{"bad signature", badSig, []ed25519.PublicKey{pub}, ErrSignature},
		{"unsigned", unsigned, []ed25519.PublicKey{pub}, ErrUnsigned},
		{"role edited", roleEdit, []ed25519.PublicKey{pub}, ErrDigest},
		{"truncated header", raw[:50], []ed25519.PublicKey{pub}, ErrTruncated},
		{"truncated payload", raw[:HeaderLen+5], []ed25519.PublicKey{pub}, ErrTruncated},
		{"truncated trailer", raw[:len(raw)-10], []ed25519.PublicKey{pub}, ErrTruncated},
		{"trailing data", append(append([]byte{}, raw...), 0), []ed25519.PublicKey{pub}, ErrFormat},
		{"not an image", bytes.Repeat([]byte{0x7f}, 300), []ed25519.PublicKey{pub}, ErrFormat},
	}
	for _, tt := range tests {
		if _, err := Verify(bytes.NewReader(tt.b), tt.trusted); !errors.Is(err, tt.want) {
			t.Errorf("Verify(%s) = %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestAccept(t *testing.T) {
	h := Header{Role: "mgmt", Version: "1.2.3"}
	for _, tc := range []struct {
		role, running string
		force         bool
		want          error
	}{
		{"mgmt", "1.2.3", false, nil},
		{"mgmt", "1.2.2", false, nil},
		{"mgmt", "1.10.0", false, ErrOlder},
		{"mgmt", "1.10.0", true, nil},
		{"epon", "1.0.0", true, ErrRole},
		{"mgmt", "1.2.3-dev", false, nil},
	} {
		if err := Accept(h, tc.role, tc.running, tc.force); !errors.Is(err, tc.want) && !(err == nil && tc.want == nil) {
			t.Errorf("Accept(%s over %s %s force=%v) = %v, want %v", h.Version, tc.role, tc.running, tc.force, err, tc.want)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{{"1.0.0", "1.0.0", 0}, {"1.0.10", "1.0.9", 1}, {"0.9.0", "1.0.0", -1}, {"1.0.0-rc1", "1.0.0", -1}, {"1.0.0-b", "1.0.0-a", 1}} {
		if got, err := CompareVersions(tc.a, tc.b); err != nil || got != tc.want {
			t.Errorf("CompareVersions(%s, %s) = %d, %v; want %d", tc.a, tc.b, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "1.2", "1.2.x", "01.2.3", "1.2.3.4", "-1.2.3"} {
		if _, err := ParseVersion(bad); err == nil {
			t.Errorf("ParseVersion(%q) = nil error", bad)
		}
	}
	if _, err := MarshalHeader(Header{Role: "mgmt", Version: "nope"}); !errors.Is(err, ErrFormat) {
		t.Errorf("MarshalHeader(bad version) = %v", err)
	}
}

func FuzzParseHeader(f *testing.F) {
	hdr, _ := MarshalHeader(Header{Role: "switch", Version: "0.1.0", KernelLen: 10, InitramfsLen: 20})
	f.Add(hdr)
	f.Add([]byte(Magic))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			return
		}
		again, err := MarshalHeader(h)
		if err != nil {
			t.Fatalf("ParseHeader accepted %+v, MarshalHeader refuses it: %v", h, err)
		}
		if !bytes.Equal(again, b[:HeaderLen]) {
			t.Fatalf("header round trip differs:\n% x\n% x", again, b[:HeaderLen])
		}
	})
}

func FuzzVerify(f *testing.F) {
	key := testKey(3)
	var b bytes.Buffer
	_ = Build(&b, Header{Role: "epon", Version: "0.1.0"}, []byte("k"), []byte("i"), key)
	f.Add(b.Bytes())
	pub := key.Public().(ed25519.PublicKey)
	f.Fuzz(func(t *testing.T, raw []byte) {
		_, _ = Verify(bytes.NewReader(raw), []ed25519.PublicKey{pub})
	})
}
