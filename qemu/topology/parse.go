package topology

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	"gopkg.in/yaml.v3"
)

// Error is a topology file error: where it is and what is wrong.
type Error struct {
	File  string
	Line  int    // 1-based; 0 when unknown
	Field string // e.g. "slots[2].role"; empty for the whole document
	Err   error
}

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc += ":" + strconv.Itoa(e.Line)
	}
	if e.Field != "" {
		return fmt.Sprintf("topology: %s: %s: %v", loc, e.Field, e.Err)
	}
	return fmt.Sprintf("topology: %s: %v", loc, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Errors a caller may test for with errors.Is.
var (
	ErrSyntax       = errors.New("invalid YAML")
	ErrUnknownField = errors.New("unknown field")
	ErrMissing      = errors.New("missing field")
	ErrType         = errors.New("wrong type")
	ErrDuplicate    = errors.New("duplicate slot")
	ErrRange        = errors.New("out of range")
	ErrRole         = errors.New("unknown role")
	ErrPlacement    = errors.New("role not allowed in this slot")
	ErrHubs         = errors.New("bad hub count")
)

// LoadFile reads and validates a topology file.
func LoadFile(path string) (*Shelf, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("topology: %w", err)
	}
	return Parse(filepath.Base(path), data)
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

type parser struct {
	file string
}

func (p *parser) errf(n *yaml.Node, field string, kind error, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	msg := kind
	if format != "" {
		msg = fmt.Errorf("%w: %s", kind, fmt.Sprintf(format, args...))
	}
	return &Error{File: p.file, Line: line, Field: field, Err: msg}
}

// Parse validates a topology document; file names it in errors.
func Parse(file string, data []byte) (*Shelf, error) {
	p := &parser{file: file}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &Error{File: file, Err: fmt.Errorf("%w: %v", ErrSyntax, err)}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, &Error{File: file, Err: fmt.Errorf("%w: empty document", ErrMissing)}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, p.errf(root, "", ErrType, "top level must be a mapping with name, shelf and slots")
	}
	s := &Shelf{Number: 1}
	var slotsNode *yaml.Node
	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if seen[k.Value] {
			return nil, p.errf(k, k.Value, ErrDuplicate, "field given twice")
		}
		seen[k.Value] = true
		switch k.Value {
		case "name":
			name, err := p.str(v, "name")
			if err != nil {
				return nil, err
			}
			if len(name) > maxNameLen || !nameRE.MatchString(name) {
				return nil, p.errf(v, "name", ErrType, "%q: want 1..%d of a-z, 0-9, - (it names the run directory)", name, maxNameLen)
			}
			s.Name = name
		case "shelf":
			n, err := p.intIn(v, "shelf", 1, maxShelfNum)
			if err != nil {
				return nil, err
			}
			s.Number = n
		case "slots":
			slotsNode = v
		default:
			return nil, p.errf(k, k.Value, ErrUnknownField, "want name, shelf or slots")
		}
	}
	if s.Name == "" {
		return nil, p.errf(root, "name", ErrMissing, "")
	}
	if slotsNode == nil {
		return nil, p.errf(root, "slots", ErrMissing, "")
	}
	if slotsNode.Kind != yaml.SequenceNode {
		return nil, p.errf(slotsNode, "slots", ErrType, "want a list of slots")
	}
	if len(slotsNode.Content) == 0 {
		return nil, p.errf(slotsNode, "slots", ErrMissing, "no blades")
	}
	where := map[int]int{} // slot -> line
	for i, n := range slotsNode.Content {
		b, err := p.blade(n, fmt.Sprintf("slots[%d]", i))
		if err != nil {
			return nil, err
		}
		if line, dup := where[b.Slot]; dup {
			return nil, p.errf(n, fmt.Sprintf("slots[%d].slot", i), ErrDuplicate, "slot %d already given on line %d", b.Slot, line)
		}
		where[b.Slot] = n.Line
		s.Blades = append(s.Blades, b)
	}
	sortBlades(s.Blades)
	if len(s.Hubs()) == 0 {
		return nil, p.errf(slotsNode, "slots", ErrHubs, "a shelf needs at least one switch hub in slot 1 or 2")
	}
	s.wire()
	return s, nil
}

