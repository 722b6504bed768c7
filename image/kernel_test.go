package image

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// x86ish makes data with many E8/E9 bytes followed by plausible rel32 operands, so the
// BCJ filter has calls and jumps to convert.
func x86ish(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 0, n)
	for len(b) < n {
		switch r.IntN(4) {
		case 0:
			b = append(b, 0xe8)
			b = binary.LittleEndian.AppendUint32(b, uint32(int32(r.IntN(1<<20)-1<<19)))
		case 1:
			b = append(b, 0xe9, byte(r.IntN(256)), 0xe8, 0, 0xff)
		default:
			b = append(b, byte(r.IntN(256)), 0x48, 0x89, 0xe5)
		}
	}
	return b[:n]
}

func xzCompress(t *testing.T, data []byte, args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath("xz"); err != nil {
		t.Skip("xz not installed (apt-get install xz-utils)")
	}
	cmd := exec.Command("xz", append([]string{"-c", "--format=xz", "--check=crc32"}, args...)...)
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("xz %v: %v", args, err)
	}
	return out
}

// TestDecodeXZ checks the decoder against the xz tool with the kernel's filter chain
// (x86 BCJ + LZMA2, CRC32) and with LZMA2 alone.
func TestDecodeXZ(t *testing.T) {
	data := x86ish(300_000)
	for _, args := range [][]string{{"--x86", "--lzma2=dict=1MiB"}, {"--lzma2=preset=1"}} {
		s := xzCompress(t, data, args...)
		got, err := decodeXZ(s, len(data))
		if err != nil {
			t.Fatalf("decodeXZ(xz %v) = %v", args, err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("decodeXZ(xz %v) differs from the input", args)
		}
		// One flipped byte in the compressed data: an error (CRC or LZMA2), never a panic or
		// a silently wrong kernel.
		bad := bytes.Clone(s)
		bad[len(bad)/2] ^= 0x40
		if got, err := decodeXZ(bad, len(data)); err == nil && !bytes.Equal(got, data) {
			t.Errorf("decodeXZ(corrupted xz %v) = wrong data, nil error", args)
		}
		if _, err := decodeXZ(s, len(data)-1); !errors.Is(err, ErrKernel) {
			t.Errorf("decodeXZ with a limit below the size = %v, want ErrKernel", err)
		}
	}
}

func TestVmlinuxRefusesNonKernels(t *testing.T) {
	for name, in := range map[string][]byte{
		"empty":     nil,
		"no xz":     []byte("MZ not a kernel"),
		"not ELF":   append([]byte("bzImage header"), xzCompress(t, []byte("plain text, not an ELF file"))...),
		"truncated": xzCompress(t, x86ish(10000), "--x86", "--lzma2")[:100],
	} {
		if _, err := Vmlinux(in); !errors.Is(err, ErrKernel) {
			t.Errorf("Vmlinux(%s) = %v, want ErrKernel", name, err)
		}
	}
}

// TestVmlinuxOfTheBuiltKernel extracts the vmlinux from build/kernel/vmlinuz and compares
// it with build/kernel/vmlinux, which `make kernel` extracts with the xz tool.
func TestVmlinuxOfTheBuiltKernel(t *testing.T) {
	dir := filepath.Join("..", "build", "kernel")
	z, err := os.ReadFile(filepath.Join(dir, "vmlinuz"))
	if err != nil {
		t.Skipf("no built kernel (make kernel): %v", err)
	}
	want, err := os.ReadFile(filepath.Join(dir, "vmlinux"))
	if err != nil {
		t.Skipf("no built vmlinux (make kernel): %v", err)
	}
	got, err := Vmlinux(z)
	if err != nil {
		t.Fatalf("Vmlinux(build/kernel/vmlinuz) = %v", err)
	}
	if sha256.Sum256(got) != sha256.Sum256(want) {
		t.Fatalf("Vmlinux(build/kernel/vmlinuz): %d bytes, differ from build/kernel/vmlinux (%d bytes)", len(got), len(want))
	}
}

func FuzzVmlinux(f *testing.F) {
	f.Add([]byte{})
	f.Add(append([]byte{0xfd, '7', 'z', 'X', 'Z', 0, 0, 1}, make([]byte, 20)...))
	if _, err := exec.LookPath("xz"); err == nil {
		for _, args := range [][]string{{"--x86", "--lzma2"}, {}} {
			cmd := exec.Command("xz", append([]string{"-c", "--check=crc32"}, args...)...)
			cmd.Stdin = bytes.NewReader(append([]byte("\x7fELF"), x86ish(2000)...))
			if out, err := cmd.Output(); err == nil {
				f.Add(out)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := Vmlinux(b)
		if err == nil && !bytes.HasPrefix(out, []byte("\x7fELF")) {
			t.Fatalf("Vmlinux accepted a non-ELF result")
		}
	})
}
