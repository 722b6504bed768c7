package switchblade

import (
	"io"
	"testing"
)

func TestBridgeSTP(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"br0", "start"}, 0},
		{[]string{"br0", "stop"}, 0},
		{[]string{"br0"}, 2},
		{[]string{"br0", "restart"}, 2},
		{[]string{"", "start"}, 2},
		{nil, 2},
	} {
		if got := BridgeSTP(tc.args, io.Discard); got != tc.want {
			t.Errorf("BridgeSTP(%q) = %d, want %d", tc.args, got, tc.want)
		}
	}
}
