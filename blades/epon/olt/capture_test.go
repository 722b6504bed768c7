package olt_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cgoa/cgoa/blades/epon/olt"
	"github.com/cgoa/cgoa/blades/epon/onu"
	"github.com/cgoa/cgoa/blades/epon/onu/vpon"
	"github.com/cgoa/cgoa/netstack/mpcp"
	"github.com/cgoa/cgoa/netstack/oam"
	"github.com/cgoa/cgoa/netstack/ponlink"
)

// tapped is one frame seen at the OLT's optical interface.
type tapped struct {
	at    int64 // ns of virtual time, the frame's first bit at the OLT
	seq   int
	llid  uint16
	mode  bool
	up    bool
	frame []byte
}

// tap sits between the OLT and the virtual PON and records every frame
// both ways, as a splitter-side capture would.
type tap struct {
	pon  *vpon.PON
	down interface {
		Send(uint16, bool, []byte) error
	}
	olt    *olt.OLT
	frames []tapped
}

func (t *tap) record(at int64, llid uint16, mode, up bool, frame []byte) {
	t.frames = append(t.frames, tapped{at: at, seq: len(t.frames), llid: llid, mode: mode, up: up, frame: append([]byte(nil), frame...)})
}

// Send is the OLT's Port: downstream frames.
func (t *tap) Send(llid uint16, mode bool, frame []byte) error {
	t.record(int64(t.pon.Now()), llid, mode, false, frame)
	return t.down.Send(llid, mode, frame)
}

// Receive and Tick are the PON's view of the OLT: upstream frames.
func (t *tap) Receive(llid uint16, frame []byte, arrival int64) {
	t.record(arrival*16, llid, false, true, frame)
	t.olt.Receive(llid, frame, arrival)
}

func (t *tap) Tick() int64 { return t.olt.Tick() }

