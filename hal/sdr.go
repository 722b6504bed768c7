package hal

import (
	"errors"
	"fmt"
)

// SDR record types this firmware reads (IPMI 2.0, section 43).
const (
	sdrFullSensor    = 0x01
	sdrCompactSensor = 0x02
)

// SensorRecord is the part of an IPMI sensor data record the console shows.
type SensorRecord struct {
	RecordID   uint16 `json:"record_id"`
	Type       uint8  `json:"record_type"`
	Number     uint8  `json:"number"`
	SensorType uint8  `json:"sensor_type"`
	Name       string `json:"name"`
}

// ErrBadSDR is returned for a sensor data record that cannot be decoded.
var ErrBadSDR = errors.New("hal: bad SDR record")

// ParseSDR decodes a full or compact sensor data record (header included). Other record
// types decode to a record with only the header fields set.
func ParseSDR(b []byte) (SensorRecord, error) {
	if len(b) < 5 {
		return SensorRecord{}, fmt.Errorf("%w: %d bytes, header needs 5", ErrBadSDR, len(b))
	}
	r := SensorRecord{RecordID: uint16(b[0]) | uint16(b[1])<<8, Type: b[3]}
	if int(b[4])+5 != len(b) {
		return r, fmt.Errorf("%w: record %d says %d body bytes, have %d", ErrBadSDR, r.RecordID, b[4], len(b)-5)
	}
	var idAt int
	switch r.Type {
	case sdrFullSensor:
		idAt = 47
	case sdrCompactSensor:
		idAt = 31
	default:
		return r, nil
	}
	if len(b) <= idAt {
		return r, fmt.Errorf("%w: record %d type %#x too short (%d bytes)", ErrBadSDR, r.RecordID, r.Type, len(b))
	}
	r.Number, r.SensorType = b[7], b[12]
	// ID string type/length byte: bits 7:6 type (3 = 8-bit ASCII+Latin-1), bits 4:0 length.
	n := int(b[idAt] & 0x1f)
	if idAt+1+n > len(b) {
		return r, fmt.Errorf("%w: record %d name runs past the record", ErrBadSDR, r.RecordID)
	}
	r.Name = printable(b[idAt+1 : idAt+1+n])
	return r, nil
}

func printable(b []byte) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c >= ' ' && c < 0x7f {
			out = append(out, c)
		}
	}
	return string(out)
}
