package vpon

import (
	"net"
	"testing"
	"time"

	"github.com/cgoa/cgoa/blades/epon/onu"
)

type sink struct{ got []int64 }

func (s *sink) Receive(_ uint16, _ []byte, arrival int64) { s.got = append(s.got, arrival) }
func (s *sink) Tick() int64                               { return 1 << 40 }

func TestCollisionsAndDelay(t *testing.T) {
	p := New(Config{Seed: 1})
	for i := range 3 {
		if _, err := p.AddONU(onu.Config{MAC: net.HardwareAddr{2, 0, 0, 0, 0, byte(i + 1)}}, 1); err != nil {
			t.Fatal(err)
		}
	}
	s := &sink{}
	p.SetOLT(s)
	var ups []Upstream
	p.OnUpstream = func(u Upstream) { ups = append(ups, u) }
	frame := make([]byte, 60)
	// ONUs 0 and 1 send overlapping frames; ONU 2 sends later, alone.
	at := func(i int, ns int64) int64 { return ns/16 + p.nodes[i].off }
	onuTx{p, 0}.Transmit(1, frame, at(0, 16000))
	onuTx{p, 1}.Transmit(2, frame, at(1, 16000+160))
	onuTx{p, 2}.Transmit(3, frame, at(2, 32000))
	p.RunUntil(time.Millisecond)
	if st := p.Stats(); st.Collisions != 2 || len(s.got) != 1 {
		t.Fatalf("collisions %d, delivered %d; want 2 and 1", st.Collisions, len(s.got))
	}
	// 1 km: 5 µs on the fibre, from the ONU clock edge (its phase).
	if want := (32000 + p.nodes[2].phase + 5000) / 16; s.got[0] != want {
		t.Errorf("arrival %d TQ, want %d", s.got[0], want)
	}
	if len(ups) != 3 || !ups[0].Collided || !ups[1].Collided || ups[2].Collided {
		t.Errorf("upstream records %+v", ups)
	}
	if _, err := p.AddONU(onu.Config{MAC: net.HardwareAddr{2, 0, 0, 0, 0, 9}}, -3); err == nil {
		t.Error("AddONU(-3 km) = nil error")
	}
}
