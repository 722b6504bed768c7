package snmpagent

import (
	"fmt"
	"net/netip"

	"github.com/gosnmp/gosnmp"
)

// Value is a typed SNMP value. The zero Value is Null. Raw holds what
// gosnmp's codec marshals for Type: int (Integer), uint32 (Counter32,
// Gauge32, TimeTicks), uint64 (Counter64), []byte (OctetString, Opaque,
// IpAddress) or string (ObjectIdentifier, leading-dot form).
type Value struct {
	Type gosnmp.Asn1BER
	Raw  any
}

// Constructors for the SMIv2 base types.
func Integer(v int32) Value            { return Value{gosnmp.Integer, int(v)} }
func Counter32(v uint32) Value         { return Value{gosnmp.Counter32, v} }
func Gauge32(v uint32) Value           { return Value{gosnmp.Gauge32, v} }
func TimeTicks(v uint32) Value         { return Value{gosnmp.TimeTicks, v} }
func Counter64(v uint64) Value         { return Value{gosnmp.Counter64, v} }
func OctetString(v []byte) Value       { return Value{gosnmp.OctetString, v} }
func String(v string) Value            { return Value{gosnmp.OctetString, []byte(v)} }
func ObjectIdentifier(v OID) Value     { return Value{gosnmp.ObjectIdentifier, v.String()} }
func IPAddress(a netip.Addr) Value     { b := a.As4(); return Value{gosnmp.IPAddress, b[:]} }
func exception(t gosnmp.Asn1BER) Value { return Value{t, nil} }

// AsInt returns the value of an Integer.
func (v Value) AsInt() (int64, bool) {
	if v.Type != gosnmp.Integer {
		return 0, false
	}
	i, ok := v.Raw.(int)
	return int64(i), ok
}

// AsUint returns the value of a Counter32, Gauge32, TimeTicks or Counter64.
func (v Value) AsUint() (uint64, bool) {
	switch x := v.Raw.(type) {
	case uint32:
		return uint64(x), true
	case uint:
		return uint64(x), true
	case uint64:
		return x, true
	}
	return 0, false
}

// AsBytes returns the octets of an OctetString (or Opaque, IpAddress).
func (v Value) AsBytes() ([]byte, bool) {
	switch x := v.Raw.(type) {
	case []byte:
		return x, true
	case string:
		if v.Type != gosnmp.ObjectIdentifier {
			return []byte(x), true
		}
	}
	return nil, false
}

// AsOID returns the value of an ObjectIdentifier.
func (v Value) AsOID() (OID, bool) {
	s, ok := v.Raw.(string)
	if !ok || v.Type != gosnmp.ObjectIdentifier {
		return nil, false
	}
	o, err := ParseOID(s)
	return o, err == nil
}

func (v Value) String() string {
	if b, ok := v.Raw.([]byte); ok && v.Type == gosnmp.OctetString {
		return fmt.Sprintf("%v:%q", v.Type, b)
	}
	return fmt.Sprintf("%v:%v", v.Type, v.Raw)
}

// fromWire turns a decoded gosnmp value into a Value with the Raw types
// above, copying octets so the value outlives the receive buffer.
func fromWire(t gosnmp.Asn1BER, raw any) Value {
	switch x := raw.(type) {
	case uint:
		return Value{t, uint32(x)}
	case []byte:
		return Value{t, append([]byte(nil), x...)}
	case string:
		if t == gosnmp.IPAddress {
			a, err := netip.ParseAddr(x)
			if err == nil && a.Is4() {
				return IPAddress(a)
			}
			return Value{t, []byte(nil)}
		}
	}
	return Value{t, raw}
}
