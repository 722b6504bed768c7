package mpcp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"
)

var (
	oltMAC = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}
	onuMAC = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x10, 0x01}
)

// sampleFrames is one of each message with fields that exercise every flag.
func sampleFrames() map[string]*Frame {
	return map[string]*Frame{
		"discovery gate": {MACControlAddr, oltMAC, 0x01020304, &Gate{
			Discovery: true, Grants: []Grant{{Start: 0x01020400, Length: 0x1000}}, SyncTime: 0x0040}},
		"gate 4 grants": {onuMAC, oltMAC, 100, &Gate{Grants: []Grant{
			{Start: 1000, Length: 10, ForceReport: true},
			{Start: 2000, Length: 20},
			{Start: 3000, Length: 30, ForceReport: true},
			{Start: 0xfffffff0, Length: 0xffff, ForceReport: true},
		}}},
		"gate no grant": {onuMAC, oltMAC, 5, &Gate{}},
		"report": {MACControlAddr, onuMAC, 7, &Report{QueueSets: []QueueSet{
			{Bitmap: 0x81, Lengths: [8]uint16{0: 1500, 7: 65535}},
			{Bitmap: 0x01, Lengths: [8]uint16{0: 750}},
		}}},
		"report full": {MACControlAddr, onuMAC, 7, &Report{QueueSets: []QueueSet{
			{Bitmap: 0xff, Lengths: [8]uint16{1, 2, 3, 4, 5, 6, 7, 8}},
			{Bitmap: 0xff, Lengths: [8]uint16{9, 10, 11, 12, 13, 14, 15, 16}},
			{Bitmap: 0x03, Lengths: [8]uint16{17, 18}},
		}}},
		"register req":   {MACControlAddr, onuMAC, 9, &RegisterReq{Flags: ReqRegister, PendingGrants: 4}},
		"deregister req": {MACControlAddr, onuMAC, 9, &RegisterReq{Flags: ReqDeregister, PendingGrants: 1}},
		"register":       {onuMAC, oltMAC, 11, &Register{AssignedPort: 0x0101, Flags: RegAck, SyncTime: 0x40, EchoedPendingGrants: 4}},
		"register nack":  {onuMAC, oltMAC, 11, &Register{AssignedPort: 0x7fff, Flags: RegNack}},
		"register ack":   {MACControlAddr, onuMAC, 12, &RegisterAck{Flags: AckAck, EchoedAssignedPort: 0x0101, EchoedSyncTime: 0x40}},
	}
}

func TestRoundTrip(t *testing.T) {
	for name, f := range sampleFrames() {
		t.Run(name, func(t *testing.T) {
			b, err := f.MarshalBinary()
			if err != nil {
				t.Fatalf("MarshalBinary() = %v", err)
			}
			if len(b) != FrameLen {
				t.Errorf("len(MarshalBinary()) = %d, want %d", len(b), FrameLen)
			}
			var g Frame
			if err := g.UnmarshalBinary(b); err != nil {
				t.Fatalf("UnmarshalBinary(%x) = %v", b, err)
			}
			if !reflect.DeepEqual(&g, f) {
				t.Errorf("UnmarshalBinary(MarshalBinary(%+v)) = %+v", f.Message, g.Message)
			}
			// With an FCS appended the decoder still reads the same frame.
			var h Frame
			if err := h.UnmarshalBinary(append(b, 1, 2, 3, 4)); err != nil || !reflect.DeepEqual(&h, f) {
				t.Errorf("UnmarshalBinary(frame+FCS) = %+v, %v", h.Message, err)
			}
		})
	}
}

