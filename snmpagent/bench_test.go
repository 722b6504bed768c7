package snmpagent

import (
	"net/netip"
	"testing"
)

// Per-request CPU cost of the whole request path (no sockets). The
// side-by-side throughput figures against snmpd come from cmd/snmpbench.
func benchmarkHandle(b *testing.B, seed int) {
	a := fuzzAgent(b)
	msg := seedMessages(b, a)[seed]
	from := netip.MustParseAddrPort("127.0.0.1:40000")
	buf := make([]byte, len(msg))
	b.ReportAllocs()
	for b.Loop() {
		copy(buf, msg)
		if a.HandleMessage(buf, from).Data == nil {
			b.Fatal("no answer")
		}
	}
}

func BenchmarkHandleV2cGet(b *testing.B)        { benchmarkHandle(b, 4) }
func BenchmarkHandleV2cGetBulk(b *testing.B)    { benchmarkHandle(b, 6) }
func BenchmarkHandleV3AuthPrivGet(b *testing.B) { benchmarkHandle(b, 8) }
