package stp

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// BridgeID is an 802.1D bridge identifier: the 16-bit priority field in the
// high bits (802.1D-2004 splits it into a 4-bit priority, in steps of 4096,
// and a 12-bit system ID extension) and the bridge's MAC address in the low
// 48 bits. Held as one integer so that the spec's "numerically lower is
// better" comparison is the ordinary < operator.
type BridgeID uint64

// NewBridgeID makes a bridge identifier from the full 16-bit priority field
// (priority plus system ID extension, as the Linux bridge and BRIDGE-MIB's
// dot1dStpPriority take it) and a 6-octet MAC address.
func NewBridgeID(priority uint16, mac net.HardwareAddr) (BridgeID, error) {
	if len(mac) != 6 {
		return 0, fmt.Errorf("stp: bridge id: MAC address %q has %d octets, want 6", mac, len(mac))
	}
	var v uint64 = uint64(priority) << 48
	for i, o := range mac {
		v |= uint64(o) << (8 * (5 - i))
	}
	return BridgeID(v), nil
}

// PriorityField is the whole 16-bit priority field (priority + system ID extension).
func (id BridgeID) PriorityField() uint16 { return uint16(id >> 48) }

// Priority is the 802.1D-2004 bridge priority (a multiple of 4096).
func (id BridgeID) Priority() uint16 { return id.PriorityField() & 0xf000 }

// SystemIDExtension is the 802.1D-2004 12-bit system ID extension.
func (id BridgeID) SystemIDExtension() uint16 { return id.PriorityField() & 0x0fff }

// MAC is the address part of the identifier.
func (id BridgeID) MAC() net.HardwareAddr {
	m := make(net.HardwareAddr, 6)
	for i := range m {
		m[i] = byte(id >> (8 * (5 - i)))
	}
	return m
}

// WithPriority returns the identifier with its 16-bit priority field replaced.
func (id BridgeID) WithPriority(priority uint16) BridgeID {
	return BridgeID(uint64(id)&0xffffffffffff | uint64(priority)<<48)
}

// String formats the identifier the way brctl and mstpd do: "8000.0011223344ff".
func (id BridgeID) String() string {
	return fmt.Sprintf("%04x.%012x", id.PriorityField(), uint64(id)&0xffffffffffff)
}

// MarshalText implements encoding.TextMarshaler (JSON shows the String form).
func (id BridgeID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText parses the String form.
func (id *BridgeID) UnmarshalText(b []byte) error {
	p, m, ok := strings.Cut(string(b), ".")
	if !ok || len(p) != 4 || len(m) != 12 {
		return fmt.Errorf("stp: bridge id %q: want form pppp.mmmmmmmmmmmm", b)
	}
	pv, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return fmt.Errorf("stp: bridge id %q: %w", b, err)
	}
	mv, err := strconv.ParseUint(m, 16, 48)
	if err != nil {
		return fmt.Errorf("stp: bridge id %q: %w", b, err)
	}
	*id = BridgeID(pv<<48 | mv)
	return nil
}

// PortID is an 802.1D-2004 port identifier: a 4-bit priority (in steps of
// 16, carried in the high nibble) and a 12-bit port number.
type PortID uint16

// Port priority and number limits of the 802.1D-2004 port identifier.
const (
	MaxPortNumber       = 0x0fff
	DefaultPortPriority = 128
)

// NewPortID makes a port identifier. priority must be a multiple of 16
// (0..240); number must be 1..4095.
func NewPortID(priority uint8, number uint16) (PortID, error) {
	if priority%16 != 0 {
		return 0, fmt.Errorf("stp: port priority %d: want a multiple of 16", priority)
	}
	if number == 0 || number > MaxPortNumber {
		return 0, fmt.Errorf("stp: port number %d: want 1..%d", number, MaxPortNumber)
	}
	return PortID(uint16(priority)<<8 | number), nil
}

// Priority is the port priority (0..240).
func (id PortID) Priority() uint8 { return uint8(id>>8) & 0xf0 }

// Number is the port number.
func (id PortID) Number() uint16 { return uint16(id) & MaxPortNumber }

// String formats the identifier as "priority.number", e.g. "128.1".
func (id PortID) String() string { return fmt.Sprintf("%d.%d", id.Priority(), id.Number()) }

// MarshalText implements encoding.TextMarshaler.
func (id PortID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText parses the String form.
func (id *PortID) UnmarshalText(b []byte) error {
	p, n, ok := strings.Cut(string(b), ".")
	if !ok {
		return fmt.Errorf("stp: port id %q: want form priority.number", b)
	}
	pv, err := strconv.ParseUint(p, 10, 8)
	if err != nil {
		return fmt.Errorf("stp: port id %q: %w", b, err)
	}
	nv, err := strconv.ParseUint(n, 10, 16)
	if err != nil {
		return fmt.Errorf("stp: port id %q: %w", b, err)
	}
	v, err := NewPortID(uint8(pv), uint16(nv))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// Time is a BPDU timer value in units of 1/256 second, as carried on the wire.
type Time uint16

// timeUnit is the duration of one Time unit.
const timeUnit = time.Second / 256

// Duration converts t to a time.Duration.
func (t Time) Duration() time.Duration { return time.Duration(t) * timeUnit }

// TimeOf converts d to wire units, rounding up so that a message age never
// looks younger than it is. It fails if d is negative or above 65535/256 s.
func TimeOf(d time.Duration) (Time, error) {
	if d < 0 {
		return 0, fmt.Errorf("stp: time %v: negative", d)
	}
	u := (d + timeUnit - 1) / timeUnit
	if u > 0xffff {
		return 0, fmt.Errorf("stp: time %v: above %v", d, Time(0xffff).Duration())
	}
	return Time(u), nil
}

// String formats t in seconds.
func (t Time) String() string { return t.Duration().String() }

// DefaultPathCost is the 802.1D-2004 (table 17-3) recommended port path
// cost for a link of the given speed in bit/s: 20 Tb/s divided by the
// speed, so 1 Gb/s costs 20000 and 10 Gb/s 2000, clamped to 1..200000000.
// An unknown speed (0) gets the 100 Mb/s cost. The Linux kernel bridge
// still uses the short 802.1D-1998 costs (100, 19, 4, 2); set costs
// explicitly when building a tree that must match one made by such bridges.
func DefaultPathCost(bitsPerSecond uint64) uint32 {
	if bitsPerSecond == 0 {
		bitsPerSecond = 100_000_000
	}
	c := 20_000_000_000_000 / bitsPerSecond
	switch {
	case c < 1:
		return 1
	case c > 200_000_000:
		return 200_000_000
	}
	return uint32(c)
}
