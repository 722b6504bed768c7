package ckpt

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestRingWrapsAndEvicts: the ring never grows, records come back whole
// in order, and appending evicts the oldest first; with a size that is a
// power of two (offsets masked) and one that is not (divided).
func TestRingWrapsAndEvicts(t *testing.T) {
	for _, size := range []int{1000, 1024} {
		t.Run(fmt.Sprint(size), func(t *testing.T) { testRingWrapsAndEvicts(t, size) })
	}
}

func testRingWrapsAndEvicts(t *testing.T, size int) {
	r := newRing(size)
	if pow2 := size&(size-1) == 0; (r.mask != 0) != pow2 {
		t.Fatalf("newRing(%d): mask %#x", size, r.mask)
	}
	var evicted []uint64
	var live []uint64
	for seq := uint64(1); seq <= 200; seq++ {
		data := bytes.Repeat([]byte{byte(seq)}, int(seq*7%150))
		if _, err := r.append(OpWrite, 0, seq, "c", fmt.Sprint("s", seq), data, func(rec *record) { evicted = append(evicted, rec.seq) }); err != nil {
			t.Fatalf("append(%d) error %v", seq, err)
		}
		if r.used() > r.size() {
			t.Fatalf("after %d: used %d > size %d", seq, r.used(), r.size())
		}
	}
	for pos := r.tail; pos < r.head; {
		rec, ok := r.at(pos)
		if !ok {
			t.Fatalf("at(%d) found nothing before head %d", pos, r.head)
		}
		if want := bytes.Repeat([]byte{byte(rec.seq)}, int(rec.seq*7%150)); !bytes.Equal(rec.data, want) || string(rec.section) != fmt.Sprint("s", rec.seq) {
			t.Fatalf("record %d corrupted", rec.seq)
		}
		live = append(live, rec.seq)
		pos = rec.next
	}
	all := append(evicted, live...)
	for i, seq := range all {
		if seq != uint64(i+1) {
			t.Fatalf("evicted then live = %v, want 1..200 in order", all)
		}
	}
	if len(live) != r.records || live[len(live)-1] != 200 {
		t.Errorf("live records %v (count %d), want ending at 200", live, r.records)
	}
	if _, err := r.append(OpWrite, 0, 201, "c", "s", make([]byte, 600), func(*record) {}); err == nil {
		t.Errorf("append(600 bytes into %d) = nil error, want %v", size, errRecordTooBig)
	}
}

