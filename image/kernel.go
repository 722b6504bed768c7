package image

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/ulikunitz/xz/lzma"
)

// An image carries the kernel as the distribution ships it, a bzImage (8 MiB), but a PVH boot
// needs the uncompressed ELF vmlinux inside it. On x86 the bzImage holds the vmlinux as one
// xz stream whose only block has two filters: the x86 branch converter (BCJ) and LZMA2. The
// xz package decodes LZMA2 but not BCJ, so the container is parsed here, LZMA2 is decoded
// with the lzma package, and the BCJ step is undone afterwards.

// ErrKernel is returned for a kernel whose vmlinux cannot be extracted.
var ErrKernel = errors.New("image: kernel")

// MaxVmlinux bounds the uncompressed kernel, so a hostile stream cannot make the boot ROM
// allocate without limit.
const MaxVmlinux = 256 << 20

// maxDict bounds the LZMA2 dictionary a stream may ask for (the kernel's build uses 32 MiB).
const maxDict = 64 << 20

var xzMagic = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}

// Vmlinux returns the uncompressed ELF kernel inside an x86 bzImage.
func Vmlinux(bzImage []byte) ([]byte, error) {
	off := bytes.Index(bzImage, xzMagic)
	if off < 0 {
		return nil, fmt.Errorf("%w: no xz stream in the bzImage", ErrKernel)
	}
	out, err := decodeXZ(bzImage[off:], MaxVmlinux)
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(out, []byte("\x7fELF")) {
		return nil, fmt.Errorf("%w: the decompressed kernel is not an ELF file", ErrKernel)
	}
	return out, nil
}

// Filter ids of the xz format.
const (
	xzFilterX86   = 0x04
	xzFilterLZMA2 = 0x21
)

// decodeXZ decodes the first block of an xz stream made of x86 BCJ + LZMA2 (or LZMA2 alone),
// as the kernel's build writes it, and checks its CRC32 when the stream has one.
func decodeXZ(s []byte, limit int) ([]byte, error) {
	// Stream header: magic, 2 flag bytes, CRC32 of the flags.
	if len(s) < 12 {
		return nil, fmt.Errorf("%w: xz stream header truncated", ErrKernel)
	}
	flags := s[6:8]
	if crc32.ChecksumIEEE(flags) != binary.LittleEndian.Uint32(s[8:12]) {
		return nil, fmt.Errorf("%w: xz stream header CRC mismatch", ErrKernel)
	}
	if flags[0] != 0 || flags[1]&0xf0 != 0 {
		return nil, fmt.Errorf("%w: xz stream flags %x not supported", ErrKernel, flags)
	}
	check := flags[1] & 0x0f
	if check != 0 && check != 1 {
		return nil, fmt.Errorf("%w: xz check type %d not supported (want none or CRC32)", ErrKernel, check)
	}
	s = s[12:]
	// Block header: size byte, flags, [sizes], filter flags, padding, CRC32.
	if len(s) < 1 || s[0] == 0 {
		return nil, fmt.Errorf("%w: xz stream has no block", ErrKernel)
	}
	hlen := (int(s[0]) + 1) * 4
	if len(s) < hlen {
		return nil, fmt.Errorf("%w: xz block header truncated", ErrKernel)
	}
	bh := s[:hlen]
	if crc32.ChecksumIEEE(bh[:hlen-4]) != binary.LittleEndian.Uint32(bh[hlen-4:]) {
		return nil, fmt.Errorf("%w: xz block header CRC mismatch", ErrKernel)
	}
	bflags := bh[1]
	if bflags&0x3c != 0 {
		return nil, fmt.Errorf("%w: xz block flags %#x reserved bits set", ErrKernel, bflags)
	}
	p := bh[2 : hlen-4]
	for _, present := range []bool{bflags&0x40 != 0, bflags&0x80 != 0} { // compressed, uncompressed size
		if present {
			_, n := binary.Uvarint(p)
			if n <= 0 {
				return nil, fmt.Errorf("%w: xz block header size field", ErrKernel)
			}
			p = p[n:]
		}
	}
	nfilters := int(bflags&0x03) + 1
	x86 := false
	dictCap := 0
	for i := 0; i < nfilters; i++ {
		id, n := binary.Uvarint(p)
		if n <= 0 {
			return nil, fmt.Errorf("%w: xz filter id", ErrKernel)
		}
		p = p[n:]
		psize, n := binary.Uvarint(p)
		if n <= 0 || uint64(len(p)-n) < psize {
			return nil, fmt.Errorf("%w: xz filter properties", ErrKernel)
		}
		props := p[n : n+int(psize)]
		p = p[n+int(psize):]
		last := i == nfilters-1
		switch {
		case id == xzFilterX86 && !last && !x86:
			if psize != 0 {
				return nil, fmt.Errorf("%w: x86 filter with a start offset is not supported", ErrKernel)
			}
			x86 = true
		case id == xzFilterLZMA2 && last:
			if psize != 1 || props[0] > 40 {
				return nil, fmt.Errorf("%w: LZMA2 properties %x", ErrKernel, props)
			}
			dictCap = lzma2DictSize(props[0])
			if dictCap > maxDict {
				return nil, fmt.Errorf("%w: LZMA2 dictionary of %d bytes over the %d limit", ErrKernel, dictCap, maxDict)
			}
		default:
			return nil, fmt.Errorf("%w: xz filter chain not supported (filter %#x at %d of %d)", ErrKernel, id, i+1, nfilters)
		}
	}
	// A dictionary larger than the output is never used.
	dictCap = min(dictCap, limit)
	if dictCap < lzma.MinDictCap {
		dictCap = lzma.MinDictCap
	}
	rest := bytes.NewReader(s[hlen:])
	r, err := lzma.Reader2Config{DictCap: dictCap}.NewReader2(rest)
	if err != nil {
		return nil, fmt.Errorf("%w: lzma2: %v", ErrKernel, err)
	}
	var out bytes.Buffer
	n, err := io.Copy(&out, io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("%w: lzma2: %v", ErrKernel, err)
	}
	if n > int64(limit) {
		return nil, fmt.Errorf("%w: decompressed kernel over %d bytes", ErrKernel, limit)
	}
	b := out.Bytes()
	if x86 {
		unBCJx86(b)
	}
	if check == 1 {
		// After the compressed data: padding to 4 bytes, then the check. The LZMA2 reader
		// reads exactly to its end marker, so the reader's position is the data's end.
		used := int(rest.Size()) - rest.Len()
		at := hlen + used
		at += (4 - at%4) % 4
		if at+4 > len(s) {
			return nil, fmt.Errorf("%w: xz check truncated", ErrKernel)
		}
		if crc32.ChecksumIEEE(b) != binary.LittleEndian.Uint32(s[at:]) {
			return nil, fmt.Errorf("%w: xz CRC32 of the kernel mismatch", ErrKernel)
		}
	}
	return b, nil
}

