package oam

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"
)

var (
	oltMAC = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}
	onuMAC = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x10, 0x01}
)

var (
	localInfo  = InfoTLV{Version: 1, Revision: 3, State: 0x00, Config: 0x1f, MaxPDUSize: 1518, OUI: OUI{0x00, 0x10, 0x18}, VendorInfo: 0xdeadbeef}
	remoteInfo = InfoTLV{Version: 1, Revision: 2, State: 0x00, Config: 0x0e, MaxPDUSize: 1518, OUI: OUI{0x00, 0x0d, 0xb6}, VendorInfo: 0x01020304}
)

func samplePDUs() map[string]*PDU {
	stable := FlagLocalStable | FlagRemoteStable
	orgData := bytes.Repeat([]byte{0xab}, 40) // longer than the pad, so it round-trips
	return map[string]*PDU{
		"information": {SlowProtocolsAddr, oltMAC, FlagLocalEvaluating, &Information{Local: &localInfo}},
		"information both": {SlowProtocolsAddr, onuMAC, stable, &Information{Local: &remoteInfo, Remote: &localInfo,
			Org: []OrgTLV{{OUI: OUI{0, 0x10, 0x18}, Data: []byte{1, 2, 3}}}}},
		"dying gasp": {SlowProtocolsAddr, onuMAC, FlagDyingGasp | FlagLinkFault | FlagCriticalEvent | stable | FlagRemoteEvaluating,
			&Information{Local: &remoteInfo, Remote: &localInfo}},
		"event notification": {SlowProtocolsAddr, onuMAC, stable, &EventNotification{Sequence: 7, Events: []Event{
			{Type: EventErroredSymbolPeriod, Timestamp: 10, Window: 1 << 40, Threshold: 1, Errors: 5, ErrorRunningTotal: 1 << 50, EventRunningTotal: 3},
			{Type: EventErroredFrame, Timestamp: 11, Window: 10, Threshold: 1, Errors: 2, ErrorRunningTotal: 20, EventRunningTotal: 4},
			{Type: EventErroredFramePeriod, Timestamp: 12, Window: 1000000, Threshold: 1, Errors: 9, ErrorRunningTotal: 99, EventRunningTotal: 5},
			{Type: EventErroredFrameSecondsSummary, Timestamp: 13, Window: 600, Threshold: 1, Errors: 2, ErrorRunningTotal: 30, EventRunningTotal: 6},
			{Type: EventOrganizationSpecific, Org: OrgTLV{OUI: OUI{1, 2, 3}, Data: []byte{9}}},
		}}},
		"variable request": {SlowProtocolsAddr, oltMAC, stable, &VariableRequest{Descriptors: []Descriptor{
			{BranchAttribute, 0x0002}, {BranchAttribute, 0x0005}, {BranchObject, 0x0001}}}},
		"variable response": {SlowProtocolsAddr, onuMAC, stable, &VariableResponse{Containers: []Container{
			{Branch: BranchAttribute, Leaf: 0x0002, Value: []byte{0, 0, 0, 0, 0, 0, 0x12, 0x34}},
			{Branch: BranchAttribute, Leaf: 0x0005, Indication: 0x21},
			{Branch: BranchPackage, Leaf: 0x0009, Value: bytes.Repeat([]byte{7}, 128)},
		}}},
		"loopback enable":  {SlowProtocolsAddr, oltMAC, stable, &LoopbackControl{Command: LoopbackEnable}},
		"loopback disable": {SlowProtocolsAddr, oltMAC, stable, &LoopbackControl{Command: LoopbackDisable}},
		"org specific":     {SlowProtocolsAddr, oltMAC, stable, &OrganizationSpecific{OUI: OUI{0x00, 0x10, 0x18}, Data: orgData}},
	}
}

func TestRoundTrip(t *testing.T) {
	for name, p := range samplePDUs() {
		t.Run(name, func(t *testing.T) {
			b, err := p.MarshalBinary()
			if err != nil {
				t.Fatalf("MarshalBinary() = %v", err)
			}
			if len(b) < MinFrameLen {
				t.Errorf("len(MarshalBinary()) = %d, want >= %d", len(b), MinFrameLen)
			}
			var q PDU
			if err := q.UnmarshalBinary(b); err != nil {
				t.Fatalf("UnmarshalBinary(%x) = %v", b, err)
			}
			if !reflect.DeepEqual(&q, p) {
				t.Errorf("UnmarshalBinary(MarshalBinary(%+v)) = %+v", p.Payload, q.Payload)
			}
		})
	}
}