func sortBlades(bs []Blade) {
	for i := 1; i < len(bs); i++ {
		for j := i; j > 0 && bs[j].Slot < bs[j-1].Slot; j-- {
			bs[j], bs[j-1] = bs[j-1], bs[j]
		}
	}
}

func (p *parser) blade(n *yaml.Node, field string) (Blade, error) {
	if n.Kind != yaml.MappingNode {
		return Blade{}, p.errf(n, field, ErrType, "want a mapping with slot and role")
	}
	b := Blade{Slot: -1, PON: -1}
	var uplinkSet bool
	var roleNode, ponNode, uplinkNode *yaml.Node
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		f := field + "." + k.Value
		if seen[k.Value] {
			return b, p.errf(k, f, ErrDuplicate, "field given twice")
		}
		seen[k.Value] = true
		switch k.Value {
		case "slot":
			slot, err := p.intIn(v, f, 1, MaxSlot)
			if err != nil {
				return b, err
			}
			b.Slot = slot
		case "role":
			r, err := p.str(v, f)
			if err != nil {
				return b, err
			}
			b.Role = Role(r)
			roleNode = v
			if !validRole(b.Role) {
				return b, p.errf(v, f, ErrRole, "%q (want switch, mgmt or epon)", r)
			}
		case "pon":
			pon, err := p.intIn(v, f, 0, MaxPON)
			if err != nil {
				return b, err
			}
			b.PON = pon
			ponNode = v
		case "uplink":
			if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" {
				return b, p.errf(v, f, ErrType, "want true or false")
			}
			b.Uplink = v.Value == "true"
			uplinkSet = true
			uplinkNode = v
		default:
			return b, p.errf(k, f, ErrUnknownField, "want slot, role, pon or uplink")
		}
	}
	if b.Slot < 0 {
		return b, p.errf(n, field+".slot", ErrMissing, "")
	}
	if b.Role == "" {
		return b, p.errf(n, field+".role", ErrMissing, "")
	}
	switch {
	case b.Hub() && b.Role != Switch:
		return b, p.errf(roleNode, field+".role", ErrPlacement, "slot %d is a hub slot: only switch", b.Slot)
	case !b.Hub() && b.Role == Switch:
		return b, p.errf(roleNode, field+".role", ErrPlacement, "switch blades go in hub slots 1 and 2, not slot %d", b.Slot)
	}
	if b.PON >= 0 && b.Role != EPON {
		return b, p.errf(ponNode, field+".pon", ErrPlacement, "PON ports only on epon blades")
	}
	if b.PON < 0 {
		b.PON = 0
		if b.Role == EPON {
			b.PON = DefaultPON
		}
	}
	if uplinkSet && !b.Hub() {
		return b, p.errf(uplinkNode, field+".uplink", ErrPlacement, "uplinks only on hub blades")
	}
	if !uplinkSet && b.Hub() {
		b.Uplink = true
	}
	return b, nil
}

func validRole(r Role) bool {
	for _, v := range Roles {
		if r == v {
			return true
		}
	}
	return false
}

func (p *parser) str(v *yaml.Node, field string) (string, error) {
	if v.Kind != yaml.ScalarNode || v.Tag != "!!str" {
		return "", p.errf(v, field, ErrType, "want a string")
	}
	return v.Value, nil
}

func (p *parser) intIn(v *yaml.Node, field string, lo, hi int) (int, error) {
	if v.Kind != yaml.ScalarNode || v.Tag != "!!int" {
		return 0, p.errf(v, field, ErrType, "want an integer %d..%d", lo, hi)
	}
	n, err := strconv.Atoi(v.Value)
	if err != nil || n < lo || n > hi {
		return 0, p.errf(v, field, ErrRange, "%s: want %d..%d", v.Value, lo, hi)
	}
	return n, nil
}
