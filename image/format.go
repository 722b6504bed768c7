package image

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// A signed blade image is a fixed header, the kernel, the initramfs, then a trailer with the
// SHA-256 digest of everything before it and an ed25519 signature of that digest:
//
//	offset  size  field
//	0       8     magic "CGOAIMG\x00"
//	8       2     format version (1), big endian like every number here
//	10      2     header length (128)
//	12      16    role, NUL padded ("mgmt", "switch", "epon")
//	28      32    firmware version, NUL padded ("MAJOR.MINOR.PATCH[-suffix]")
//	60      8     build time, Unix seconds
//	68      8     kernel length
//	76      8     initramfs length
//	84      8     key id: the first 8 bytes of SHA-256 of the signing public key
//	92      36    reserved, zero
//	128     ...   kernel, then initramfs
//	end-96  32    SHA-256 of bytes [0, end-96)
//	end-64  64    ed25519 signature of the digest
//
// The digest covers the header, so role and version cannot be changed without breaking the
// signature; signing the digest lets a verifier stream the payload once.
const (
	Magic         = "CGOAIMG\x00"
	FormatVersion = 1
	HeaderLen     = 128
	TrailerLen    = sha256.Size + ed25519.SignatureSize
	// MaxPayload bounds kernel and initramfs lengths read from a header, so a corrupt header
	// cannot make a reader allocate without limit.
	MaxPayload = 256 << 20
)

// Header is an image's header.
type Header struct {
	Role         string
	Version      string
	Built        time.Time
	KernelLen    uint64
	InitramfsLen uint64
	KeyID        [8]byte
}

// Errors an image can be refused with; wrapped with details.
var (
	ErrFormat    = errors.New("image: not a valid CGOA image")
	ErrTruncated = errors.New("image: truncated")
	ErrDigest    = errors.New("image: digest mismatch (corrupted)")
	ErrSignature = errors.New("image: bad signature")
	ErrUnsigned  = errors.New("image: unsigned")
	ErrRole      = errors.New("image: wrong role")
	ErrOlder     = errors.New("image: older than the running firmware")
)

// KeyID is the id an image records for the key that signed it.
func KeyID(pub ed25519.PublicKey) [8]byte {
	sum := sha256.Sum256(pub)
	var id [8]byte
	copy(id[:], sum[:8])
	return id
}

// MarshalHeader encodes h. Role and version must fit their fields.
func MarshalHeader(h Header) ([]byte, error) {
	if h.Role == "" || len(h.Role) > 16 {
		return nil, fmt.Errorf("%w: role %q must be 1..16 bytes", ErrFormat, h.Role)
	}
	if _, err := ParseVersion(h.Version); err != nil || len(h.Version) > 32 {
		return nil, fmt.Errorf("%w: version %q: want MAJOR.MINOR.PATCH, at most 32 bytes", ErrFormat, h.Version)
	}
	if h.KernelLen > MaxPayload || h.InitramfsLen > MaxPayload {
		return nil, fmt.Errorf("%w: payload over %d bytes", ErrFormat, MaxPayload)
	}
	b := make([]byte, HeaderLen)
	copy(b, Magic)
	binary.BigEndian.PutUint16(b[8:], FormatVersion)
	binary.BigEndian.PutUint16(b[10:], HeaderLen)
	copy(b[12:28], h.Role)
	copy(b[28:60], h.Version)
	binary.BigEndian.PutUint64(b[60:], uint64(h.Built.Unix()))
	binary.BigEndian.PutUint64(b[68:], h.KernelLen)
	binary.BigEndian.PutUint64(b[76:], h.InitramfsLen)
	copy(b[84:92], h.KeyID[:])
	return b, nil
}

// ParseHeader decodes the first HeaderLen bytes of an image.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, fmt.Errorf("%w: header is %d bytes, want %d", ErrTruncated, len(b), HeaderLen)
	}
	if string(b[:8]) != Magic {
		return Header{}, fmt.Errorf("%w: bad magic %q", ErrFormat, b[:8])
	}
	if v := binary.BigEndian.Uint16(b[8:]); v != FormatVersion {
		return Header{}, fmt.Errorf("%w: format version %d, this firmware reads %d", ErrFormat, v, FormatVersion)
	}
	if l := binary.BigEndian.Uint16(b[10:]); l != HeaderLen {
		return Header{}, fmt.Errorf("%w: header length %d, want %d", ErrFormat, l, HeaderLen)
	}
	h := Header{
		Role:         cstr(b[12:28]),
		Version:      cstr(b[28:60]),
		Built:        time.Unix(int64(binary.BigEndian.Uint64(b[60:])), 0).UTC(),
		KernelLen:    binary.BigEndian.Uint64(b[68:]),
		InitramfsLen: binary.BigEndian.Uint64(b[76:]),
	}
	copy(h.KeyID[:], b[84:92])
	if !zeroPadded(b[12:28]) || !zeroPadded(b[28:60]) {
		return h, fmt.Errorf("%w: role or version field has bytes after its terminating NUL", ErrFormat)
	}
	if h.Role == "" || !printableASCII(h.Role) {
		return h, fmt.Errorf("%w: role field %q", ErrFormat, h.Role)
	}
	if _, err := ParseVersion(h.Version); err != nil {
		return h, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	if h.KernelLen > MaxPayload || h.InitramfsLen > MaxPayload {
		return h, fmt.Errorf("%w: payload lengths %d+%d over the %d limit", ErrFormat, h.KernelLen, h.InitramfsLen, MaxPayload)
	}
	if !bytes.Equal(b[92:HeaderLen], make([]byte, HeaderLen-92)) {
		return h, fmt.Errorf("%w: reserved header bytes are not zero", ErrFormat)
	}
	return h, nil
}

