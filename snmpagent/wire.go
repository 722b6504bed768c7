package snmpagent

import (
	"errors"
	"fmt"
)

// errBER is wrapped by every framing error found before gosnmp's decoder
// runs; such packets count as snmpInASNParseErrs.
var errBER = errors.New("malformed BER")

// tlv reads one definite-length BER TLV at b[off:], returning its tag and
// the bounds of its contents.
func tlv(b []byte, off int) (tag byte, start, end int, err error) {
	if off+2 > len(b) {
		return 0, 0, 0, fmt.Errorf("%w: truncated at %d", errBER, off)
	}
	tag = b[off]
	l := int(b[off+1])
	start = off + 2
	if l&0x80 != 0 {
		n := l & 0x7f
		if n == 0 || n > 3 || start+n > len(b) {
			return 0, 0, 0, fmt.Errorf("%w: bad length at %d", errBER, off)
		}
		l = 0
		for i := 0; i < n; i++ {
			l = l<<8 | int(b[start+i])
		}
		start += n
	}
	end = start + l
	if end > len(b) {
		return 0, 0, 0, fmt.Errorf("%w: length %d beyond packet at %d", errBER, l, off)
	}
	return tag, start, end, nil
}

// berUint decodes a non-negative INTEGER of at most 31 bits.
func berUint(b []byte) (int64, error) {
	if len(b) == 0 || len(b) > 5 || b[0]&0x80 != 0 {
		return 0, fmt.Errorf("%w: bad unsigned integer", errBER)
	}
	var v int64
	for _, c := range b {
		v = v<<8 | int64(c)
	}
	if v > 1<<31-1 {
		return 0, fmt.Errorf("%w: integer out of range", errBER)
	}
	return v, nil
}

// msgHeader is what the agent needs of an SNMP message before decoding its
// PDU: the version, and for SNMPv3 the global data and USM parameters with
// the offset of the authentication parameters (to verify the HMAC).
type msgHeader struct {
	version  int64
	msgID    int64
	maxSize  int64
	flags    byte
	model    int64
	engineID []byte
	boots    int64
	time     int64
	user     []byte
	authPar  []byte
	authOff  int // offset of authPar's contents in the message
	privPar  []byte
	data     int // offset of msgData (ScopedPDU or encrypted OCTET STRING)
}

// peekHeader frames a message. For v1/v2c only the version is read.
func peekHeader(b []byte) (h msgHeader, err error) {
	tag, s, e, err := tlv(b, 0)
	if err != nil {
		return h, err
	}
	if tag != 0x30 || e != len(b) {
		return h, fmt.Errorf("%w: message is not one SEQUENCE", errBER)
	}
	// Each field: tag check, bounds, value.
	next := func(want byte) (int, int, error) {
		t, fs, fe, err := tlv(b, s)
		if err != nil {
			return 0, 0, err
		}
		if t != want {
			return 0, 0, fmt.Errorf("%w: tag %#x at %d, want %#x", errBER, t, s, want)
		}
		s = fe
		return fs, fe, nil
	}
	vs, ve, err := next(0x02)
	if err != nil {
		return h, err
	}
	if h.version, err = berUint(b[vs:ve]); err != nil {
		return h, err
	}
	if h.version != 3 {
		return h, nil
	}
	// msgGlobalData
	gs, ge, err := next(0x30)
	if err != nil {
		return h, err
	}
	outer := s
	s = gs
	ints := []*int64{&h.msgID, &h.maxSize}
	for _, p := range ints {
		fs, fe, err := next(0x02)
		if err != nil {
			return h, err
		}
		if *p, err = berUint(b[fs:fe]); err != nil {
			return h, err
		}
	}
	fs, fe, err := next(0x04)
	if err != nil {
		return h, err
	}
	if fe-fs != 1 {
		return h, fmt.Errorf("%w: msgFlags length %d", errBER, fe-fs)
	}
	h.flags = b[fs]
	if fs, fe, err = next(0x02); err != nil {
		return h, err
	}
	if h.model, err = berUint(b[fs:fe]); err != nil {
		return h, err
	}
	if s != ge {
		return h, fmt.Errorf("%w: trailing bytes in msgGlobalData", errBER)
	}
	s = outer
	// msgSecurityParameters: OCTET STRING wrapping the USM SEQUENCE.
	ps, pe, err := next(0x04)
	if err != nil {
		return h, err
	}
	h.data = s
	if h.data >= len(b) {
		return h, fmt.Errorf("%w: no msgData", errBER)
	}
	if h.model != 3 {
		return h, nil // not USM: the caller counts snmpUnknownSecurityModels
	}
	s = ps
	us, ue, err := next(0x30)
	if err != nil {
		return h, err
	}
	if ue != pe {
		return h, fmt.Errorf("%w: trailing bytes in security parameters", errBER)
	}
	s = us
	if fs, fe, err = next(0x04); err != nil {
		return h, err
	}
	h.engineID = b[fs:fe]
	for _, p := range []*int64{&h.boots, &h.time} {
		fs, fe, err := next(0x02)
		if err != nil {
			return h, err
		}
		if *p, err = berUint(b[fs:fe]); err != nil {
			return h, err
		}
	}
	if fs, fe, err = next(0x04); err != nil {
		return h, err
	}
	h.user = b[fs:fe]
	if fs, fe, err = next(0x04); err != nil {
		return h, err
	}
	h.authPar, h.authOff = b[fs:fe], fs
	if fs, fe, err = next(0x04); err != nil {
		return h, err
	}
	h.privPar = b[fs:fe]
	if s != ue {
		return h, fmt.Errorf("%w: trailing bytes in USM parameters", errBER)
	}
	return h, nil
}
