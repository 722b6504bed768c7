package snmpagent

import (
	"bytes"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/gosnmp/gosnmp"
)

// TestResponsePDUMatchesGoSNMP: the agent's Response-PDU encoder and gosnmp's give messages
// that gosnmp decodes to the same packet, for every type the agent serves and their edge
// values (both length forms, large arcs, exceptions).
func TestResponsePDUMatchesGoSNMP(t *testing.T) {
	long := bytes.Repeat([]byte{'x'}, 300)
	vbs := []gosnmp.SnmpPDU{
		{Name: ".1.3.6.1.2.1.1.1.0", Type: gosnmp.OctetString, Value: []byte("cgoa")},
		{Name: ".1.3.6.1.2.1.1.1.1", Type: gosnmp.OctetString, Value: []byte{}},
		{Name: ".1.3.6.1.2.1.1.1.2", Type: gosnmp.OctetString, Value: long[:130]},
		{Name: ".1.3.6.1.2.1.1.1.3", Type: gosnmp.OctetString, Value: long},
		{Name: ".1.3.6.1.2.1.2.2.1.1.1", Type: gosnmp.Integer, Value: 0},
		{Name: ".1.3.6.1.2.1.2.2.1.1.2", Type: gosnmp.Integer, Value: -1},
		{Name: ".1.3.6.1.2.1.2.2.1.1.3", Type: gosnmp.Integer, Value: 128},
		{Name: ".1.3.6.1.2.1.2.2.1.1.4", Type: gosnmp.Integer, Value: math.MaxInt32},
		{Name: ".1.3.6.1.2.1.2.2.1.1.5", Type: gosnmp.Integer, Value: math.MinInt32},
		{Name: ".1.3.6.1.2.1.2.2.1.10.1", Type: gosnmp.Counter32, Value: uint32(0)},
		{Name: ".1.3.6.1.2.1.2.2.1.10.2", Type: gosnmp.Counter32, Value: uint32(math.MaxUint32)},
		{Name: ".1.3.6.1.2.1.2.2.1.5.1", Type: gosnmp.Gauge32, Value: uint32(1 << 31)},
		{Name: ".1.3.6.1.2.1.1.3.0", Type: gosnmp.TimeTicks, Value: uint32(12345)},
		{Name: ".1.3.6.1.2.1.31.1.1.1.6.1", Type: gosnmp.Counter64, Value: uint64(math.MaxUint64)},
		{Name: ".1.3.6.1.2.1.31.1.1.1.6.2", Type: gosnmp.Counter64, Value: uint64(0)},
		{Name: ".1.3.6.1.2.1.31.1.1.1.6.3", Type: gosnmp.Counter64, Value: uint64(1 << 40)},
		{Name: ".1.3.6.1.2.1.4.20.1.1.1", Type: gosnmp.IPAddress, Value: []byte{169, 254, 3, 1}},
		{Name: ".1.3.6.1.2.1.1.2.0", Type: gosnmp.ObjectIdentifier, Value: ".1.3.6.1.4.1.99999.1"},
		{Name: ".1.3.6.1.2.1.1.9.1.2.1", Type: gosnmp.ObjectIdentifier, Value: ".0.0"},
		{Name: ".1.3.6.1.2.1.1.9.1.2.2", Type: gosnmp.ObjectIdentifier, Value: ".2.999.4294967295"},
		{Name: ".1.3.6.1.4.1.4294967295.1", Type: gosnmp.Null},
		{Name: ".1.3.6.1.2.1.99.0", Type: gosnmp.NoSuchObject},
		{Name: ".1.3.6.1.2.1.1.99", Type: gosnmp.NoSuchInstance},
		{Name: ".1.3.6.1.9", Type: gosnmp.EndOfMibView},
		{Name: "1.3.6.1.2.1.1.4.0", Type: gosnmp.OctetString, Value: []byte("no leading dot")},
	}
	for _, tc := range []struct {
		version gosnmp.SnmpVersion
		status  gosnmp.SNMPError
		index   int
		reqID   uint32
		vbs     []gosnmp.SnmpPDU
	}{
		{gosnmp.Version2c, gosnmp.NoError, 0, 1, vbs},
		{gosnmp.Version1, gosnmp.NoSuchName, 3, 1<<31 + 5, vbs[:4]},
		{gosnmp.Version2c, gosnmp.TooBig, 0, 0, nil},
		{gosnmp.Version2c, gosnmp.NoError, 0, 77, vbs[3:4]},
	} {
		pdu, ok := appendResponsePDU(nil, tc.reqID, tc.status, tc.index, tc.vbs)
		if !ok {
			t.Fatalf("appendResponsePDU(%v) not ok", tc.vbs)
		}
		ours := appendCommunityMessage(nil, tc.version, "public", pdu)
		ref := &gosnmp.SnmpPacket{Version: tc.version, Community: "public", PDUType: gosnmp.GetResponse,
			RequestID: tc.reqID, Error: tc.status, ErrorIndex: uint8(tc.index), Variables: tc.vbs}
		theirs, err := ref.MarshalMsg()
		if err != nil {
			t.Fatalf("gosnmp marshal: %v", err)
		}
		dec := gosnmp.GoSNMP{Version: tc.version}
		a, err := dec.SnmpDecodePacket(ours)
		if err != nil {
			t.Fatalf("decode of our message: %v (%x)", err, ours)
		}
		b, err := dec.SnmpDecodePacket(theirs)
		if err != nil {
			t.Fatalf("decode of gosnmp's message: %v", err)
		}
		if a.RequestID != b.RequestID || a.Error != b.Error || a.ErrorIndex != b.ErrorIndex || a.PDUType != b.PDUType ||
			a.Community != b.Community || !reflect.DeepEqual(a.Variables, b.Variables) {
			t.Errorf("ours decodes to %+v\ngosnmp's to %+v", a, b)
		}
		if h, err := peekHeader(ours); err != nil || h.version != int64(tc.version) {
			t.Errorf("peekHeader(ours) = %+v, %v", h, err)
		}
	}
}

// TestResponsePDUFallsBack: what the encoder does not know is left to gosnmp.
func TestResponsePDUFallsBack(t *testing.T) {
	for _, vb := range []gosnmp.SnmpPDU{
		{Name: ".1.3.6.1", Type: gosnmp.OpaqueFloat, Value: float32(1)},
		{Name: ".1.3.6.1", Type: gosnmp.Integer, Value: "7"},
		{Name: ".1.3.6.1", Type: gosnmp.Integer, Value: 1 << 40},
		{Name: ".1.3.6.1", Type: gosnmp.IPAddress, Value: "1.2.3.4"},
		{Name: ".1.3.6.1", Type: gosnmp.ObjectIdentifier, Value: ".3.1"},
		{Name: ".1.x", Type: gosnmp.Null},
		{Name: ".1", Type: gosnmp.Null},
		{Name: "." + strings.Repeat("1.", 130) + "1", Type: gosnmp.Null},
		{Name: ".1.3.99999999999", Type: gosnmp.Null},
	} {
		if _, ok := appendResponsePDU(nil, 1, 0, 0, []gosnmp.SnmpPDU{vb}); ok {
			t.Errorf("appendResponsePDU(%+v) ok, want a fallback", vb)
		}
	}
}