// Size is the whole image's size for this header.
func (h Header) Size() int64 {
	return HeaderLen + int64(h.KernelLen) + int64(h.InitramfsLen) + TrailerLen
}

func cstr(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// zeroPadded reports whether everything after the first NUL is NUL too.
func zeroPadded(b []byte) bool {
	i := bytes.IndexByte(b, 0)
	return i < 0 || bytes.Count(b[i:], []byte{0}) == len(b)-i
}

func printableASCII(s string) bool {
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// Build writes a signed image of kernel and initramfs to w.
func Build(w io.Writer, h Header, kernel, initramfs []byte, key ed25519.PrivateKey) error {
	h.KernelLen, h.InitramfsLen = uint64(len(kernel)), uint64(len(initramfs))
	h.KeyID = KeyID(key.Public().(ed25519.PublicKey))
	hdr, err := MarshalHeader(h)
	if err != nil {
		return err
	}
	d := sha256.New()
	mw := io.MultiWriter(w, d)
	for _, part := range [][]byte{hdr, kernel, initramfs} {
		if _, err := mw.Write(part); err != nil {
			return fmt.Errorf("image: write: %w", err)
		}
	}
	sum := d.Sum(nil)
	if _, err := w.Write(append(sum, ed25519.Sign(key, sum)...)); err != nil {
		return fmt.Errorf("image: write: %w", err)
	}
	return nil
}

// Image is a verified image held in memory.
type Image struct {
	Header    Header
	Kernel    []byte
	Initramfs []byte
	Digest    [32]byte
}

// Verify reads a whole image from r, checks its structure, digest and signature against the
// trusted keys, and returns it. Nothing is returned unless every check passes.
func Verify(r io.Reader, trusted []ed25519.PublicKey) (*Image, error) {
	hb := make([]byte, HeaderLen)
	if _, err := io.ReadFull(r, hb); err != nil {
		return nil, fmt.Errorf("%w: reading header: %v", ErrTruncated, err)
	}
	h, err := ParseHeader(hb)
	if err != nil {
		return nil, err
	}
	d := sha256.New()
	d.Write(hb)
	img := &Image{Header: h, Kernel: make([]byte, h.KernelLen), Initramfs: make([]byte, h.InitramfsLen)}
	for _, part := range [][]byte{img.Kernel, img.Initramfs} {
		if _, err := io.ReadFull(r, part); err != nil {
			return nil, fmt.Errorf("%w: payload: %v", ErrTruncated, err)
		}
		d.Write(part)
	}
	tr := make([]byte, TrailerLen)
	if _, err := io.ReadFull(r, tr); err != nil {
		return nil, fmt.Errorf("%w: trailer: %v", ErrTruncated, err)
	}
	if n, _ := r.Read(make([]byte, 1)); n != 0 {
		return nil, fmt.Errorf("%w: data after the trailer", ErrFormat)
	}
	sum := d.Sum(nil)
	if !bytes.Equal(sum, tr[:32]) {
		return nil, ErrDigest
	}
	sig := tr[32:]
	if bytes.Equal(sig, make([]byte, ed25519.SignatureSize)) {
		return nil, ErrUnsigned
	}
	for _, k := range trusted {
		if KeyID(k) == h.KeyID && ed25519.Verify(k, sum, sig) {
			copy(img.Digest[:], sum)
			return img, nil
		}
	}
	return nil, fmt.Errorf("%w: not signed by a trusted key (key id %x)", ErrSignature, h.KeyID)
}

// Accept checks that a verified image may replace the running firmware: same role, and not
// older unless force is set.
func Accept(h Header, role, running string, force bool) error {
	if h.Role != role {
		return fmt.Errorf("%w: image is for %q, this blade is %q", ErrRole, h.Role, role)
	}
	if force {
		return nil
	}
	c, err := CompareVersions(h.Version, running)
	if err != nil {
		return err
	}
	if c < 0 {
		return fmt.Errorf("%w: image %s, running %s (force to downgrade)", ErrOlder, h.Version, running)
	}
	return nil
}

// Version is a parsed MAJOR.MINOR.PATCH[-suffix].
type Version struct {
	Major, Minor, Patch int
	Suffix              string
}

// ParseVersion parses MAJOR.MINOR.PATCH with an optional -suffix.
func ParseVersion(s string) (Version, error) {
	core, suffix, _ := strings.Cut(s, "-")
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return Version{}, fmt.Errorf("version %q: want MAJOR.MINOR.PATCH", s)
	}
	var v Version
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || p != strconv.Itoa(n) {
			return Version{}, fmt.Errorf("version %q: %q is not a number", s, p)
		}
		*[]*int{&v.Major, &v.Minor, &v.Patch}[i] = n
	}
	if !printableASCII(suffix) && suffix != "" {
		return Version{}, fmt.Errorf("version %q: bad suffix", s)
	}
	v.Suffix = suffix
	return v, nil
}

// CompareVersions orders two versions: -1, 0 or 1. A suffixed version (a pre-release or dev
// build) is older than the same version without one.
func CompareVersions(a, b string) (int, error) {
	va, err := ParseVersion(a)
	if err != nil {
		return 0, err
	}
	vb, err := ParseVersion(b)
	if err != nil {
		return 0, err
	}
	for _, p := range [][2]int{{va.Major, vb.Major}, {va.Minor, vb.Minor}, {va.Patch, vb.Patch}} {
		if p[0] != p[1] {
			if p[0] < p[1] {
				return -1, nil
			}
			return 1, nil
		}
	}
	switch {
	case va.Suffix == vb.Suffix:
		return 0, nil
	case va.Suffix == "":
		return 1, nil
	case vb.Suffix == "":
		return -1, nil
	}
	return strings.Compare(va.Suffix, vb.Suffix), nil
}