// TestRingEvictsSupersededUnread: a superseded record is evicted from
// the record index, its header in the buffer not read (the test spoils
// every superseded record's header), while evicted still gets every other
// record, in order. Across pads (sizes 1000 and 1024), and in a 128 KiB
// ring whose first records are too small for the index to reach back to
// the tail (found again once it does). With seeSuperseded (a snapshot in
// progress), evicted gets every record.
func TestRingEvictsSupersededUnread(t *testing.T) {
	type phase struct{ records, dataLen int }
	for _, tc := range []struct {
		size   int
		phases []phase
	}{
		{1000, []phase{{400, 0}}},
		{1024, []phase{{400, 0}}},
		{128 << 10, []phase{{8000, 1}, {2000, 300}}}, // 8000 records of 19 bytes: more than idxSize in the ring
	} {
		for _, see := range []bool{false, true} {
			t.Run(fmt.Sprint(tc.size, "/see=", see), func(t *testing.T) {
				r := newRing(tc.size)
				r.seeSuperseded = see
				var got []uint64
				pos := map[uint64]uint64{}
				sup := map[uint64]bool{}
				seq := uint64(0)
				for pi, ph := range tc.phases {
					spoil := pi == len(tc.phases)-1 && !see // (a snapshot reads them)
					for i := 0; i < ph.records; i++ {
						seq++
						n := ph.dataLen
						if n == 0 {
							n = int(seq * 7 % 150)
						}
						section := fmt.Sprint("s", seq%100)
						stored, err := r.append(OpWrite, 0, seq, "c", section, make([]byte, n), func(rec *record) { got = append(got, rec.seq) })
						if err != nil {
							t.Fatalf("append(%d): %v", seq, err)
						}
						pos[seq] = r.head - uint64(recHeader+1+len(section)+n)
						if spoil && seq%3 != 0 {
							r.supersede(stored, 1+len(section))
							sup[seq] = true
							hdr, _ := r.recordAt(stored, 1+len(section))
							binary.BigEndian.PutUint32(r.buf[hdr:], 3) // read, it would derail the ring
						}
					}
				}
				var want []uint64
				live := 0
				for s := uint64(1); s <= seq; s++ {
					switch {
					case pos[s] >= r.tail:
						live++
					case see || !sup[s]:
						want = append(want, s)
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("evicted %d records, want %d: %v..., want %v...", len(got), len(want), got[:min(len(got), 8)], want[:min(len(want), 8)])
				}
				if r.records != live || r.head-r.tail > r.size() || live == 0 {
					t.Fatalf("records %d, want %d live; used %d of %d", r.records, live, r.head-r.tail, r.size())
				}
			})
		}
	}
}

func TestRetention(t *testing.T) {
	var sent int
	w := New(Options{Self: 1, Send: func(uint8, []byte) { sent++ }})
	if err := w.Open(0, "c", time.Second); err == nil {
		t.Fatalf("Open() on a replica = nil, want %v", ErrNotActive)
	}
	w.Promote(0)
	if err := w.Open(0, "c", time.Second); err != nil {
		t.Fatal(err)
	}
	w.Open(0, "c", time.Second)
	w.Write(0, "c", "a", []byte("1"), false)
	w.Close(10*time.Millisecond, "c")
	w.Tick(2 * time.Second)
	if len(w.Checkpoints()) != 1 {
		t.Fatalf("checkpoint held by one opener was dropped")
	}
	w.Close(3*time.Second, "c")
	w.Tick(3*time.Second + 999*time.Millisecond)
	if len(w.Checkpoints()) != 1 {
		t.Fatalf("checkpoint dropped before its retention")
	}
	w.Tick(4 * time.Second)
	if got := w.Checkpoints(); len(got) != 0 {
		t.Fatalf("Checkpoints() after retention = %v, want none", got)
	}
	if _, err := w.Write(4*time.Second, "c", "a", nil, false); err == nil {
		t.Errorf("Write() to a dropped checkpoint = nil error")
	}
}

// TestReplicaBehindRing: a replica that misses far more than the ring
// holds is resynced from the sections and ends up with exactly them.
func TestReplicaBehindRing(t *testing.T) {
	var now time.Duration
	var toR, toW [][]byte
	w := New(Options{Self: 1, Ring: 8 << 10, Send: func(_ uint8, b []byte) { toR = append(toR, append([]byte(nil), b...)) }})
	r := New(Options{Self: 2, Send: func(_ uint8, b []byte) { toW = append(toW, append([]byte(nil), b...)) }})
	w.Promote(0)
	w.Open(0, "c", time.Hour)
	w.SetReplicas(0, []uint8{2})
	r.Follow(1)
	deliver := func(drop bool) {
		for len(toR) > 0 || len(toW) > 0 {
			a, b := toR, toW
			toR, toW = nil, nil
			for _, m := range a {
				if !drop {
					r.Receive(now, 1, m)
				}
			}
			for _, m := range b {
				w.Receive(now, 2, m)
			}
		}
	}
	for i := range 2000 { // 2000 writes of ~1 KiB into an 8 KiB ring, replica cut off
		w.Write(now, "c", fmt.Sprint("s", i%37), bytes.Repeat([]byte{byte(i)}, 1000+i%300), false)
		deliver(true)
	}
	for range 50 {
		now += 10 * time.Millisecond
		w.Tick(now)
		deliver(false)
	}
	if r.Seq() != w.Seq() || !r.Ready() || w.Durable() != w.Seq() {
		t.Fatalf("replica seq %d ready %v, writer seq %d durable %d", r.Seq(), r.Ready(), w.Seq(), w.Durable())
	}
	w.Sections("c", func(name string, data []byte) bool {
		got, err := r.Read("c", name)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("replica section %s = %d bytes (%v), want the writer's %d", name, len(got), err, len(data))
		}
		return true
	})
	if w.c.Resyncs == 0 {
		t.Errorf("no resync counted")
	}
}

