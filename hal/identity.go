package hal

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrNotPresent is returned by devices a backend does not have (no watchdog in a process, no
// IPMI controller on a blade without a BMC).
var ErrNotPresent = errors.New("not present")

// Slot numbers of an ATCA shelf: logical slots 1..16; slots 1 and 2 are the hub slots.
const (
	MinSlot = 1
	MaxSlot = 16
	// MaxShelf bounds the shelf address (ATCA shelf addresses fit in a byte; we keep it small
	// enough to be encoded in a MAC octet).
	MaxShelf = 255
)

// Defaults used when identity is missing or malformed: a blade must still boot and serve its
// console so that an operator can see what is wrong.
const (
	DefaultShelf = 1
	DefaultSlot  = 1
)

// Identity is who a blade is in the shelf.
type Identity struct {
	Shelf  int    `json:"shelf"`
	Slot   int    `json:"slot"`
	Role   string `json:"role"`
	Serial string `json:"serial"`
	// Source says where Shelf and Slot came from: "cmdline", "flags" or "default".
	Source string `json:"source"`
}

// Hostname is the blade's host name, "<role>-s<slot>".
func (id Identity) Hostname() string { return fmt.Sprintf("%s-s%d", id.Role, id.Slot) }

// IsHub reports whether the slot is an ATCA hub slot (1 or 2), where the switch blades sit.
func (id Identity) IsHub() bool { return id.Slot == 1 || id.Slot == 2 }

// ParseSlot parses a slot number, 1..16.
func ParseSlot(s string) (int, error) {
	return parseBounded("slot", s, MinSlot, MaxSlot)
}

// ParseShelf parses a shelf number, 1..255.
func ParseShelf(s string) (int, error) {
	return parseBounded("shelf", s, 1, MaxShelf)
}

func parseBounded(what, s string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("hal: %s %q is not a number", what, s)
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("hal: %s %d out of range %d..%d", what, n, lo, hi)
	}
	return n, nil
}

// IdentityFromCmdline reads cgoa.shelf= and cgoa.slot= (and optionally cgoa.serial=) from a
// kernel command line. Missing values take the defaults silently; malformed values take the
// defaults and are reported in the returned errors, one per bad value. It never fails.
func IdentityFromCmdline(cmdline, role string) (Identity, []error) {
	id := Identity{Shelf: DefaultShelf, Slot: DefaultSlot, Role: role, Source: "default"}
	var errs []error
	seen := false
	for _, f := range strings.Fields(cmdline) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			continue
		}
		switch k {
		case "cgoa.shelf":
			n, err := ParseShelf(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%w; using shelf %d", err, DefaultShelf))
				continue
			}
			id.Shelf, seen = n, true
		case "cgoa.slot":
			n, err := ParseSlot(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%w; using slot %d", err, DefaultSlot))
				continue
			}
			id.Slot, seen = n, true
		case "cgoa.serial":
			id.Serial = sanitizeSerial(v)
		}
	}
	if seen {
		id.Source = "cmdline"
	}
	if id.Serial == "" {
		id.Serial = defaultSerial(id)
	}
	return id, errs
}

// sanitizeSerial keeps a serial number printable and short; it ends up in JSON, SNMP and IPMI.
func sanitizeSerial(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= 32 {
			break
		}
		if r > ' ' && r < 0x7f {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// defaultSerial derives a serial number from the position when the platform gives none (QEMU).
func defaultSerial(id Identity) string {
	return fmt.Sprintf("CGOA-%s-%03d-%02d", strings.ToUpper(id.Role), id.Shelf, id.Slot)
}
