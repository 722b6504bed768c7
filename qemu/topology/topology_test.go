package topology

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefault(t *testing.T) {
	s := Default()
	if s.Name != "default" || s.Number != 1 {
		t.Fatalf("Default() name, number = %q, %d, want default, 1", s.Name, s.Number)
	}
	wantRoles := map[int]Role{1: Switch, 2: Switch, 3: Mgmt, 4: Mgmt, 5: EPON}
	if len(s.Blades) != len(wantRoles) {
		t.Fatalf("Default() has %d blades, want %d", len(s.Blades), len(wantRoles))
	}
	for slot, role := range wantRoles {
		b, ok := s.Blade(slot)
		if !ok || b.Role != role {
			t.Errorf("Default().Blade(%d) = %v, %v, want role %s", slot, b, ok, role)
		}
	}
	wantPorts := map[int]string{
		1: "isl0 uplink0 node3 node4 node5",
		2: "isl0 uplink0 node3 node4 node5",
		3: "base0 base1",
		4: "base0 base1",
		5: "base0 base1 pon0 pon1",
	}
	for slot, want := range wantPorts {
		if got := strings.Join(s.Ports(slot), " "); got != want {
			t.Errorf("Default().Ports(%d) = %q, want %q", slot, got, want)
		}
	}
	peers := []struct {
		slot int
		port string
		want End
	}{
		{3, "base0", End{1, "node3"}},
		{3, "base1", End{2, "node3"}},
		{1, "node5", End{5, "base0"}},
		{2, "node4", End{4, "base1"}},
		{1, "isl0", End{2, "isl0"}},
		{2, "isl0", End{1, "isl0"}},
		{1, "uplink0", End{HostSlot, "uplink-s1"}},
		{2, "uplink0", End{HostSlot, "uplink-s2"}},
		{5, "pon1", End{HostSlot, "onu-s5-pon1"}},
	}
	for _, p := range peers {
		got, _, ok := s.Peer(p.slot, p.port)
		if !ok || got != p.want {
			t.Errorf("Default().Peer(%d, %s) = %v, %v, want %v", p.slot, p.port, got, ok, p.want)
		}
	}
	if _, _, ok := s.Peer(3, "isl0"); ok {
		t.Errorf("Default().Peer(3, isl0) found a channel, want none")
	}
	if got := len(s.HostEnds()); got != 4 {
		t.Errorf("len(Default().HostEnds()) = %d, want 4 (2 uplinks, 2 PON)", got)
	}
	// Every channel end must have a PCI device, or the VM cannot be wired.
	for _, c := range s.Channels {
		for _, e := range []End{c.A, c.B} {
			if e.Host() {
				continue
			}
			if _, err := PCIDevice(e.Port); err != nil {
				t.Errorf("channel %v: %v", c, err)
			}
		}
	}
	if b, _ := s.Blade(3); b.Prompt() != "mgmt-s3> " {
		t.Errorf("Blade(3).Prompt() = %q, want %q", b.Prompt(), "mgmt-s3> ")
	}
}

func TestPCIDeviceAndMAC(t *testing.T) {
	tests := []struct {
		port string
		dev  int
		ok   bool
	}{
		{"craft0", 0x07, true}, {"base0", 0x08, true}, {"base1", 0x09, true},
		{"isl0", 0x0a, true}, {"uplink0", 0x0b, true},
		{"node3", 0x0f, true}, {"node16", 0x1c, true}, {"pon0", 0x10, true}, {"pon7", 0x17, true},
		{"node2", 0, false}, {"node17", 0, false}, {"node03", 0, false}, {"pon8", 0, false},
		{"eth0", 0, false}, {"", 0, false},
	}
	for _, tt := range tests {
		dev, err := PCIDevice(tt.port)
		if (err == nil) != tt.ok || dev != tt.dev {
			t.Errorf("PCIDevice(%q) = %#x, %v, want %#x, ok=%v", tt.port, dev, err, tt.dev, tt.ok)
		}
	}
	mac, err := MAC(1, 12, "node16")
	if err != nil || mac != "52:54:01:0c:00:1c" {
		t.Errorf("MAC(1, 12, node16) = %q, %v, want 52:54:01:0c:00:1c", mac, err)
	}
}

