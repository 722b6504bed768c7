package ckpt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
)

// gmac is AES-GMAC (GCM authenticating its additional data, with nothing
// to encrypt) computed the same as cipher.AEAD.Seal(nil, nonce, nil, data)
// and Open, tag for tag, but by ghash_amd64.s: the standard library's
// GHASH over additional data ran at about 5 GB/s here, about a fifth of
// a Link's CPU at a GB/s on each side; this one at several times that.
// It also takes its data in pieces (a batch's header, then messages where
// they lie), which the AEAD interface cannot. Where the CPU lacks the
// instructions (fastGHASH false) a Link uses the cipher.AEAD instead.
//
// GHASH state and key powers are held byte-reversed (bit-reflected
// integers, where a carry-less product of two elements comes out
// multiplied by y^-127 in the reflected field): the powers are stored
// times y (H^k·y mod P'), so the product of the state and a power,
// reduced Montgomery-style by y^128, is exactly the state times H^k.
type gmac struct {
	block cipher.Block
	htab  [32][16]byte // H^32 ... H^1 (each ·y, reflected)
	// A running tag: state, the partial block and its length, bytes
	// taken.
	y     [16]byte
	part  [gmacStage]byte
	npart int
	total uint64
	j     [16]byte // the encrypted counter block (not on the stack: it would escape through cipher.Block)
}

func newGMAC(b cipher.Block) *gmac {
	g := &gmac{block: b}
	var h [16]byte
	b.Encrypt(h[:], h[:])
	hh, hl := binary.BigEndian.Uint64(h[:8]), binary.BigEndian.Uint64(h[8:])
	ph, pl := hh, hl // H^k in GCM's own bit order
	for k := 1; k <= len(g.htab); k++ {
		if k > 1 {
			ph, pl = gfMul(ph, pl, hh, hl)
		}
		// Reflected: the bytes reversed, i.e. the little-endian reading
		// of the big-endian value; then times y (shift left, reduce).
		lo, hi := pl, ph
		carry := hi >> 63
		hi = hi<<1 | lo>>63
		lo <<= 1
		if carry != 0 {
			hi ^= 0xc200000000000000
			lo ^= 1
		}
		e := &g.htab[len(g.htab)-k]
		binary.LittleEndian.PutUint64(e[:8], lo)
		binary.LittleEndian.PutUint64(e[8:], hi)
	}
	return g
}

// gfMul multiplies two elements of GCM's field in its own bit order
// (the first bit of the block is x^0; NIST SP 800-38D, algorithm 1).
// Only the key setup uses it.
func gfMul(xh, xl, yh, yl uint64) (zh, zl uint64) {
	vh, vl := yh, yl
	for i := range 128 {
		var bit uint64
		if i < 64 {
			bit = xh >> (63 - i) & 1
		} else {
			bit = xl >> (127 - i) & 1
		}
		if bit != 0 {
			zh ^= vh
			zl ^= vl
		}
		lsb := vl & 1
		vl = vl>>1 | vh<<63
		vh >>= 1
		if lsb != 0 {
			vh ^= 0xe100000000000000
		}
	}
	return zh, zl
}

// gmacStage is the staging buffer of a running tag: small or unaligned
// pieces (a message's length and head between two ring slices) are
// gathered here and hashed 16 blocks at a time rather than one call
// each.
const gmacStage = 512

// reset starts a tag.
func (g *gmac) reset() {
	g.y, g.npart, g.total = [16]byte{}, 0, 0
}

// write adds data to the tag.
func (g *gmac) write(p []byte) {
	g.total += uint64(len(p))
	if g.npart > 0 || len(p) < gmacStage/2 {
		n := copy(g.part[g.npart:], p)
		g.npart += n
		p = p[n:]
		if g.npart < gmacStage {
			return
		}
		ghashBlocks(&g.y, &g.htab, &g.part[0], gmacStage)
		g.npart = 0
	}
	if n := len(p) &^ 15; n > 0 {
		ghashBlocks(&g.y, &g.htab, &p[0], n)
		p = p[n:]
	}
	g.npart = copy(g.part[:], p)
}

// sum completes the tag under the 12-byte GCM nonce made of counter n
// (as nonce() makes it) into tag.
func (g *gmac) sum(tag *[tagLen]byte, n uint64) {
	if g.npart > 0 {
		n := (g.npart + 15) &^ 15
		clear(g.part[g.npart:n])
		ghashBlocks(&g.y, &g.htab, &g.part[0], n)
		g.npart = 0
	}
	var lens [16]byte
	binary.BigEndian.PutUint64(lens[:8], g.total*8)
	ghashBlocks(&g.y, &g.htab, &lens[0], 16)
	// J0 = nonce || 1, encrypted, masks the hash (back in GCM's order).
	j := &g.j
	clear(j[:4])
	binary.BigEndian.PutUint64(j[4:], n)
	binary.BigEndian.PutUint32(j[12:], 1)
	g.block.Encrypt(j[:], j[:])
	lo, hi := binary.LittleEndian.Uint64(g.y[:8]), binary.LittleEndian.Uint64(g.y[8:])
	binary.BigEndian.PutUint64(tag[:8], hi^binary.BigEndian.Uint64(j[:8]))
	binary.BigEndian.PutUint64(tag[8:], lo^binary.BigEndian.Uint64(j[8:]))
}

// verify completes the tag and compares it with want in constant time.
func (g *gmac) verify(want []byte, n uint64) bool {
	var t [tagLen]byte
	g.sum(&t, n)
	return subtle.ConstantTimeCompare(t[:], want) == 1
}

// A power-on self-test: the fast GMAC is used only if it agrees with
// crypto/cipher's GCM (tag for tag, over the 32-block, 16-block, 4-block and
// 1-block paths and a partial block) on this CPU.
func init() {
	if fastGHASH {
		fastGHASH = gmacSelfTest()
	}
}

func gmacSelfTest() bool {
	key := []byte("cgoa-gmac-selftest")[:16]
	b, err := aes.NewCipher(key)
	if err != nil {
		return false
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		return false
	}
	g := newGMAC(b)
	data := make([]byte, 512+256+64+16+5)
	for i := range data {
		data[i] = byte(i*7 + 1)
	}
	var nc [12]byte
	want := a.Seal(nil, nonce(&nc, 3), nil, data)
	g.reset()
	g.write(data[:100])
	g.write(data[100:])
	return g.verify(want, 3)
}
