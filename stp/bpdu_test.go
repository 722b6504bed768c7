package stp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var (
	macA = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0x0a}
	macB = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0x0b}
)

func mustBridgeID(t testing.TB, prio uint16, mac net.HardwareAddr) BridgeID {
	t.Helper()
	id, err := NewBridgeID(prio, mac)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func sampleConfig(t testing.TB) *BPDU {
	return &BPDU{
		Type:         TypeConfig,
		Flags:        FlagTC | FlagTCA,
		RootID:       mustBridgeID(t, 0x1000, macA),
		RootPathCost: 20000,
		BridgeID:     mustBridgeID(t, 0x8001, macB),
		PortID:       0x8002,
		MessageAge:   256,
		MaxAge:       20 * 256,
		HelloTime:    2 * 256,
		ForwardDelay: 15 * 256,
	}
}

// A configuration BPDU written out by hand from 802.1D-2004 9.3.1.
var configWire = []byte{
	0x42, 0x42, 0x03, // LLC
	0x00, 0x00, // protocol identifier
	0x00,                                           // version
	0x00,                                           // type: config
	0x81,                                           // flags: TCA, TC
	0x10, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, // root id
	0x00, 0x00, 0x4e, 0x20, // root path cost 20000
	0x80, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0b, // bridge id
	0x80, 0x02, // port id
	0x01, 0x00, // message age 1 s
	0x14, 0x00, // max age 20 s
	0x02, 0x00, // hello 2 s
	0x0f, 0x00, // forward delay 15 s
}

func TestMarshalLLCConfigMatchesSpecLayout(t *testing.T) {
	got, err := MarshalLLC(sampleConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, configWire) {
		t.Errorf("MarshalLLC(config) = % x, want % x", got, configWire)
	}
}

func TestParseLLC(t *testing.T) {
	tcn := []byte{0x42, 0x42, 0x03, 0, 0, 0, 0x80}
	rst := append(append([]byte{}, configWire...), 0)
	rst[5], rst[6], rst[7] = VersionRSTP, byte(TypeRST), 0x3c
	mst := append([]byte{}, configWire...)
	mst[5], mst[6] = VersionMSTP, byte(TypeRST)
	stale := append([]byte{}, configWire...)
	stale[30], stale[31] = 0x14, 0x00 // message age = max age
	padded := append(append([]byte{}, tcn...), make([]byte, 39)...)

	tests := []struct {
		name    string
		in      []byte
		want    BPDU
		wantErr error
	}{
		{name: "config", in: configWire, want: *sampleConfig(t)},
		{name: "tcn", in: tcn, want: BPDU{Type: TypeTCN}},
		{name: "tcn padded", in: padded, want: BPDU{Type: TypeTCN}},
		{name: "rst", in: rst, want: BPDU{Version: 2, Type: TypeRST, Flags: 0x3c,
			RootID: sampleConfig(t).RootID, RootPathCost: 20000, BridgeID: sampleConfig(t).BridgeID,
			PortID: 0x8002, MessageAge: 256, MaxAge: 20 * 256, HelloTime: 512, ForwardDelay: 15 * 256}},
		{name: "mst from 35 octets", in: mst, want: BPDU{Version: 3, Type: TypeRST, Flags: 0x81,
			RootID: sampleConfig(t).RootID, RootPathCost: 20000, BridgeID: sampleConfig(t).BridgeID,
			PortID: 0x8002, MessageAge: 256, MaxAge: 20 * 256, HelloTime: 512, ForwardDelay: 15 * 256}},
		{name: "empty", in: nil, wantErr: ErrTruncated},
		{name: "llc only", in: configWire[:3], wantErr: ErrTruncated},
		{name: "config truncated", in: configWire[:37], wantErr: ErrTruncated},
		{name: "rstp 35 octets", in: rst[:38], wantErr: ErrTruncated},
		{name: "bad dsap", in: append([]byte{0x43}, configWire[1:]...), wantErr: ErrBadLLC},
		{name: "bad control", in: append([]byte{0x42, 0x42, 0x13}, configWire[3:]...), wantErr: ErrBadLLC},
		{name: "bad protocol", in: []byte{0x42, 0x42, 0x03, 0, 1, 0, 0x80}, wantErr: ErrBadProtocol},
		{name: "unknown type", in: []byte{0x42, 0x42, 0x03, 0, 0, 0, 0x81}, wantErr: ErrUnknownType},
		{name: "stale message age", in: stale, wantErr: ErrMessageAge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseLLC(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParseLLC(% x) error = %v, want %v", tt.in, err, tt.wantErr)
			}
			if err != nil {
				if !strings.HasPrefix(err.Error(), "stp: ") {
					t.Errorf("ParseLLC error %q lacks context", err)
				}
				return
			}
			if *got != tt.want {
				t.Errorf("ParseLLC(% x) = %+v, want %+v", tt.in, *got, tt.want)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	rst := *sampleConfig(t)
	rst.Type, rst.Version, rst.Flags = TypeRST, VersionRSTP, FlagProposal|FlagLearning|FlagForwarding|FlagAgreement|0x0c
	for _, b := range []BPDU{*sampleConfig(t), {Type: TypeTCN}, rst} {
		frame, err := MarshalFrame(macB, &b)
		if err != nil {
			t.Fatalf("MarshalFrame(%+v): %v", b, err)
		}
		if len(frame) != 60 {
			t.Errorf("MarshalFrame(%v) length = %d, want 60 (padded minimum)", b.Type, len(frame))
		}
		if got, want := int(binary.BigEndian.Uint16(frame[12:14])), map[Type]int{TypeConfig: 38, TypeTCN: 7, TypeRST: 39}[b.Type]; got != want {
			t.Errorf("MarshalFrame(%v) length field = %d, want %d", b.Type, got, want)
		}
		got, src, err := ParseFrame(frame)
		if err != nil {
			t.Fatalf("ParseFrame(MarshalFrame(%v)): %v", b.Type, err)
		}
		if *got != b || !bytes.Equal(src, macB) {
			t.Errorf("ParseFrame(MarshalFrame(%+v)) = %+v from %v, want the same from %v", b, *got, src, macB)
		}
	}
}

func TestMarshalErrors(t *testing.T) {
	if _, err := MarshalLLC(&BPDU{Type: 0x55}); !errors.Is(err, ErrUnknownType) {
		t.Errorf("MarshalLLC(type 0x55) error = %v, want %v", err, ErrUnknownType)
	}
	if _, err := MarshalLLC(&BPDU{Type: TypeRST, Version: VersionMSTP}); !errors.Is(err, ErrNotEncodable) {
		t.Errorf("MarshalLLC(MST) error = %v, want %v", err, ErrNotEncodable)
	}
	if _, err := MarshalFrame(net.HardwareAddr{1, 2}, sampleConfig(t)); err == nil {
		t.Error("MarshalFrame(2-octet source) succeeded, want error")
	}
}

func TestParseFrameErrors(t *testing.T) {
	good, err := MarshalFrame(macA, sampleConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte{}, good...)) }
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"short header", good[:10], ErrTruncated},
		{"unicast destination", mod(func(b []byte) []byte { b[0] = 0x02; return b }), ErrNotBPDU},
		{"ethertype", mod(func(b []byte) []byte { b[12], b[13] = 0x08, 0x00; return b }), ErrNotBPDU},
		{"length between 1500 and 1536", mod(func(b []byte) []byte { b[12], b[13] = 0x05, 0xff; return b }), ErrBadLengthType},
		{"length past payload", mod(func(b []byte) []byte { b[12], b[13] = 0x01, 0x00; return b }), ErrTruncated},
		{"length cuts the BPDU", mod(func(b []byte) []byte { b[12], b[13] = 0, 20; return b }), ErrTruncated},
		{"bad llc", mod(func(b []byte) []byte { b[16] = 0xf3; return b }), ErrBadLLC},
	}
	for _, tt := range tests {
		if _, _, err := ParseFrame(tt.in); !errors.Is(err, tt.want) {
			t.Errorf("%s: ParseFrame() error = %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestIDs(t *testing.T) {
	id := mustBridgeID(t, 0x8001, net.HardwareAddr{0, 0x11, 0x22, 0x33, 0x44, 0xff})
	if got, want := id.String(), "8001.0011223344ff"; got != want {
		t.Errorf("BridgeID.String() = %q, want %q", got, want)
	}
	if id.Priority() != 0x8000 || id.SystemIDExtension() != 1 || id.MAC().String() != "00:11:22:33:44:ff" {
		t.Errorf("BridgeID parts = %#x %d %v, want 0x8000 1 00:11:22:33:44:ff", id.Priority(), id.SystemIDExtension(), id.MAC())
	}
	var back BridgeID
	if err := back.UnmarshalText([]byte(id.String())); err != nil || back != id {
		t.Errorf("UnmarshalText(%q) = %v, %v; want %v", id, back, err, id)
	}
	if err := back.UnmarshalText([]byte("8000-00")); err == nil {
		t.Error("UnmarshalText(8000-00) succeeded, want error")
	}
	if _, err := NewBridgeID(1, net.HardwareAddr{1}); err == nil {
		t.Error("NewBridgeID(short MAC) succeeded, want error")
	}
	pid, err := NewPortID(128, 7)
	if err != nil || pid != 0x8007 || pid.String() != "128.7" {
		t.Errorf("NewPortID(128, 7) = %#x %q, %v; want 0x8007 \"128.7\"", uint16(pid), pid, err)
	}
	for _, bad := range []struct {
		prio uint8
		n    uint16
	}{{127, 1}, {128, 0}, {128, 4096}} {
		if _, err := NewPortID(bad.prio, bad.n); err == nil {
			t.Errorf("NewPortID(%d, %d) succeeded, want error", bad.prio, bad.n)
		}
	}
	if tm, err := TimeOf(1500 * time.Millisecond); err != nil || tm != 384 {
		t.Errorf("TimeOf(1.5s) = %d, %v; want 384", tm, err)
	}
	if _, err := TimeOf(300 * time.Second); err == nil {
		t.Error("TimeOf(300s) succeeded, want error")
	}
}

func TestDefaultPathCost(t *testing.T) {
	// 802.1D-2004 table 17-3.
	for _, tt := range []struct {
		bps  uint64
		want uint32
	}{
		{100_000, 200_000_000}, {1_000_000, 20_000_000}, {10_000_000, 2_000_000},
		{100_000_000, 200_000}, {1_000_000_000, 20_000}, {10_000_000_000, 2_000},
		{100_000_000_000, 200}, {1_000_000_000_000, 20}, {10_000_000_000_000, 2},
		{1, 200_000_000}, {100_000_000_000_000, 1}, {0, 200_000},
	} {
		if got := DefaultPathCost(tt.bps); got != tt.want {
			t.Errorf("DefaultPathCost(%d) = %d, want %d", tt.bps, got, tt.want)
		}
	}
}

func FuzzParseFrame(f *testing.F) {
	for _, b := range []BPDU{*sampleConfig(f), {Type: TypeTCN}} {
		fr, err := MarshalFrame(macA, &b)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(fr)
	}
	rst := *sampleConfig(f)
	rst.Type, rst.Version = TypeRST, VersionRSTP
	fr, _ := MarshalFrame(macA, &rst)
	f.Add(fr)
	f.Add(fr[:20])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		b, src, err := ParseFrame(in)
		if err != nil {
			if b != nil || src != nil {
				t.Fatalf("ParseFrame error %v with non-nil result", err)
			}
			return
		}
		if b.Type == TypeRST && b.Version != VersionRSTP {
			return // MST: recognised, not re-encodable
		}
		// What decodes must re-encode and decode to the same BPDU.
		again, err := MarshalFrame(src, b)
		if err != nil {
			t.Fatalf("MarshalFrame(%+v): %v", b, err)
		}
		b2, _, err := ParseFrame(again)
		if err != nil || *b2 != *b {
			t.Fatalf("ParseFrame(MarshalFrame(%+v)) = %+v, %v", b, b2, err)
		}
	})
}

// writePcap writes Ethernet frames to a classic pcap file.
func writePcap(t *testing.T, path string, frames [][]byte) {
	t.Helper()
	var buf bytes.Buffer
	hdr := make([]byte, 24)
	binary.LittleEndian.PutUint32(hdr[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(hdr[4:], 2)
	binary.LittleEndian.PutUint16(hdr[6:], 4)
	binary.LittleEndian.PutUint32(hdr[16:], 65535)
	binary.LittleEndian.PutUint32(hdr[20:], 1) // LINKTYPE_ETHERNET
	buf.Write(hdr)
	for i, fr := range frames {
		rec := make([]byte, 16)
		binary.LittleEndian.PutUint32(rec[0:], uint32(1700000000+i))
		binary.LittleEndian.PutUint32(rec[8:], uint32(len(fr)))
		binary.LittleEndian.PutUint32(rec[12:], uint32(len(fr)))
		buf.Write(rec)
		buf.Write(fr)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestTsharkDecodes checks our frames against an independent decoder.
func TestTsharkDecodes(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed: cannot cross-check BPDUs against Wireshark's dissector")
	}
	rst := *sampleConfig(t)
	rst.Type, rst.Version, rst.Flags = TypeRST, VersionRSTP, FlagProposal|0x0c|FlagLearning
	plain := *sampleConfig(t)
	plain.Flags = 0
	bpdus := []BPDU{*sampleConfig(t), plain, {Type: TypeTCN}, rst}
	var frames [][]byte
	for _, b := range bpdus {
		fr, err := MarshalFrame(macB, &b)
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, fr)
	}
	// Also frames made by a running bridge.
	frames = append(frames, bridgeFrames(t)...)
	path := filepath.Join(t.TempDir(), "bpdu.pcap")
	writePcap(t, path, frames)

	out, err := exec.Command(tshark, "-r", path, "-V").CombinedOutput()
	if err != nil {
		t.Fatalf("tshark -r %s -V: %v\n%s", path, err, out)
	}
	text := string(out)
	n := 0
	for _, l := range strings.Split(text, "\n") {
		if l == "Spanning Tree Protocol" { // the protocol tree's top line
			n++
		}
	}
	if n != len(frames) {
		t.Errorf("tshark decoded %d frames as STP, want %d\n%s", n, len(frames), text)
	}
	for _, bad := range []string{"Malformed", "Expert Info (Error", "Expert Info (Warning"} {
		if strings.Contains(text, bad) {
			t.Errorf("tshark output contains %q:\n%s", bad, text)
		}
	}

	// The fields as Wireshark reads them must equal what we encoded.
	out, err = exec.Command(tshark, "-r", path, "-T", "fields", "-E", "separator=,",
		"-e", "stp.protocol", "-e", "stp.version", "-e", "stp.type", "-e", "stp.flags",
		"-e", "stp.root.hw", "-e", "stp.root.cost", "-e", "stp.bridge.hw", "-e", "stp.port",
		"-e", "stp.msg_age", "-e", "stp.max_age", "-e", "stp.hello", "-e", "stp.forward").Output()
	if err != nil {
		t.Fatalf("tshark -T fields: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	want := []string{
		"0x0000,0,0x00,0x81,02:00:00:00:00:0a,20000,02:00:00:00:00:0b,0x8002,1,20,2,15",
		"0x0000,0,0x00,0x00,02:00:00:00:00:0a,20000,02:00:00:00:00:0b,0x8002,1,20,2,15",
		"0x0000,0,0x80,,,,,,,,,",
		"0x0000,2,0x02,0x1e,02:00:00:00:00:0a,20000,02:00:00:00:00:0b,0x8002,1,20,2,15",
	}
	for i, w := range want {
		if i >= len(lines) || lines[i] != w {
			got := ""
			if i < len(lines) {
				got = lines[i]
			}
			t.Errorf("tshark fields of frame %d = %q, want %q", i+1, got, w)
		}
	}
}

// bridgeFrames runs two bridges into a topology change and returns frames
// the bridges sent, TC/TCA flags included.
func bridgeFrames(t *testing.T) [][]byte {
	t.Helper()
	n := newNet(t, []BridgeID{id(t, 1), id(t, 2)}, Config{})
	n.link(0, 1, 1, 1)
	n.link(0, 2, 1, 2)
	n.lan(attach{1, 3}) // a host LAN, so bridge 1 reports topology changes
	n.run(60 * time.Second)
	n.cut(0)
	n.run(2*DefaultForwardDelay + time.Second)
	var frames [][]byte
	var kinds = map[string]bool{}
	for _, fr := range n.wire {
		b, _, err := ParseFrame(fr)
		if err != nil {
			t.Fatalf("bridge sent an undecodable frame: %v", err)
		}
		k := fmt.Sprint(b.Type, uint8(b.Flags))
		if !kinds[k] {
			kinds[k] = true
			frames = append(frames, fr)
		}
	}
	if len(frames) < 3 {
		t.Fatalf("bridges sent only %d kinds of BPDU (%v), want config, TC config and TCN", len(frames), kinds)
	}
	return frames
}
