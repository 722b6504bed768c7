package snmpagent

import (
	"fmt"
	"strconv"
	"strings"
)

// OID is an object identifier as a list of sub-identifiers.
type OID []uint32

// ParseOID parses dotted notation ("1.3.6.1" or ".1.3.6.1").
func ParseOID(s string) (OID, error) {
	orig := s
	s = strings.TrimPrefix(s, ".")
	if s == "" {
		return nil, fmt.Errorf("snmpagent: empty OID")
	}
	o := make(OID, 0, strings.Count(s, ".")+1)
	for s != "" {
		i := strings.IndexByte(s, '.')
		part := s
		if i >= 0 {
			part, s = s[:i], s[i+1:]
			if s == "" {
				return nil, fmt.Errorf("snmpagent: OID %q ends with a dot", orig)
			}
		} else {
			s = ""
		}
		n, err := strconv.ParseUint(part, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("snmpagent: OID sub-identifier %q: %w", part, err)
		}
		o = append(o, uint32(n))
	}
	return o, nil
}

// MustOID parses s and panics on error; for package-level constants only.
func MustOID(s string) OID {
	o, err := ParseOID(s)
	if err != nil {
		panic(err)
	}
	return o
}

// String returns the OID in the leading-dot form gosnmp uses.
func (o OID) String() string {
	b := make([]byte, 0, len(o)*4)
	for _, n := range o {
		b = append(b, '.')
		b = strconv.AppendUint(b, uint64(n), 10)
	}
	return string(b)
}

// Compare orders OIDs lexicographically: -1, 0 or +1.
func (o OID) Compare(p OID) int {
	n := min(len(o), len(p))
	for i := 0; i < n; i++ {
		switch {
		case o[i] < p[i]:
			return -1
		case o[i] > p[i]:
			return 1
		}
	}
	switch {
	case len(o) < len(p):
		return -1
	case len(o) > len(p):
		return 1
	}
	return 0
}

// HasPrefix reports whether p is a prefix of (or equal to) o.
func (o OID) HasPrefix(p OID) bool {
	if len(p) > len(o) {
		return false
	}
	for i := range p {
		if o[i] != p[i] {
			return false
		}
	}
	return true
}

// Append returns a new OID o.sub... without aliasing o.
func (o OID) Append(sub ...uint32) OID {
	r := make(OID, 0, len(o)+len(sub))
	r = append(r, o...)
	return append(r, sub...)
}

// Clone returns a copy of o.
func (o OID) Clone() OID { return append(OID(nil), o...) }
