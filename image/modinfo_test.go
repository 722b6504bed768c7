package image

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cgoa/cgoa/hal"
)

func TestParseModInfo(t *testing.T) {
	mi, err := ParseModInfo([]byte("license=GPL\x00depends=stp,llc\x00name=bridge\x00vermagic=6.1\x00"))
	if err != nil || mi.Name != "bridge" || strings.Join(mi.Depends, ",") != "stp,llc" {
		t.Errorf("ParseModInfo = %+v, %v; want bridge [stp llc]", mi, err)
	}
	mi, _ = ParseModInfo([]byte("depends=\x00name=llc"))
	if len(mi.Depends) != 0 {
		t.Errorf("ParseModInfo(empty depends) = %v, want none", mi.Depends)
	}
}

func TestReadModInfoRejectsNonELF(t *testing.T) {
	if _, err := ReadModInfo(bytes.NewReader([]byte("not an elf file at all"))); err == nil {
		t.Errorf("ReadModInfo(garbage) = nil error")
	}
}

// TestClosureRealKernel resolves a role's modules against the kernel `make kernel` unpacks.
func TestClosureRealKernel(t *testing.T) {
	dir := filepath.Join("..", "build", "kernel", "modules")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("no unpacked kernel at %s (run make kernel): %v", dir, err)
	}
	tree, err := OpenModuleTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	names, _ := RoleModules("switch")
	mods, err := tree.Closure(names)
	if err != nil {
		t.Fatalf("Closure(%v) = %v", names, err)
	}
	var buf bytes.Buffer
	if err := WriteModulesDep(&buf, mods); err != nil {
		t.Fatal(err)
	}
	all, err := hal.ParseModulesDep(&buf)
	if err != nil {
		t.Fatalf("our modules.dep does not parse: %v", err)
	}
	var want []string
	for _, n := range names {
		if !tree.builtin[n] {
			want = append(want, n)
		}
	}
	order, err := hal.DependencyOrder(all, want)
	if err != nil {
		t.Fatalf("DependencyOrder = %v", err)
	}
	pos := map[string]int{}
	for i, m := range order {
		pos[m.Name()] = i
	}
	for _, pair := range [][2]string{{"llc", "stp"}, {"stp", "bridge"}, {"virtio_net", "virtio_net"}} {
		a, okA := pos[pair[0]]
		b, okB := pos[pair[1]]
		if !okA || !okB || a > b {
			t.Errorf("order %v: want %s before %s", pos, pair[0], pair[1])
		}
	}
	if _, ok := pos["af_packet"]; ok {
		t.Errorf("af_packet is built in and must not be carried")
	}
}

func FuzzParseModInfo(f *testing.F) {
	f.Add([]byte("depends=a,b\x00name=c\x00"))
	f.Add([]byte("=\x00=="))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseModInfo(b)
		_, _ = ReadModInfo(bytes.NewReader(b))
	})
}