// TestSessionCapture runs a real OLT<->ONU session in virtual time -
// discovery, registration, GATE/REPORT with upstream data, OAM discovery,
// an event notification, a variable request and response, remote loopback
// on and off, a dying gasp - captures every frame both ways into
// build/pcap/epon.pcap (LINKTYPE_EPON: each frame with its LLID) and
// checks that tshark decodes every frame as the OLT and ONUs sent it.
func TestSessionCapture(t *testing.T) {
	p := vpon.New(vpon.Config{Seed: 21})
	tp := &tap{pon: p, down: p.OLTPort()}
	o, err := olt.New(olt.Config{Name: "pon0", MAC: oltMAC(), OUI: oam.OUI{0x02, 0xc6, 0x0a}}, p.OLTClock(), tp)
	if err != nil {
		t.Fatal(err)
	}
	tp.olt = o
	var alarms []olt.Alarm
	o.OnAlarm = func(a olt.Alarm) { alarms = append(alarms, a) }
	count := func(k olt.AlarmKind) int {
		n := 0
		for _, a := range alarms {
			if a.Kind == k {
				n++
			}
		}
		return n
	}
	var onus []*onu.ONU
	for i, km := range []float64{1.5, 12} {
		u, err := p.AddONU(onu.Config{MAC: onuMAC(i), VendorOUI: oam.OUI{0x02, 0x0e, 0x00}}, km)
		if err != nil {
			t.Fatal(err)
		}
		u.PowerOn()
		onus = append(onus, u)
	}
	p.SetOLT(tp)
	run := func(limit time.Duration, what string, cond func() bool) {
		t.Helper()
		if !p.RunWhile(p.Now()+limit, func() bool { return !cond() }) {
			t.Fatalf("at %v: %s did not happen within %v", p.Now(), what, limit)
		}
	}
	run(time.Second, "registration and OAM discovery", func() bool { return count(olt.AlarmOAMUp) == 2 })
	llid := onus[0].LLID()

	// Upstream data: numbered frames, counted without loss at the OLT.
	p.At(p.Now(), func() {
		for seq := range uint64(5) {
			if err := onus[0].Enqueue(onu.NumberedFrame(oltMAC(), onuMAC(0), 0, seq, 200)); err != nil {
				t.Errorf("Enqueue() = %v", err)
			}
		}
	})
	run(50*time.Millisecond, "upstream data", func() bool { v, _ := o.ONU(llid); return v.Stats.RxDataFrames == 5 })

	// A link event, a variable read, loopback on and off, a dying gasp.
	ev := oam.Event{Type: oam.EventErroredFrame, Timestamp: 20, Window: 10, Threshold: 1, Errors: 3, ErrorRunningTotal: 3, EventRunningTotal: 1}
	p.At(p.Now(), func() {
		if !onus[0].LinkEvent(ev) {
			t.Error("LinkEvent() = false")
		}
	})
	run(50*time.Millisecond, "link event alarm", func() bool { return count(olt.AlarmLinkEvent) == 1 })
	p.At(p.Now(), func() {
		if err := o.RequestVariables(llid, []oam.Descriptor{{Branch: oam.BranchAttribute, Leaf: 0x0002}, {Branch: oam.BranchAttribute, Leaf: 0x0005}, {Branch: oam.BranchAttribute, Leaf: 0x0099}}); err != nil {
			t.Errorf("RequestVariables() = %v", err)
		}
	})
	run(50*time.Millisecond, "variable response", func() bool { v, _ := o.ONU(llid); return v.Stats.OAM.VariableResponseRx == 1 })
	p.At(p.Now(), func() {
		if err := o.SetLoopback(llid, true); err != nil {
			t.Errorf("SetLoopback(on) = %v", err)
		}
	})
	run(50*time.Millisecond, "loopback on", func() bool { v, _ := o.ONU(llid); return v.Loopback })
	// A test frame sent down comes back up unchanged.
	probe := onu.NumberedFrame(onuMAC(0), oltMAC(), 7, 0, 128)
	var back []byte
	o.OnData = func(l uint16, f []byte, _ int64) {
		if l == llid {
			back = append([]byte(nil), f...)
		}
	}
	p.At(p.Now(), func() { _ = tp.Send(llid, false, probe) })
	run(50*time.Millisecond, "looped-back frame", func() bool { return back != nil })
	if !bytes.Equal(back, probe) || onus[0].Stats().LoopedBack != 1 {
		t.Errorf("looped back %x (ONU count %d), want the probe", back, onus[0].Stats().LoopedBack)
	}
	p.At(p.Now(), func() {
		if err := o.SetLoopback(llid, false); err != nil {
			t.Errorf("SetLoopback(off) = %v", err)
		}
	})
	run(50*time.Millisecond, "loopback off", func() bool { v, _ := o.ONU(llid); return !v.Loopback && !onus[0].Loopback() })
	p.At(p.Now(), func() {
		if !onus[1].DyingGasp() {
			t.Error("DyingGasp() = false")
		}
	})
	run(50*time.Millisecond, "dying gasp alarm", func() bool { return count(olt.AlarmDyingGasp) == 1 })
	p.RunUntil(p.Now() + 5*time.Millisecond)
	if v, _ := o.ONU(llid); v.Stats.RxDataLost != 0 || v.Stats.RxTestFrames != 6 {
		t.Errorf("OLT counted %d test frames, %d lost; want 6 (5 + the looped probe), 0", v.Stats.RxTestFrames, v.Stats.RxDataLost)
	}

	// Write the capture in time order.
	frames := tp.frames
	slices.SortStableFunc(frames, func(a, b tapped) int {
		if a.at != b.at {
			return int(a.at - b.at)
		}
		return a.seq - b.seq
	})
	var file bytes.Buffer
	pw, err := ponlink.NewPcapWriter(&file)
	if err != nil {
		t.Fatal(err)
	}
	epoch := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, f := range frames {
		if err := pw.WriteFrame(epoch.Add(time.Duration(f.at)), f.llid, f.mode, f.frame); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "epon.pcap")
	if err := os.WriteFile(path, file.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if root, err := repoRoot(); err == nil {
		dir := filepath.Join(root, "build", "pcap")
		if err := os.MkdirAll(dir, 0o755); err == nil {
			if err := os.WriteFile(filepath.Join(dir, "epon.pcap"), file.Bytes(), 0o644); err != nil {
				t.Logf("copy to build/pcap: %v", err)
			}
		}
	}

	// What was sent, frame by frame, and that the session has it all.
	want := make([]string, len(frames))
	seen := map[string]int{}
	for i, f := range frames {
		want[i] = expectFields(t, f)
		seen[kindOf(t, f)]++
	}
	for _, k := range []string{"GATE discovery", "GATE", "REGISTER_REQ", "REGISTER", "REGISTER_ACK", "REPORT",
		"Information", "Event Notification", "Variable Request", "Variable Response", "Loopback Control",
		"Information dying gasp", "data"} {
		if seen[k] == 0 {
			t.Errorf("the session has no %s frame (kinds %v)", k, seen)
		}
	}
	t.Logf("%d frames captured: %v", len(frames), seen)

	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed (Debian package tshark); capture written but not decoded")
	}
	ts := func(args ...string) string {
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
	verbose := ts("-V")
	if strings.Contains(verbose, "Malformed") || strings.Contains(verbose, "[Expert Info (Error") {
		t.Errorf("tshark -V reports malformed frames or errors:\n%s", firstLinesWith(verbose, "Malformed", "Expert Info (Error"))
	}
	if expert := ts("-q", "-z", "expert"); regexp.MustCompile(`(?m)^Errors \(`).MatchString(expert) {
		t.Errorf("tshark -z expert reports errors:\n%s", expert)
	}
	lines := strings.Split(strings.TrimSpace(ts("-T", "fields", "-E", "separator=|",
		"-e", "epon.mode", "-e", "epon.llid", "-e", "epon.checksum.status", "-e", "eth.type",
		"-e", "macc.opcode", "-e", "oampdu.code", "-e", "oampdu.flags")), "\n")
	if len(lines) != len(frames) {
		t.Fatalf("tshark shows %d frames, want %d", len(lines), len(frames))
	}
	bad := 0
	for i, l := range lines {
		if l != want[i] && bad < 10 {
			bad++
			t.Errorf("frame %d: tshark fields = %q, want %q", i+1, l, want[i])
		}
	}
}

// expectFields is the tshark fields line (see TestSessionCapture) for a
// frame as our own codecs read it.
func expectFields(t *testing.T, f tapped) string {
	t.Helper()
	mode := "0"
	if f.mode {
		mode = "1"
	}
	et := binary.BigEndian.Uint16(f.frame[12:14])
	s := fmt.Sprintf("%s|%d|1|0x%04x|", mode, f.llid, et)
	switch et {
	case uint16(mpcp.EtherType):
		var m mpcp.Frame
		if err := m.UnmarshalBinary(f.frame); err != nil {
			t.Fatalf("captured MPCPDU does not decode: %v", err)
		}
		s += fmt.Sprintf("0x%04x||", uint16(m.Message.Opcode()))
	case uint16(oam.EtherType):
		var p oam.PDU
		if err := p.UnmarshalBinary(f.frame); err != nil {
			t.Fatalf("captured OAMPDU does not decode: %v", err)
		}
		s += fmt.Sprintf("|0x%02x|0x%04x", uint8(p.Payload.Code()), uint16(p.Flags))
	default:
		s += "||"
	}
	return s
}

// kindOf names a captured frame for the completeness check.
func kindOf(t *testing.T, f tapped) string {
	t.Helper()
	switch binary.BigEndian.Uint16(f.frame[12:14]) {
	case uint16(mpcp.EtherType):
		var m mpcp.Frame
		if err := m.UnmarshalBinary(f.frame); err != nil {
			t.Fatal(err)
		}
		if g, ok := m.Message.(*mpcp.Gate); ok && g.Discovery {
			return "GATE discovery"
		}
		return m.Message.Opcode().String()
	case uint16(oam.EtherType):
		var p oam.PDU
		if err := p.UnmarshalBinary(f.frame); err != nil {
			t.Fatal(err)
		}
		if p.Flags&oam.FlagDyingGasp != 0 {
			return p.Payload.Code().String() + " dying gasp"
		}
		return p.Payload.Code().String()
	}
	return "data"
}

func firstLinesWith(text string, subs ...string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		for _, s := range subs {
			if strings.Contains(l, s) && len(out) < 20 {
				out = append(out, l)
			}
		}
	}
	return strings.Join(out, "\n")
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