func TestWireLayout(t *testing.T) {
	tests := []struct {
		name string
		p    *PDU
		want string // hex from the EtherType on
	}{
		{"information", &PDU{SlowProtocolsAddr, oltMAC, FlagDyingGasp | FlagLocalStable, &Information{Local: &localInfo}},
			"8809" + "03" + "0012" + "00" + "01" + "10" + "01" + "0003" + "00" + "1f" + "05ee" + "001018" + "deadbeef" + "0000"},
		{"errored frame event", &PDU{SlowProtocolsAddr, oltMAC, 0, &EventNotification{Sequence: 0x0102, Events: []Event{
			{Type: EventErroredFrame, Timestamp: 0x0a0b, Window: 0x0c0d, Threshold: 1, Errors: 2, ErrorRunningTotal: 3, EventRunningTotal: 4}}}},
			"8809" + "03" + "0000" + "01" + "0102" + "02" + "1a" + "0a0b" + "0c0d" + "00000001" + "00000002" + "0000000000000003" + "00000004" + "00"},
		{"variable request", &PDU{SlowProtocolsAddr, oltMAC, 0, &VariableRequest{Descriptors: []Descriptor{{BranchAttribute, 0x0102}}}},
			"8809" + "03" + "0000" + "02" + "07" + "0102" + "00"},
		{"variable response", &PDU{SlowProtocolsAddr, oltMAC, 0, &VariableResponse{Containers: []Container{
			{Branch: BranchAttribute, Leaf: 0x0102, Value: []byte{0xaa, 0xbb}}, {Branch: BranchAttribute, Leaf: 3, Indication: 0x21}}}},
			"8809" + "03" + "0000" + "03" + "07" + "0102" + "02" + "aabb" + "07" + "0003" + "a1" + "00"},
		{"loopback", &PDU{SlowProtocolsAddr, oltMAC, 0, &LoopbackControl{Command: LoopbackDisable}},
			"8809" + "03" + "0000" + "04" + "02" + "00"},
	}
	for _, tt := range tests {
		b, err := tt.p.MarshalBinary()
		if err != nil {
			t.Fatalf("%s: MarshalBinary() = %v", tt.name, err)
		}
		want, _ := hex.DecodeString(tt.want)
		if !bytes.Equal(b[12:12+len(want)], want) {
			t.Errorf("%s: MarshalBinary()[12:] = %x, want %x", tt.name, b[12:12+len(want)], want)
		}
	}
}

func frameHex(t *testing.T, body string) []byte {
	t.Helper()
	b, err := hex.DecodeString("0180c2000002" + "020000000001" + body)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < MinFrameLen {
		b = append(b, make([]byte, MinFrameLen-len(b))...)
	}
	return b
}

