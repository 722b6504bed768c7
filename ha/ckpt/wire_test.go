package ckpt

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestMsgRoundTrip(t *testing.T) {
	m := Msg{Kind: KindData, Flags: FlagSync, Op: OpWrite, Gen: 0x304, Seq: 9, N: 77, Index: 2, Frag: 1, Total: 10,
		Ckpt: "sessions", Section: "onu-17", Data: []byte("hello")}
	b, err := AppendMsg(nil, &m)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != m.Len() {
		t.Errorf("len(AppendMsg()) = %d, want %d", len(b), m.Len())
	}
	g, err := Unmarshal(b)
	if err != nil {
		t.Fatalf("Unmarshal(AppendMsg(m)) error %v", err)
	}
	if g.Kind != m.Kind || g.Flags != m.Flags || g.Op != m.Op || g.Gen != m.Gen || g.Seq != m.Seq || g.N != m.N ||
		g.Index != m.Index || g.Frag != m.Frag || g.Total != m.Total || g.Ckpt != m.Ckpt || g.Section != m.Section || !bytes.Equal(g.Data, m.Data) {
		t.Errorf("Unmarshal(AppendMsg(m)) = %+v, want %+v", g, m)
	}
}

func TestUnmarshalRejects(t *testing.T) {
	good, _ := AppendMsg(nil, &Msg{Kind: KindData, Op: OpWrite, Total: 3, Ckpt: "c", Section: "s", Data: []byte("abc")})
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrShort},
		{"header only", good[:HeaderLen-1], ErrShort},
		{"names cut", good[:HeaderLen+1], ErrShort},
		{"bad kind", append([]byte{99}, good[1:]...), ErrKind},
		{"data beyond total", append(append([]byte(nil), good...), 'x'), ErrBadFrag},
	}
	for _, tc := range tests {
		if _, err := Unmarshal(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("Unmarshal(%s) = %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := AppendMsg(nil, &Msg{Kind: KindData, Ckpt: string(make([]byte, 256))}); !errors.Is(err, ErrName) {
		t.Errorf("AppendMsg(long name) = %v, want %v", err, ErrName)
	}
}

// FuzzReceive feeds arbitrary messages to a replica and to a writer:
// errors are fine, panics are not, and a replica never holds a section
// that no writer wrote whole.
func FuzzReceive(f *testing.F) {
	for _, m := range []Msg{
		{Kind: KindSnapBegin, Gen: 1, N: 1, Ckpt: "*", Frag: 1},
		{Kind: KindSnapSection, Gen: 1, N: 2, Index: 1, Op: OpCreate, Total: 8, Ckpt: "c", Data: make([]byte, 8)},
		{Kind: KindSnapEnd, Gen: 1, N: 3, Ckpt: "*"},
		{Kind: KindData, Gen: 1, N: 4, Seq: 1, Op: OpWrite, Total: 2, Ckpt: "c", Section: "s", Data: []byte("ab")},
		{Kind: KindAck, Gen: 1, N: 4, Seq: 1},
		{Kind: KindPoll, Gen: 1, Flags: FlagSynced},
	} {
		b, _ := AppendMsg(nil, &m)
		f.Add(b)
	}
	// Runs as a writer's ring holds them: a create, two writes, a delete.
	run := func(first uint64, recs ...[]byte) []byte {
		var data []byte
		for _, r := range recs {
			data = append(data, r...)
		}
		m := Msg{Kind: KindRun, Gen: 1, N: first, Frag: uint32(len(recs)), Total: uint32(len(data)), Data: data}
		b, _ := AppendMsg(nil, &m)
		return b
	}
	rec := func(op Op, flags uint8, seq uint64, ckpt, section string, data []byte) []byte {
		r := newRing(4096)
		r.append(op, flags, seq, ckpt, section, data, func(*record) {})
		return append([]byte(nil), r.buf[:r.head]...)
	}
	f.Add(run(1, rec(OpCreate, 0, 1, "c", "", make([]byte, 8)), rec(OpWrite, 0, 2, "c", "s", []byte("ab"))))
	f.Add(run(3, rec(OpWrite, FlagSync, 3, "c", "s", nil), rec(OpDelete, 0, 4, "c", "s", nil)))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := New(Options{Self: 2, Ring: 4096, Send: func(uint8, []byte) {}})
		r.Receive(0, 1, b)
		w := New(Options{Self: 1, Ring: 4096, Send: func(uint8, []byte) {}})
		w.Promote(0)
		w.SetReplicas(0, []uint8{2})
		w.Open(0, "c", time.Second)
		w.Write(0, "c", "s", []byte("x"), false)
		w.Receive(time.Millisecond, 2, b)
		w.Tick(time.Second)
	})
}