// lzma2DictSize decodes the LZMA2 dictionary size property (0..40).
func lzma2DictSize(p byte) int {
	if p == 40 {
		return lzma.MaxDictCap
	}
	return (2 | int(p&1)) << (p/2 + 11)
}

// unBCJx86 undoes the xz x86 branch converter in place on a whole buffer that starts at
// stream position 0. The encoder turned the relative targets of CALL (E8) and JMP (E9)
// instructions into absolute ones so that they compress better; this converts them back.
// It follows the xz format's description of the filter, with its heuristic for skipping
// E8/E9 bytes that are not instruction starts.
func unBCJx86(b []byte) {
	if len(b) < 5 {
		return
	}
	// allowed[mask] says whether a candidate is converted given the recent E8/E9 history;
	// bitNum[mask] is which byte of the operand the history refers to.
	allowed := [8]bool{true, true, true, false, true, false, false, false}
	bitNum := [8]uint{0, 1, 2, 2, 3, 3, 3, 3}
	msb := func(x byte) bool { return x == 0x00 || x == 0xff }
	prevPos := -1
	var prevMask uint32
	end := len(b) - 4
	for i := 0; i < end; i++ {
		if b[i]&0xfe != 0xe8 {
			continue
		}
		d := i - prevPos
		if prevPos < 0 || d > 3 {
			prevMask = 0
		} else {
			prevMask = (prevMask << uint(d-1)) & 7
			if prevMask != 0 {
				x := b[i+4-int(bitNum[prevMask])]
				if !allowed[prevMask] || msb(x) {
					prevPos = i
					prevMask = prevMask<<1 | 1
					continue
				}
			}
		}
		prevPos = i
		if !msb(b[i+4]) {
			prevMask = prevMask<<1 | 1
			continue
		}
		src := binary.LittleEndian.Uint32(b[i+1:])
		var dest uint32
		for {
			dest = src - uint32(i+5)
			if prevMask == 0 {
				break
			}
			j := bitNum[prevMask] * 8
			if !msb(byte(dest >> (24 - j))) {
				break
			}
			src = dest ^ (1<<(32-j) - 1)
		}
		dest &= 0x01ffffff
		dest |= -(dest & 0x01000000)
		binary.LittleEndian.PutUint32(b[i+1:], dest)
		i += 4
	}
}
