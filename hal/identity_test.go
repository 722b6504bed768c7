package hal

import (
	"strings"
	"testing"
)

func TestIdentityFromCmdline(t *testing.T) {
	tests := []struct {
		name      string
		cmdline   string
		shelf     int
		slot      int
		source    string
		errSubstr []string
	}{
		{"both", "console=ttyS0 cgoa.shelf=2 cgoa.slot=5 quiet", 2, 5, "cmdline", nil},
		{"none", "console=ttyS0 quiet", 1, 1, "default", nil},
		{"slot only", "cgoa.slot=16", 1, 16, "cmdline", nil},
		{"garbage slot", "cgoa.shelf=3 cgoa.slot=abc", 3, 1, "cmdline", []string{`slot "abc" is not a number`}},
		{"slot out of range", "cgoa.slot=17", 1, 1, "default", []string{"slot 17 out of range 1..16"}},
		{"zero slot and bad shelf", "cgoa.slot=0 cgoa.shelf=-4", 1, 1, "default",
			[]string{"slot 0 out of range", "shelf -4 out of range"}},
		{"empty value", "cgoa.slot=", 1, 1, "default", []string{`slot "" is not a number`}},
		{"last wins", "cgoa.slot=3 cgoa.slot=4", 1, 4, "cmdline", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, errs := IdentityFromCmdline(tt.cmdline, "mgmt")
			if id.Shelf != tt.shelf || id.Slot != tt.slot || id.Source != tt.source {
				t.Errorf("IdentityFromCmdline(%q) = shelf %d slot %d source %q, want %d %d %q",
					tt.cmdline, id.Shelf, id.Slot, id.Source, tt.shelf, tt.slot, tt.source)
			}
			if len(errs) != len(tt.errSubstr) {
				t.Fatalf("IdentityFromCmdline(%q) errors = %v, want %d", tt.cmdline, errs, len(tt.errSubstr))
			}
			for i, want := range tt.errSubstr {
				if !strings.Contains(errs[i].Error(), want) {
					t.Errorf("error %d = %q, want it to contain %q", i, errs[i], want)
				}
			}
		})
	}
}

func TestIdentitySerialAndHostname(t *testing.T) {
	id, _ := IdentityFromCmdline("cgoa.slot=3 cgoa.serial=AB\x01C-12", "epon")
	if id.Serial != "ABC-12" {
		t.Errorf("serial = %q, want control characters dropped: %q", id.Serial, "ABC-12")
	}
	if got := id.Hostname(); got != "epon-s3" {
		t.Errorf("Hostname() = %q, want %q", got, "epon-s3")
	}
	id, _ = IdentityFromCmdline("cgoa.shelf=7 cgoa.slot=2", "switch")
	if id.Serial != "CGOA-SWITCH-007-02" || !id.IsHub() {
		t.Errorf("default serial/hub = %q/%v, want CGOA-SWITCH-007-02/true", id.Serial, id.IsHub())
	}
}

func FuzzIdentityFromCmdline(f *testing.F) {
	for _, s := range []string{"cgoa.slot=3 cgoa.shelf=1", "cgoa.slot==", "cgoa.slot=99999999999999999999", "=", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, _ := IdentityFromCmdline(s, "mgmt")
		if id.Slot < MinSlot || id.Slot > MaxSlot || id.Shelf < 1 || id.Shelf > MaxShelf {
			t.Fatalf("IdentityFromCmdline(%q) = %+v: out of range identity", s, id)
		}
	})
}
