package oam_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cgoa/cgoa/netstack/mpcp"
	"github.com/cgoa/cgoa/netstack/oam"
)

// pcapFile returns a classic libpcap file (LINKTYPE_ETHERNET) holding frames,
// the i-th stamped start + i ms.
func pcapFile(frames [][]byte, start time.Time) []byte {
	var b bytes.Buffer
	hdr := make([]byte, 24)
	binary.LittleEndian.PutUint32(hdr[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(hdr[4:], 2)
	binary.LittleEndian.PutUint16(hdr[6:], 4)
	binary.LittleEndian.PutUint32(hdr[16:], 65535)
	binary.LittleEndian.PutUint32(hdr[20:], 1)
	b.Write(hdr)
	for i, f := range frames {
		ts := start.Add(time.Duration(i) * time.Millisecond)
		rec := make([]byte, 16)
		binary.LittleEndian.PutUint32(rec[0:], uint32(ts.Unix()))
		binary.LittleEndian.PutUint32(rec[4:], uint32(ts.Nanosecond()/1000))
		binary.LittleEndian.PutUint32(rec[8:], uint32(len(f)))
		binary.LittleEndian.PutUint32(rec[12:], uint32(len(f)))
		b.Write(rec)
		b.Write(f)
	}
	return b.Bytes()
}

// repoRoot walks up from the test's directory to go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the test directory")
		}
		dir = parent
	}
}

type sent struct {
	frame []byte
	want  string // tshark's fields line for this frame (see fieldArgs)
}

// fieldArgs makes tshark print, per frame, MPCP opcode|timestamp|assigned
// port|OAM code|OAM flags.
var fieldArgs = []string{"-T", "fields", "-E", "separator=|",
	"-e", "macc.opcode", "-e", "macc.timestamp", "-e", "macc.reg.assignedport", "-e", "oampdu.code", "-e", "oampdu.flags"}

// session is a sample OLT<->ONU exchange: discovery, registration, the
// first GATE/REPORT, then OAM discovery, a link event, a variable
// read and a remote loopback.
func session(t *testing.T) []sent {
	t.Helper()
	olt := net.HardwareAddr{0x02, 0xc6, 0x0a, 0x00, 0x00, 0x01}
	onu := net.HardwareAddr{0x02, 0xc6, 0x0a, 0x00, 0x10, 0x01}
	const llid = 0x0101
	ts := uint32(1000000)
	var out []sent
	m := func(name string, f *mpcp.Frame) {
		ts += 5000
		f.Timestamp = ts
		b, err := f.MarshalBinary()
		if err != nil {
			t.Fatalf("%s: MarshalBinary() = %v", name, err)
		}
		port := ""
		if r, ok := f.Message.(*mpcp.Register); ok {
			port = fmt.Sprint(r.AssignedPort)
		}
		out = append(out, sent{b, fmt.Sprintf("0x%04x|%d|%s||", uint16(f.Message.Opcode()), ts, port)})
	}
	o := func(name string, p *oam.PDU) {
		b, err := p.MarshalBinary()
		if err != nil {
			t.Fatalf("%s: MarshalBinary() = %v", name, err)
		}
		out = append(out, sent{b, fmt.Sprintf("|||0x%02x|0x%04x", uint8(p.Payload.Code()), uint16(p.Flags))})
	}
	m("GATE", &mpcp.Frame{Destination: mpcp.MACControlAddr, Source: olt, Message: &mpcp.Gate{
		Discovery: true, Grants: []mpcp.Grant{{Start: ts + 10000, Length: 4000}}, SyncTime: 64}})
	m("REGISTER_REQ", &mpcp.Frame{Destination: mpcp.MACControlAddr, Source: onu, Message: &mpcp.RegisterReq{Flags: mpcp.ReqRegister, PendingGrants: 4}})
	m("REGISTER", &mpcp.Frame{Destination: onu, Source: olt, Message: &mpcp.Register{AssignedPort: llid, Flags: mpcp.RegAck, SyncTime: 64, EchoedPendingGrants: 4}})
	m("GATE", &mpcp.Frame{Destination: onu, Source: olt, Message: &mpcp.Gate{Grants: []mpcp.Grant{{Start: ts + 10000, Length: 100}}}})
	m("REGISTER_ACK", &mpcp.Frame{Destination: mpcp.MACControlAddr, Source: onu, Message: &mpcp.RegisterAck{Flags: mpcp.AckAck, EchoedAssignedPort: llid, EchoedSyncTime: 64}})
	m("GATE", &mpcp.Frame{Destination: onu, Source: olt, Message: &mpcp.Gate{Grants: []mpcp.Grant{
		{Start: ts + 10000, Length: 100, ForceReport: true}, {Start: ts + 20000, Length: 2000}}}})
	m("REPORT", &mpcp.Frame{Destination: mpcp.MACControlAddr, Source: onu, Message: &mpcp.Report{QueueSets: []mpcp.QueueSet{
		{Bitmap: 0x01, Lengths: [8]uint16{0: 762}}, {Bitmap: 0x81, Lengths: [8]uint16{0: 1500, 7: 40}}}}})

	local := oam.InfoTLV{Version: 1, Revision: 1, Config: 0x1d, MaxPDUSize: 1518, OUI: oam.OUI{0x00, 0x10, 0x18}, VendorInfo: 1}
	remote := oam.InfoTLV{Version: 1, Revision: 1, Config: 0x1c, MaxPDUSize: 1518, OUI: oam.OUI{0x00, 0x0d, 0xb6}, VendorInfo: 2}
	o("Information", &oam.PDU{Destination: oam.SlowProtocolsAddr, Source: olt, Flags: oam.FlagLocalEvaluating, Payload: &oam.Information{Local: &local}})
	o("Information", &oam.PDU{Destination: oam.SlowProtocolsAddr, Source: onu, Flags: oam.FlagLocalStable | oam.FlagRemoteEvaluating,
		Payload: &oam.Information{Local: &remote, Remote: &local}})
	o("Information", &oam.PDU{Destination: oam.SlowProtocolsAddr, Source: olt, Flags: oam.FlagLocalStable | oam.FlagRemoteStable,
		Payload: &oam.Information{Local: &local, Remote: &remote}})
	o("Event Notification", &oam.PDU{Destination: oam.SlowProtocolsAddr, Source: onu, Flags: oam.FlagLocalStable | oam.FlagRemoteStable,
		Payload: &oam.EventNotification{Sequence: 1, Events: []oam.Event{
			{Type: oam.EventErroredSymbolPeriod, Timestamp: 100, Window: 125000000, Threshold: 1, Errors: 3, ErrorRunningTotal: 3, EventRunningTotal: 1},
			{Type: oam.EventErroredFrame, Timestamp: 100, Window: 10, Threshold: 1, Errors: 2, ErrorRunningTotal: 2, EventRunningTotal: 1},
			{Type: oam.EventErroredFramePeriod, Timestamp: 100, Window: 1488095, Threshold: 1, Errors: 2, ErrorRunningTotal: 2, EventRunningTotal: 1},
			{Type: oam.EventErroredFrameSecondsSummary, Timestamp: 100, Window: 600, Threshold: 1, Errors: 1, ErrorRunningTotal: 1, EventRunningTotal: 1},
		}}})
	o("Variable Request", &oam.PDU{Destination: oam.SlowProtocolsAddr, Source: olt, Flags: oam.FlagLocalStable | oam.FlagRemoteStable,
		Payload: &oam.VariableRequest{Descriptors: []oam.Descriptor{{Branch: oam.BranchAttribute, Leaf: 0x0002}, {Branch: oam.BranchAttribute, Leaf: 0x0005}}}})
	o("Variable Response", &oam.PDU{Destination: oam.SlowProtocolsAddr, Source: onu, Flags: oam.FlagLocalStable | oam.FlagRemoteStable,
		Payload: &oam.VariableResponse{Containers: []oam.Container{
			{Branch: oam.BranchAttribute, Leaf: 0x0002, Value: []byte{0, 0, 0, 0, 0, 0x01, 0xe2, 0x40}},
			{Branch: oam.BranchAttribute, Leaf: 0x0005, Indication: 0x21}}}})
	o("Loopback Control", &oam.PDU{Destination: oam.SlowProtocolsAddr, Source: olt, Flags: oam.FlagLocalStable | oam.FlagRemoteStable,
		Payload: &oam.LoopbackControl{Command: oam.LoopbackEnable}})
	o("Loopback Control", &oam.PDU{Destination: oam.SlowProtocolsAddr, Source: olt, Flags: oam.FlagLocalStable | oam.FlagRemoteStable,
		Payload: &oam.LoopbackControl{Command: oam.LoopbackDisable}})
	o("Information", &oam.PDU{Destination: oam.SlowProtocolsAddr, Source: onu, Flags: oam.FlagDyingGasp | oam.FlagLocalStable | oam.FlagRemoteStable,
		Payload: &oam.Information{Local: &remote, Remote: &local}})
	return out
}