func TestExamples(t *testing.T) {
	files, err := filepath.Glob("../examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, f := range files {
		if _, err := LoadFile(f); err != nil {
			t.Errorf("LoadFile(%s) = %v, want nil", f, err)
		}
	}
	mini, err := LoadFile("../examples/mini.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(mini.Ports(3), " "); got != "base0" {
		t.Errorf("mini.Ports(3) = %q, want base0 (one hub)", got)
	}
	if got := strings.Join(mini.Ports(1), " "); got != "uplink0 node3 node4" {
		t.Errorf("mini.Ports(1) = %q, want uplink0 node3 node4 (no isl0)", got)
	}
	two, err := LoadFile("../examples/two-epon.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(two.Ports(6), " "); got != "base0 base1 pon0 pon1" {
		t.Errorf("two-epon.Ports(6) = %q", got)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want error
		line int
		// field the message must name
		field string
	}{
		{"syntax", "name: [", ErrSyntax, 0, ""},
		{"empty", "", ErrMissing, 0, ""},
		{"not mapping", "- 1\n", ErrType, 1, ""},
		{"no name", "shelf: 1\nslots:\n  - {slot: 1, role: switch}\n", ErrMissing, 1, "name"},
		{"bad name", "name: Big Shelf\nslots: []\n", ErrType, 1, "name"},
		{"no slots", "name: x\n", ErrMissing, 1, "slots"},
		{"empty slots", "name: x\nslots: []\n", ErrMissing, 2, "slots"},
		{"unknown top field", "name: x\nrack: 3\nslots: []\n", ErrUnknownField, 2, "rack"},
		{"shelf range", "name: x\nshelf: 300\nslots:\n  - {slot: 1, role: switch}\n", ErrRange, 2, "shelf"},
		{"shelf type", "name: x\nshelf: one\nslots:\n  - {slot: 1, role: switch}\n", ErrType, 2, "shelf"},
		{"slot out of range", "name: x\nslots:\n  - slot: 1\n    role: switch\n  - slot: 17\n    role: mgmt\n", ErrRange, 5, "slots[1].slot"},
		{"slot zero", "name: x\nslots:\n  - slot: 0\n    role: switch\n", ErrRange, 3, "slots[0].slot"},
		{"duplicate slot", "name: x\nslots:\n  - slot: 1\n    role: switch\n  - slot: 3\n    role: mgmt\n  - slot: 3\n    role: epon\n", ErrDuplicate, 7, "slots[2].slot"},
		{"unknown role", "name: x\nslots:\n  - slot: 1\n    role: switch\n  - slot: 3\n    role: mgnt\n", ErrRole, 6, "slots[1].role"},
		{"missing role", "name: x\nslots:\n  - slot: 1\n", ErrMissing, 3, "slots[0].role"},
		{"missing slot", "name: x\nslots:\n  - role: switch\n", ErrMissing, 3, "slots[0].slot"},
		{"no hub", "name: x\nslots:\n  - slot: 3\n    role: mgmt\n", ErrHubs, 3, "slots"},
		{"mgmt in hub slot", "name: x\nslots:\n  - slot: 2\n    role: mgmt\n", ErrPlacement, 4, "slots[0].role"},
		{"switch in node slot", "name: x\nslots:\n  - slot: 1\n    role: switch\n  - slot: 7\n    role: switch\n", ErrPlacement, 6, "slots[1].role"},
		{"pon on mgmt", "name: x\nslots:\n  - slot: 1\n    role: switch\n  - slot: 3\n    role: mgmt\n    pon: 2\n", ErrPlacement, 7, "slots[1].pon"},
		{"pon range", "name: x\nslots:\n  - slot: 1\n    role: switch\n  - slot: 3\n    role: epon\n    pon: 9\n", ErrRange, 7, "slots[1].pon"},
		{"uplink on node", "name: x\nslots:\n  - slot: 1\n    role: switch\n  - slot: 3\n    role: mgmt\n    uplink: true\n", ErrPlacement, 7, "slots[1].uplink"},
		{"uplink type", "name: x\nslots:\n  - slot: 1\n    role: switch\n    uplink: yes please\n", ErrType, 5, "slots[0].uplink"},
		{"unknown slot field", "name: x\nslots:\n  - slot: 1\n    role: switch\n    ram: 512\n", ErrUnknownField, 5, "slots[0].ram"},
		{"slot not mapping", "name: x\nslots:\n  - 1\n", ErrType, 3, "slots[0]"},
		{"duplicate field", "name: x\nname: y\nslots: []\n", ErrDuplicate, 2, "name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse("t.yaml", []byte(tt.doc))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse(%q) = %v, %v, want error %v", tt.doc, s, err, tt.want)
			}
			var te *Error
			if !errors.As(err, &te) {
				t.Fatalf("Parse(%q) error %T is not *Error", tt.doc, err)
			}
			if te.Line != tt.line {
				t.Errorf("Parse(%q) error line = %d, want %d (%v)", tt.doc, te.Line, tt.line, err)
			}
			if te.Field != tt.field {
				t.Errorf("Parse(%q) error field = %q, want %q (%v)", tt.doc, te.Field, tt.field, err)
			}
			if !strings.HasPrefix(err.Error(), "topology: t.yaml") {
				t.Errorf("Parse error %q does not name the file", err)
			}
		})
	}
}

func TestLoadFileErrors(t *testing.T) {
	if _, err := LoadFile(filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadFile(missing) = %v, want ErrNotExist", err)
	}
	f := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(f, []byte("name: x\nslots:\n  - slot: 1\n    role: router\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadFile(f)
	if err == nil || !strings.Contains(err.Error(), "bad.yaml:4: slots[0].role: unknown role: \"router\"") {
		t.Errorf("LoadFile(bad) = %v, want it to name bad.yaml:4 and slots[0].role", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(DefaultYAML())
	for _, name := range []string{"mini.yaml", "two-epon.yaml", "single-mgmt.yaml"} {
		if b, err := os.ReadFile(filepath.Join("../examples", name)); err == nil {
			f.Add(b)
		}
	}
	if seeds, err := filepath.Glob("testdata/*.yaml"); err == nil {
		for _, s := range seeds {
			if b, err := os.ReadFile(s); err == nil {
				f.Add(b)
			}
		}
	}
	f.Add([]byte("name: x\nslots:\n  - {slot: 1, role: switch, uplink: false}\n  - {slot: 16, role: epon, pon: 8}\n"))
	f.Add([]byte("name: &a x\nslots: *a\n"))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("fuzz.yaml", data)
		if err != nil {
			var te *Error
			if !errors.As(err, &te) {
				t.Fatalf("Parse error %T %v is not *Error", err, err)
			}
			return
		}
		// A valid shelf is internally consistent.
		if len(s.Hubs()) == 0 || len(s.Hubs()) > 2 {
			t.Fatalf("valid shelf with %d hubs", len(s.Hubs()))
		}
		for _, c := range s.Channels {
			if _, err := PCIDevice(c.A.Port); err != nil {
				t.Fatalf("channel %v: %v", c, err)
			}
			if !c.B.Host() {
				if _, err := PCIDevice(c.B.Port); err != nil {
					t.Fatalf("channel %v: %v", c, err)
				}
			}
		}
		_ = s.String()
	})
}