// TestWireLayout pins the byte layout against the clause 64 figures, so
// a symmetric encode/decode bug cannot pass the round trip.
func TestWireLayout(t *testing.T) {
	tests := []struct {
		name string
		f    *Frame
		want string // hex of bytes 12.. (type, opcode, timestamp, data prefix)
	}{
		{"discovery gate", &Frame{MACControlAddr, oltMAC, 0x01020304, &Gate{Discovery: true,
			Grants: []Grant{{Start: 0x0a0b0c0d, Length: 0x1234}}, SyncTime: 0x0040}},
			"8808" + "0002" + "01020304" + "09" + "0a0b0c0d" + "1234" + "0040" + "00"},
		{"gate force report 2nd", &Frame{onuMAC, oltMAC, 1, &Gate{Grants: []Grant{
			{Start: 1, Length: 2}, {Start: 3, Length: 4, ForceReport: true}}}},
			"8808" + "0002" + "00000001" + "22" + "00000001" + "0002" + "00000003" + "0004" + "00"},
		{"report", &Frame{MACControlAddr, onuMAC, 2, &Report{QueueSets: []QueueSet{{Bitmap: 0x05, Lengths: [8]uint16{0: 0x0102, 2: 0x0304}}}}},
			"8808" + "0003" + "00000002" + "01" + "05" + "0102" + "0304" + "00"},
		{"register req", &Frame{MACControlAddr, onuMAC, 3, &RegisterReq{Flags: ReqRegister, PendingGrants: 2}},
			"8808" + "0004" + "00000003" + "01" + "02" + "00"},
		{"register", &Frame{onuMAC, oltMAC, 4, &Register{AssignedPort: 0x0203, Flags: RegAck, SyncTime: 0x0405, EchoedPendingGrants: 6}},
			"8808" + "0005" + "00000004" + "0203" + "03" + "0405" + "06" + "00"},
		{"register ack", &Frame{MACControlAddr, onuMAC, 5, &RegisterAck{Flags: AckAck, EchoedAssignedPort: 0x0203, EchoedSyncTime: 0x0405}},
			"8808" + "0006" + "00000005" + "01" + "0203" + "0405" + "00"},
	}
	for _, tt := range tests {
		b, err := tt.f.MarshalBinary()
		if err != nil {
			t.Fatalf("%s: MarshalBinary() = %v", tt.name, err)
		}
		want, _ := hex.DecodeString(tt.want)
		if !bytes.Equal(b[12:12+len(want)], want) {
			t.Errorf("%s: MarshalBinary()[12:] = %x, want %x", tt.name, b[12:12+len(want)], want)
		}
		if !bytes.Equal(b[:6], tt.f.Destination) || !bytes.Equal(b[6:12], tt.f.Source) {
			t.Errorf("%s: addresses = %x, want %v %v", tt.name, b[:12], tt.f.Destination, tt.f.Source)
		}
		if !bytes.Equal(b[12+len(want):], make([]byte, FrameLen-12-len(want))) {
			t.Errorf("%s: pad not zero: %x", tt.name, b[12+len(want):])
		}
	}
}

func frameHex(t *testing.T, body string) []byte {
	t.Helper()
	b, err := hex.DecodeString("0180c2000001" + "020000000001" + body)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < FrameLen {
		b = append(b, make([]byte, FrameLen-len(b))...)
	}
	return b
}

func TestUnmarshalErrors(t *testing.T) {
	good := frameHex(t, "8808000200000001"+"01"+"00000001"+"0002")
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"header only", good[:14], ErrTruncated},
		{"short frame", good[:59], ErrTruncated},
		{"wrong ethertype", frameHex(t, "88090002"), ErrNotMPCP},
		{"vlan tagged", frameHex(t, "8100000188080002"), ErrNotMPCP},
		{"pause is not MPCP", frameHex(t, "880800010000ffff"), ErrUnknownOpcode},
		{"unknown opcode", frameHex(t, "88080007"), ErrUnknownOpcode},
		{"5 grants", frameHex(t, "8808000200000001"+"05"), ErrBadLength},
		{"7 grants", frameHex(t, "8808000200000001"+"07"), ErrBadLength},
		{"discovery 2 grants", frameHex(t, "8808000200000001"+"0a"), ErrBadLength},
		{"discovery 0 grants", frameHex(t, "8808000200000001"+"08"), ErrBadLength},
		{"force report without grant", frameHex(t, "8808000200000001"+"21"), ErrBadFlags},
		{"report sets overrun", frameHex(t, "8808000300000001"+"ff"), ErrBadLength},
		{"report queues overrun", frameHex(t, "8808000300000001"+"03"+"ff"+strings.Repeat("00", 16)+"ff"+strings.Repeat("00", 16)+"ff"), ErrBadLength},
		{"register req flag 0", frameHex(t, "8808000400000001"+"00"), ErrBadFlags},
		{"register req flag 2", frameHex(t, "8808000400000001"+"02"), ErrBadFlags},
		{"register flag 0", frameHex(t, "8808000500000001"+"0001"+"00"), ErrBadFlags},
		{"register flag 5", frameHex(t, "8808000500000001"+"0001"+"05"), ErrBadFlags},
		{"register ack flag 2", frameHex(t, "8808000600000001"+"02"), ErrBadFlags},
	}
	for _, tt := range tests {
		var f Frame
		if err := f.UnmarshalBinary(tt.b); !errors.Is(err, tt.want) {
			t.Errorf("%s: UnmarshalBinary(%x) = %v, want %v", tt.name, tt.b, err, tt.want)
		}
	}
	var f Frame
	if err := f.UnmarshalBinary(good); err != nil {
		t.Errorf("UnmarshalBinary(good %x) = %v, want nil", good, err)
	}
}

