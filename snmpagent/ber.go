package snmpagent

import (
	"github.com/gosnmp/gosnmp"
)

// The agent encodes its Response-PDUs itself: gosnmp's encoder grows a bytes.Buffer per
// field and parses every OID string again, which was a third of a GETBULK's cost. Values
// whose Go type the agent does not make fall back to gosnmp (ok=false).

// appendBERInt appends an INTEGER (two's complement, minimal).
func appendBERInt(b []byte, tag byte, v int64) []byte {
	n := 1
	for x := v; x > 127 || x < -128; x >>= 8 {
		n++
	}
	b = append(b, tag, byte(n))
	for i := n - 1; i >= 0; i-- {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

// appendBERUnsigned appends an unsigned value as INTEGER content (a leading zero octet when
// the top bit is set), as Counter32, Gauge32, TimeTicks and Counter64 are encoded.
func appendBERUnsigned(b []byte, tag byte, v uint64) []byte {
	n := 1
	for x := v; x > 127; x >>= 8 {
		n++
	}
	b = append(b, tag, byte(n))
	for i := n - 1; i >= 0; i-- {
		if i >= 8 {
			b = append(b, 0)
			continue
		}
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

// appendBEROID appends an OBJECT IDENTIFIER from its dotted form (leading dot optional).
func appendBEROID(b []byte, s string) ([]byte, bool) {
	var arcs [128]uint32
	n := 0
	if len(s) > 0 && s[0] == '.' {
		s = s[1:]
	}
	var cur uint64
	digits := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if digits == 0 || n == len(arcs) {
				return b, false
			}
			arcs[n], n, cur, digits = uint32(cur), n+1, 0, 0
			continue
		}
		c := s[i]
		if c < '0' || c > '9' {
			return b, false
		}
		cur = cur*10 + uint64(c-'0')
		digits++
		if cur > 1<<32-1 {
			return b, false
		}
	}
	if n < 2 || arcs[0] > 2 || (arcs[0] < 2 && arcs[1] > 39) {
		return b, false
	}
	var content [128 * 5]byte
	c := content[:0]
	c = appendBase128(c, uint64(arcs[0])*40+uint64(arcs[1]))
	for _, a := range arcs[2:n] {
		c = appendBase128(c, uint64(a))
	}
	b = append(b, 0x06)
	b = appendBERLength(b, len(c))
	return append(b, c...), true
}

func appendBase128(b []byte, v uint64) []byte {
	n := 1
	for x := v >> 7; x > 0; x >>= 7 {
		n++
	}
	for i := n - 1; i >= 0; i-- {
		o := byte(v>>(7*i)) & 0x7f
		if i > 0 {
			o |= 0x80
		}
		b = append(b, o)
	}
	return b
}

// appendBERValue appends one value of a varbind.
func appendBERValue(b []byte, t gosnmp.Asn1BER, raw any) ([]byte, bool) {
	switch t {
	case gosnmp.Null, gosnmp.NoSuchObject, gosnmp.NoSuchInstance, gosnmp.EndOfMibView:
		return append(b, byte(t), 0), true
	case gosnmp.Integer:
		switch x := raw.(type) {
		case int:
			if x >= -1<<31 && x <= 1<<31-1 {
				return appendBERInt(b, byte(t), int64(x)), true
			}
		case int32:
			return appendBERInt(b, byte(t), int64(x)), true
		}
	case gosnmp.Counter32, gosnmp.Gauge32, gosnmp.TimeTicks:
		switch x := raw.(type) {
		case uint32:
			return appendBERUnsigned(b, byte(t), uint64(x)), true
		case uint:
			if x <= 1<<32-1 {
				return appendBERUnsigned(b, byte(t), uint64(x)), true
			}
		}
	case gosnmp.Counter64:
		if x, ok := raw.(uint64); ok {
			return appendBERUnsigned(b, byte(t), x), true
		}
	case gosnmp.OctetString, gosnmp.Opaque, gosnmp.IPAddress:
		var octets []byte
		switch x := raw.(type) {
		case []byte:
			octets = x
		case string:
			if t == gosnmp.IPAddress {
				return b, false // gosnmp's dotted form
			}
			octets = []byte(x)
		default:
			return b, false
		}
		if t == gosnmp.IPAddress && len(octets) != 4 {
			return b, false
		}
		b = append(b, byte(t))
		b = appendBERLength(b, len(octets))
		return append(b, octets...), true
	case gosnmp.ObjectIdentifier:
		if s, ok := raw.(string); ok {
			return appendBEROID(b, s)
		}
	}
	return b, false
}

// appendResponsePDU appends a Response-PDU (RFC 3416 3) carrying vbs.
func appendResponsePDU(b []byte, reqID uint32, status gosnmp.SNMPError, index int, vbs []gosnmp.SnmpPDU) ([]byte, bool) {
	vbl := make([]byte, 0, 32*len(vbs)+16)
	for _, vb := range vbs {
		start := len(vbl)
		vbl = append(vbl, 0x30, 0) // length patched below
		var ok bool
		if vbl, ok = appendBEROID(vbl, vb.Name); !ok {
			return b, false
		}
		if vbl, ok = appendBERValue(vbl, vb.Type, vb.Value); !ok {
			return b, false
		}
		// The SEQUENCE's length: short form fits most varbinds; otherwise move the contents.
		n := len(vbl) - start - 2
		if n < 0x80 {
			vbl[start+1] = byte(n)
			continue
		}
		hdr := appendBERLength([]byte{0x30}, n)
		vbl = append(vbl, hdr[2:]...) // grow by the extra length octets
		copy(vbl[start+len(hdr):], vbl[start+2:start+2+n])
		copy(vbl[start:], hdr)
	}
	var ints [3 * 7]byte
	h := appendBERUnsigned(ints[:0], 0x02, uint64(reqID))
	h = appendBERInt(h, 0x02, int64(status))
	h = appendBERInt(h, 0x02, int64(index))
	b = append(b, byte(gosnmp.GetResponse))
	b = appendBERLength(b, len(h)+berTLVLen(len(vbl)))
	b = append(b, h...)
	b = append(b, 0x30)
	b = appendBERLength(b, len(vbl))
	return append(b, vbl...), true
}

// appendCommunityMessage appends an SNMPv1/v2c message around an encoded PDU.
func appendCommunityMessage(b []byte, v gosnmp.SnmpVersion, community string, pdu []byte) []byte {
	b = append(b, 0x30)
	b = appendBERLength(b, 3+berTLVLen(len(community))+len(pdu))
	b = append(b, 0x02, 0x01, byte(v))
	b = appendTLV(b, 0x04, []byte(community))
	return append(b, pdu...)
}
