package ckpt

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
)

func testGMACPair(t testing.TB, key []byte) (*gmac, cipher.AEAD) {
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		t.Fatal(err)
	}
	return newGMAC(b), a
}

// stdTag is the standard library's GMAC of data under counter n.
func stdTag(a cipher.AEAD, n uint64, data []byte) []byte {
	var nc [12]byte
	binary.BigEndian.PutUint64(nc[4:], n)
	return a.Seal(nil, nc[:], nil, data)
}

// TestGMACMatchesGCM checks the fast GMAC against crypto/cipher's GCM,
// for every length up to 1100 bytes and some large ones, whole and in
// random pieces.
func TestGMACMatchesGCM(t *testing.T) {
	if !fastGHASH {
		t.Skip("no AVX-512 VPCLMULQDQ: a Link uses crypto/cipher's GCM")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	key := make([]byte, 16)
	for _, k := range []int{0, 1, 2} {
		for i := range key {
			key[i] = byte(rng.Uint32())
		}
		if k == 0 {
			clear(key)
		}
		g, a := testGMACPair(t, key)
		lens := []int{}
		for n := 0; n <= 1100; n++ {
			lens = append(lens, n)
		}
		lens = append(lens, 4095, 4096, 4097, 64<<10, 64<<10+57, 256<<10+3)
		buf := make([]byte, 256<<10+3)
		for i := range buf {
			buf[i] = byte(rng.Uint32())
		}
		for _, n := range lens {
			data := buf[:n]
			nonce := rng.Uint64()
			want := stdTag(a, nonce, data)
			g.reset()
			g.write(data)
			var got [tagLen]byte
			g.sum(&got, nonce)
			if string(got[:]) != string(want) {
				t.Fatalf("key %d: gmac(%d bytes) = %x, want %x", k, n, got, want)
			}
			// In random pieces.
			g.reset()
			for rest := data; len(rest) > 0; {
				p := min(len(rest), rng.IntN(300))
				g.write(rest[:p])
				rest = rest[p:]
			}
			if !g.verify(want, nonce) {
				t.Fatalf("key %d: gmac(%d bytes in pieces) does not verify the GCM tag", k, n)
			}
			want[rng.IntN(len(want))] ^= 1
			g.reset()
			g.write(data)
			if g.verify(want, nonce) {
				t.Fatalf("key %d: gmac(%d bytes) verifies a wrong tag", k, n)
			}
		}
	}
}

func BenchmarkGMAC(b *testing.B) {
	for _, n := range []int{1 << 10, 64 << 10} {
		data := make([]byte, n)
		g, a := testGMACPair(b, make([]byte, 16))
		b.Run(fmt.Sprintf("fast/%d", n), func(b *testing.B) {
			if !fastGHASH {
				b.Skip("no fast GHASH")
			}
			b.SetBytes(int64(n))
			var t [tagLen]byte
			for b.Loop() {
				g.reset()
				g.write(data)
				g.sum(&t, 1)
			}
		})
		b.Run(fmt.Sprintf("std/%d", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			var nc [12]byte
			tag := make([]byte, 0, tagLen)
			for b.Loop() {
				a.Seal(tag[:0], nc[:], nil, data)
			}
		})
	}
}

// BenchmarkGMACPieces tags a batch as a Link writes it: each message's
// length and head (51 bytes) apart from its 1 KiB of data in the ring.
func BenchmarkGMACPieces(b *testing.B) {
	if !fastGHASH {
		b.Skip("no fast GHASH")
	}
	g, _ := testGMACPair(b, make([]byte, 16))
	head, data := make([]byte, 51), make([]byte, 1024)
	b.SetBytes(200 * int64(len(head)+len(data)))
	var t [tagLen]byte
	for b.Loop() {
		g.reset()
		for range 200 {
			g.write(head)
			g.write(data)
		}
		g.sum(&t, 1)
	}
}