func TestUnmarshalErrors(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"no subtype", frameHex(t, "8809")[:14], ErrTruncated},
		{"no code", frameHex(t, "8809")[:17], ErrTruncated},
		{"wrong ethertype", frameHex(t, "880803"), ErrNotOAM},
		{"lacp subtype", frameHex(t, "880901"), ErrNotOAM},
		{"vlan tagged", frameHex(t, "81000001880903"), ErrNotOAM},
		{"too long", append(frameHex(t, "8809030000fe001018"), make([]byte, 1500)...), ErrTooLong},
		{"reserved code", frameHex(t, "880903000005"), ErrUnknownCode},
		{"info TLV short", frameHex(t, "880903000000"+"010f"+strings.Repeat("01", 13)), ErrBadLength},
		{"info TLV overruns", frameHex(t, "880903000000"+"01ff"), ErrBadLength},
		{"info TLV length 1", frameHex(t, "880903000000"+"0101"), ErrBadLength},
		{"info TLV unknown type", frameHex(t, "880903000000"+"0502ff"), ErrBadValue},
		{"info local twice", frameHex(t, "880903000000"+"0110"+strings.Repeat("01", 14)+"0110"+strings.Repeat("01", 14)), ErrBadValue},
		{"info org TLV short", frameHex(t, "880903000000"+"fe040102"), ErrBadLength},
		{"event wrong length", frameHex(t, "880903000001"+"0001"+"0219"+strings.Repeat("01", 23)), ErrBadLength},
		{"event unknown type", frameHex(t, "880903000001"+"0001"+"0504"+"0000"), ErrBadValue},
		{"event no sequence", frameHex(t, "880903000001")[:19], ErrTruncated},
		{"variable request cut", frameHex(t, "880903000002"+strings.Repeat("07", 44)), ErrBadLength},
		{"variable response width overrun", frameHex(t, "880903000003"+"070001"+"7f"+"01"), ErrBadLength},
		{"variable response indication 0", frameHex(t, "880903000003"+"070001"+"80"), ErrBadValue},
		{"loopback bad command", frameHex(t, "880903000004"+"03"), ErrBadValue},
		{"loopback missing command", frameHex(t, "880903000004")[:18], ErrTruncated},
		{"org no OUI", frameHex(t, "8809030000fe")[:20], ErrTruncated},
	}
	for _, tt := range tests {
		var p PDU
		if err := p.UnmarshalBinary(tt.b); !errors.Is(err, tt.want) {
			t.Errorf("%s: UnmarshalBinary(%x) = %v, want %v", tt.name, tt.b, err, tt.want)
		}
	}
}

func TestMarshalErrors(t *testing.T) {
	tests := []struct {
		name string
		p    Payload
		want error
	}{
		{"event field too wide", &EventNotification{Events: []Event{{Type: EventErroredFrameSecondsSummary, Window: 1 << 16}}}, ErrBadValue},
		{"event unknown type", &EventNotification{Events: []Event{{Type: 9}}}, ErrBadValue},
		{"org TLV too long", &Information{Org: []OrgTLV{{Data: make([]byte, 251)}}}, ErrBadLength},
		{"descriptor branch 0", &VariableRequest{Descriptors: []Descriptor{{0, 1}}}, ErrBadValue},
		{"container empty", &VariableResponse{Containers: []Container{{Branch: 7, Leaf: 1}}}, ErrBadLength},
		{"container 129", &VariableResponse{Containers: []Container{{Branch: 7, Leaf: 1, Value: make([]byte, 129)}}}, ErrBadLength},
		{"indication with value", &VariableResponse{Containers: []Container{{Branch: 7, Leaf: 1, Indication: 1, Value: []byte{1}}}}, ErrBadValue},
		{"loopback command", &LoopbackControl{Command: 0}, ErrBadValue},
		{"too long", &OrganizationSpecific{Data: make([]byte, MaxDataLen)}, ErrTooLong},
	}
	for _, tt := range tests {
		p := &PDU{SlowProtocolsAddr, oltMAC, 0, tt.p}
		if _, err := p.MarshalBinary(); !errors.Is(err, tt.want) {
			t.Errorf("%s: MarshalBinary() = %v, want %v", tt.name, err, tt.want)
		}
	}
	if _, err := (&PDU{Destination: SlowProtocolsAddr[:3], Source: oltMAC, Payload: &LoopbackControl{LoopbackEnable}}).MarshalBinary(); !errors.Is(err, ErrBadAddress) {
		t.Errorf("MarshalBinary(short address) = %v, want %v", err, ErrBadAddress)
	}
}

func FuzzUnmarshal(f *testing.F) {
	for _, p := range samplePDUs() {
		b, err := p.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var p PDU
		if err := p.UnmarshalBinary(b); err != nil {
			return
		}
		out, err := p.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary(decoded %+v) = %v", p.Payload, err)
		}
		var again PDU
		if err := again.UnmarshalBinary(out); err != nil {
			t.Fatalf("UnmarshalBinary(re-encoded %x) = %v", out, err)
		}
		// Re-encoding is canonical: a second round gives the same bytes.
		out2, err := again.MarshalBinary()
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("re-encoding not stable: %x vs %x (%v)", out, out2, err)
		}
	})
}