// TestSectionsInRing: the writer keeps a section's value in the ring
// until the ring evicts it, then in a buffer of its own. Whatever the
// ring overwrites, every section reads back as last written (against a
// model), also across a demotion and promotion (the ring is reset) and
// in a resync of a late replica (the snapshot shares the sections).
func TestSectionsInRing(t *testing.T) {
	var now time.Duration
	var toR, toW [][]byte
	// A small window: the resync below takes many round trips while
	// writes go on and the ring evicts records the snapshot still sends.
	w := New(Options{Self: 1, Ring: 8 << 10, Window: 2, Send: func(_ uint8, b []byte) { toR = append(toR, append([]byte(nil), b...)) }})
	w.Promote(0)
	w.Open(0, "c", time.Hour)
	model := map[string][]byte{}
	check := func(when string) {
		t.Helper()
		n := 0
		w.Sections("c", func(name string, data []byte) bool {
			n++
			if !bytes.Equal(data, model[name]) {
				t.Fatalf("%s: section %s = %x..., want %x...", when, name, data[:min(len(data), 4)], model[name][:min(len(model[name]), 4)])
			}
			return true
		})
		if n != len(model) {
			t.Fatalf("%s: %d sections, want %d", when, n, len(model))
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	prefix, names, most := "s", 23, 900
	write := func(i int) {
		name := fmt.Sprint(prefix, rng.IntN(names))
		if _, ok := model[name]; ok && rng.IntN(6) == 0 {
			if _, err := w.Delete(now, "c", name, false); err != nil {
				t.Fatal(err)
			}
			delete(model, name)
			return
		}
		data := bytes.Repeat([]byte{byte(i), byte(i >> 8)}, rng.IntN(most))
		if _, err := w.Write(now, "c", name, data, false); err != nil {
			t.Fatal(err)
		}
		model[name] = data
	}
	for i := range 3000 {
		write(i)
		if i%97 == 0 {
			check(fmt.Sprint("write ", i))
		}
		if i == 1500 {
			w.Demote()
			check("demoted")
			w.Promote(now)
			check("promoted again")
		}
	}
	check("end")
	// A late replica is resynced from the sections while writes go on,
	// to other sections: the ring evicts the records of the first ones
	// before the snapshot has sent them, and nothing rewrites them after.
	prefix, names, most = "t", 3, 250 // small: what the snapshot is behind stays in the ring
	r := New(Options{Self: 2, Send: func(_ uint8, b []byte) { toW = append(toW, append([]byte(nil), b...)) }})
	r.Follow(1)
	w.SetReplicas(now, []uint8{2})
	for i := 3000; w.Durable() != w.Seq() || i < 3015; i++ {
		if i < 3015 {
			write(i)
		}
		now += time.Millisecond
		w.Tick(now)
		// One round trip per write (the snapshot takes many).
		a, b := toR, toW
		toR, toW = nil, nil
		for _, m := range a {
			r.Receive(now, 1, m)
		}
		for _, m := range b {
			w.Receive(now, 2, m)
		}
		if i > 10000 {
			t.Fatalf("replica at seq %d, writer %d", r.Seq(), w.Seq())
		}
	}
	check("after the resync")
	for name, data := range model {
		if got, err := r.Read("c", name); err != nil || !bytes.Equal(got, data) {
			t.Errorf("replica section %s = %d bytes %x... (%v), want %d bytes %x...", name, len(got), got[:min(len(got), 4)], err, len(data), data[:min(len(data), 4)])
		}
	}
	if w.c.Resyncs == 0 {
		t.Errorf("no resync counted")
	}
}

// TestRingIndex: the record index (what sendRun walks) agrees with the
// records' headers for every record it still holds, pads and wraps
// included, finds nothing that is not a record's start, and forgets
// everything on reset.
func TestRingIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	r := newRing(64 << 10)
	check := func(when string) {
		t.Helper()
		held := 0
		for pos := r.tail; pos < r.head; {
			var rec record
			if !r.decode(pos, &rec) {
				t.Fatalf("%s: decode(%d) found nothing before head %d", when, pos, r.head)
			}
			j, ok := r.indexed(rec.pos)
			if ok {
				held++
				l := r.idxLen[j%idxSize]
				if got, want := uint64(l&^idxSync), rec.next-rec.pos; got != want {
					t.Fatalf("%s: index length of record %d = %d, want %d", when, rec.seq, got, want)
				}
				if got, want := l&idxSync != 0, rec.flags&FlagSync != 0; got != want {
					t.Fatalf("%s: index sync flag of record %d = %v, want %v", when, rec.seq, got, want)
				}
			} else if r.idxN-rec.seq < idxSize/2 {
				t.Fatalf("%s: record %d of %d appended not in the index", when, rec.seq, r.idxN)
			}
			if _, ok := r.indexed(rec.pos + 1); ok {
				t.Fatalf("%s: indexed(%d), inside record %d, found an entry", when, rec.pos+1, rec.seq)
			}
			pos = rec.next
		}
		if r.records > 0 && held == 0 {
			t.Fatalf("%s: the index holds none of %d records", when, r.records)
		}
	}
	seq := uint64(0)
	for round := range 3 {
		for range 5000 {
			seq++
			var flags uint8
			if rng.IntN(4) == 0 {
				flags = FlagSync
			}
			data := make([]byte, rng.IntN(3000))
			if _, err := r.append(OpWrite, flags, seq, "c", "s", data, func(*record) {}); err != nil {
				t.Fatalf("append(%d) error %v", seq, err)
			}
		}
		check(fmt.Sprintf("round %d", round))
		r.reset()
		if _, ok := r.indexed(r.head); ok || r.idxN != 0 {
			t.Fatalf("after reset: the index still holds entries (%d)", r.idxN)
		}
		seq = 0 // record seq j+1 is index entry j
	}
}