// TestCaptureDecodesInTshark writes the hand-built sample session to
// build/pcap/oam-codec.pcap (the OLT<->ONU session the real state
// machines run is build/pcap/epon.pcap, blades/epon/olt) and checks that Wireshark's dissectors read every
// frame as sent: no malformed frames, no expert errors.
func TestCaptureDecodesInTshark(t *testing.T) {
	frames := session(t)
	var raw [][]byte
	for _, s := range frames {
		raw = append(raw, s.frame)
	}
	file := pcapFile(raw, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	path := filepath.Join(t.TempDir(), "epon.pcap")
	if err := os.WriteFile(path, file, 0o644); err != nil {
		t.Fatal(err)
	}
	if root, err := repoRoot(); err == nil {
		dir := filepath.Join(root, "build", "pcap")
		if err := os.MkdirAll(dir, 0o755); err == nil {
			if err := os.WriteFile(filepath.Join(dir, "oam-codec.pcap"), file, 0o644); err != nil {
				t.Logf("copy to build/pcap: %v", err)
			}
		}
	}

	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed (Debian package tshark); capture written but not decoded")
	}
	run := func(args ...string) string {
		t.Helper()
		var stderr bytes.Buffer
		cmd := exec.Command(tshark, append([]string{"-n", "-r", path}, args...)...)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tshark %v: %v\n%s", args, err, stderr.Bytes())
		}
		return string(out)
	}

	verbose := run("-V")
	if strings.Contains(verbose, "Malformed") || strings.Contains(verbose, "[Expert Info (Error") {
		t.Errorf("tshark -V reports malformed frames:\n%s", verbose)
	}
	expert := run("-q", "-z", "expert")
	if regexp.MustCompile(`(?m)^Errors \(`).MatchString(expert) {
		t.Errorf("tshark -z expert reports errors:\n%s", expert)
	}

	// One line per frame; opcode, timestamp, LLID, code and flags must be
	// the ones sent.
	lines := strings.Split(strings.TrimSpace(run(fieldArgs...)), "\n")
	if len(lines) != len(frames) {
		t.Fatalf("tshark shows %d frames, want %d:\n%s", len(lines), len(frames), strings.Join(lines, "\n"))
	}
	for i, l := range lines {
		if l != frames[i].want {
			t.Errorf("frame %d: tshark fields = %q, want %q", i+1, l, frames[i].want)
		}
	}
}
