package ponlink_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cgoa/cgoa/netstack/ponlink"
)

func TestPcapWriterLayout(t *testing.T) {
	var b bytes.Buffer
	pw, err := ponlink.NewPcapWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, 60)
	copy(frame, []byte{1, 0x80, 0xc2, 0, 0, 1, 2, 0, 0, 0, 0, 1, 0x88, 0x08})
	at := time.Unix(1700000000, 123456789)
	if err := pw.WriteFrame(at, 0x7fff, true, frame); err != nil {
		t.Fatal(err)
	}
	if err := pw.WriteFrame(at, 0x8000, false, frame); !errors.Is(err, ponlink.ErrLLID) {
		t.Errorf("WriteFrame(LLID 0x8000) = %v, want %v", err, ponlink.ErrLLID)
	}
	if err := pw.WriteFrame(at, 1, false, frame[:10]); !errors.Is(err, ponlink.ErrFrameSize) {
		t.Errorf("WriteFrame(10 bytes) = %v, want %v", err, ponlink.ErrFrameSize)
	}
	if pw.Frames() != 1 {
		t.Errorf("Frames() = %d, want 1", pw.Frames())
	}
	out := b.Bytes()
	if got := binary.LittleEndian.Uint32(out[20:]); got != ponlink.LinkTypeEPON {
		t.Errorf("link type %d, want %d", got, ponlink.LinkTypeEPON)
	}
	rec := out[24:]
	if s, ns := binary.LittleEndian.Uint32(rec[0:]), binary.LittleEndian.Uint32(rec[4:]); s != 1700000000 || ns != 123456789 {
		t.Errorf("timestamp %d.%09d", s, ns)
	}
	n := int(binary.LittleEndian.Uint32(rec[8:]))
	if n != 6+60 || len(rec) != 16+n {
		t.Fatalf("record length %d (file %d bytes), want 66", n, len(out))
	}
	pre := rec[16:22]
	if !bytes.Equal(pre[:5], []byte{0xd5, 0x55, 0x55, 0xff, 0xff}) {
		t.Errorf("preamble % x, want d5 55 55 ff ff", pre[:5])
	}
	if !bytes.Equal(rec[22:], frame) {
		t.Errorf("record does not end with the frame")
	}
}

// TestPcapDecodesInTshark checks the preamble's mode, LLID and CRC-8
// against Wireshark's EPON dissector.
func TestPcapDecodesInTshark(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed (Debian package tshark)")
	}
	path := filepath.Join(t.TempDir(), "t.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	pw, err := ponlink.NewPcapWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	llids := []uint16{0x7fff, 1, 0x0123, 0x4321}
	for i, l := range llids {
		frame := make([]byte, 64+i*100)
		copy(frame, []byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x88, 0xb5})
		frame[20] = byte(i)
		if err := pw.WriteFrame(time.Unix(1700000000, int64(i)*1000), l, i == 0, frame); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(tshark, "-n", "-r", path, "-T", "fields", "-E", "separator=|",
		"-e", "epon.mode", "-e", "epon.llid", "-e", "epon.checksum.status", "-e", "eth.type", "-e", "data.len")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(llids) {
		t.Fatalf("tshark printed %d lines, want %d:\n%s", len(lines), len(llids), out)
	}
	for i, l := range lines {
		mode := "0"
		if i == 0 {
			mode = "1"
		}
		// Checksum status 1 is "good"; the payload is the frame less
		// its 14-byte header, nothing taken for an FCS.
		want := mode + "|" + itoa(int(llids[i])) + "|1|0x88b5|" + itoa(64+i*100-14)
		if l != want {
			t.Errorf("frame %d: tshark = %q, want %q", i+1, l, want)
		}
	}
}

func itoa(v int) string {
	if v == 0 {
		return "0"
	}
	var b []byte
	for ; v > 0; v /= 10 {
		b = append([]byte{byte('0' + v%10)}, b...)
	}
	return string(b)
}
