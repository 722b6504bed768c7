package bridge

import (
	"net"
	"testing"

	"github.com/cgoa/cgoa/stp"
	"golang.org/x/net/bpf"
)

// TestBPDUMatch runs the filter in x/net/bpf's VM (which lacks the packet
// type extension, so without skipOutgoing; the netns tests cover that).
func TestBPDUMatch(t *testing.T) {
	raw, err := bpduMatch(false, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	prog, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("bpduMatch does not disassemble")
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatal(err)
	}
	src := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	bpdu, err := stp.MarshalFrame(src, &stp.BPDU{Type: stp.TypeConfig, MaxAge: 20 * 256})
	if err != nil {
		t.Fatal(err)
	}
	tcn, err := stp.MarshalFrame(src, &stp.BPDU{Type: stp.TypeTCN})
	if err != nil {
		t.Fatal(err)
	}
	mod := func(f []byte, at int, v ...byte) []byte {
		g := append([]byte(nil), f...)
		copy(g[at:], v)
		return g
	}
	for _, tc := range []struct {
		name  string
		frame []byte
		want  int
	}{
		{"config BPDU", bpdu, 1},
		{"TCN BPDU", tcn, 1},
		{"other group address", mod(bpdu, 5, 0x0e), 0},
		{"unicast", mod(bpdu, 0, 0x02), 0},
		{"EtherType, not length", mod(bpdu, 12, 0x88, 0xcc), 0},
		{"other LLC SAP", mod(bpdu, 14, 0xaa, 0xaa), 0},
		{"other LLC control", mod(bpdu, 16, 0x13), 0},
		{"truncated", bpdu[:15], 0},
	} {
		got, err := vm.Run(tc.frame)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got != tc.want {
			t.Errorf("filter(%s) = %d, want %d", tc.name, got, tc.want)
		}
	}
}