func TestMarshalErrors(t *testing.T) {
	grant := Grant{Start: 1, Length: 1}
	tests := []struct {
		name string
		f    *Frame
		want error
	}{
		{"5 grants", &Frame{MACControlAddr, oltMAC, 0, &Gate{Grants: []Grant{grant, grant, grant, grant, grant}}}, ErrBadLength},
		{"discovery 2 grants", &Frame{MACControlAddr, oltMAC, 0, &Gate{Discovery: true, Grants: []Grant{grant, grant}}}, ErrBadLength},
		{"sync time in normal gate", &Frame{MACControlAddr, oltMAC, 0, &Gate{Grants: []Grant{grant}, SyncTime: 3}}, ErrBadFlags},
		{"report too long", &Frame{MACControlAddr, oltMAC, 0, &Report{QueueSets: []QueueSet{{Bitmap: 0xff}, {Bitmap: 0xff}, {Bitmap: 0xff}}}}, ErrBadLength},
		{"register req flag", &Frame{MACControlAddr, oltMAC, 0, &RegisterReq{Flags: 2}}, ErrBadFlags},
		{"register flag", &Frame{MACControlAddr, oltMAC, 0, &Register{Flags: 0}}, ErrBadFlags},
		{"register ack flag", &Frame{MACControlAddr, oltMAC, 0, &RegisterAck{Flags: 7}}, ErrBadFlags},
		{"short address", &Frame{MACControlAddr[:5], oltMAC, 0, &RegisterAck{}}, ErrBadAddress},
	}
	for _, tt := range tests {
		if _, err := tt.f.MarshalBinary(); !errors.Is(err, tt.want) {
			t.Errorf("%s: MarshalBinary() = %v, want %v", tt.name, err, tt.want)
		}
	}
	if _, err := (&Frame{Destination: MACControlAddr, Source: oltMAC}).MarshalBinary(); err == nil {
		t.Errorf("MarshalBinary(no message) = nil, want error")
	}
}

func TestQuanta(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want uint32
	}{
		{0, 0}, {15 * time.Nanosecond, 0}, {16 * time.Nanosecond, 1}, {time.Microsecond, 62},
		{time.Millisecond, 62500}, {Duration(0xffffffff) + Quantum, 0}, // wraps like the counter
	}
	for _, tt := range tests {
		if got := Quanta(tt.d); got != tt.want {
			t.Errorf("Quanta(%v) = %d, want %d", tt.d, got, tt.want)
		}
	}
	if got := Duration(62500); got != time.Millisecond {
		t.Errorf("Duration(62500) = %v, want 1ms", got)
	}
}

func FuzzUnmarshal(f *testing.F) {
	for _, fr := range sampleFrames() {
		b, err := fr.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add(make([]byte, 14))
	f.Fuzz(func(t *testing.T, b []byte) {
		var fr Frame
		if err := fr.UnmarshalBinary(b); err != nil {
			return
		}
		// Whatever decodes must encode and decode to the same frame.
		out, err := fr.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary(decoded %+v) = %v", fr.Message, err)
		}
		var again Frame
		if err := again.UnmarshalBinary(out); err != nil {
			t.Fatalf("UnmarshalBinary(re-encoded %x) = %v", out, err)
		}
		if !reflect.DeepEqual(&again, &fr) {
			t.Fatalf("re-decoded %+v, want %+v", again.Message, fr.Message)
		}
	})
}

func TestUnmarshalCopiesAndRejectsTags(t *testing.T) {
	f := &Frame{Destination: MACControlAddr, Source: net.HardwareAddr{2, 0, 0, 0, 0, 9}, Timestamp: 7, Message: &RegisterAck{Flags: AckAck, EchoedAssignedPort: 3}}
	b, err := f.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var g Frame
	if err := g.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 0xff
	}
	if g.Source.String() != "02:00:00:00:00:09" || g.Destination.String() != MACControlAddr.String() {
		t.Errorf("decoded addresses changed with the input: %v %v", g.Destination, g.Source)
	}
	tagged := append(append(append([]byte{}, MACControlAddr...), 2, 0, 0, 0, 0, 9, 0x81, 0x00, 0, 1, 0x88, 0x08), make([]byte, 50)...)
	if err := g.UnmarshalBinary(tagged); !errors.Is(err, ErrNotMPCP) {
		t.Errorf("UnmarshalBinary(VLAN-tagged) = %v, want %v", err, ErrNotMPCP)
	}
	if err := g.UnmarshalBinary(b[:13]); !errors.Is(err, ErrTruncated) {
		t.Errorf("UnmarshalBinary(13 bytes) = %v, want %v", err, ErrTruncated)
	}
}
