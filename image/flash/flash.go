// Package flash is a blade's flash disk: a boot-control block and two banks, A and B, each
// holding one signed image. The same code runs on both sides of the disk: the firmware writes
// an update into the inactive bank and marks it for a trial boot; the shelf's boot ROM (the
// QEMU launcher) reads the boot-control block, picks the bank to boot and verifies it.
//
// Layout (offsets in bytes):
//
//	0        4 KiB   boot-control block, copy 0
//	4 KiB    4 KiB   boot-control block, copy 1
//	8 KiB    bank A  (BankSize bytes)
//	8 KiB + BankSize  bank B
//
// Power may fail at any write. A bank is written only while it is inactive, and the
// boot-control block changes only after the new bank is written and verified. The block is
// kept in two copies, each with a sequence number and a CRC; an update writes the copy that
// does not hold the newest valid block, so a torn write leaves the previous block readable.
//
// Trial boots: a new image boots once as a trial. The firmware confirms it when healthy. A
// trial that is booted again without having been confirmed (a crash, a hang and watchdog
// reset, a power cut) has failed: the boot ROM falls back to the previous bank.
package flash

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// Geometry.
const (
	BCBSize  = 4096
	BankBase = 2 * BCBSize
	// DefaultBankSize holds a kernel (8 MiB) and an initramfs (~6 MiB) with room to grow.
	DefaultBankSize = 32 << 20
)

// Bank names a bank.
type Bank uint8

// The two banks; NoBank means none.
const (
	NoBank Bank = 0
	BankA  Bank = 1
	BankB  Bank = 2
)

func (b Bank) String() string {
	switch b {
	case BankA:
		return "A"
	case BankB:
		return "B"
	}
	return "-"
}

// Other is the other bank.
func (b Bank) Other() Bank {
	if b == BankA {
		return BankB
	}
	return BankA
}

// Trial states.
const (
	TrialNone    uint8 = 0 // no trial pending
	TrialPending uint8 = 1 // the trial bank is to be booted once
	TrialBooting uint8 = 2 // the trial bank was booted and is not confirmed yet
)

// BankInfo describes what a bank holds.
type BankInfo struct {
	Valid   bool
	Length  uint64
	Digest  [32]byte
	Version string // firmware version, for show image
}

// BCB is the boot-control block.
type BCB struct {
	Seq      uint64
	Active   Bank // the confirmed bank
	Trial    Bank // the bank on trial, if any
	State    uint8
	Boots    uint32 // boots counted by the boot ROM
	Fallback uint32 // failed trials so far
	Banks    [2]BankInfo
}

// Info returns the info of bank b.
func (c *BCB) Info(b Bank) *BankInfo { return &c.Banks[b-1] }

const bcbMagic = "CGOABCB1"

var errBCB = errors.New("flash: bad boot-control block")

// MarshalBinary encodes the block into BCBSize bytes with its CRC.
func (c BCB) MarshalBinary() ([]byte, error) {
	b := make([]byte, BCBSize)
	copy(b, bcbMagic)
	binary.BigEndian.PutUint64(b[8:], c.Seq)
	b[16], b[17], b[18] = byte(c.Active), byte(c.Trial), c.State
	binary.BigEndian.PutUint32(b[20:], c.Boots)
	binary.BigEndian.PutUint32(b[24:], c.Fallback)
	for i, bi := range c.Banks {
		o := 32 + i*96
		if bi.Valid {
			b[o] = 1
		}
		binary.BigEndian.PutUint64(b[o+8:], bi.Length)
		copy(b[o+16:o+48], bi.Digest[:])
		if len(bi.Version) > 32 {
			return nil, fmt.Errorf("flash: version %q too long", bi.Version)
		}
		copy(b[o+48:o+80], bi.Version)
	}
	binary.BigEndian.PutUint32(b[BCBSize-4:], crc32.ChecksumIEEE(b[:BCBSize-4]))
	return b, nil
}

// UnmarshalBinary decodes and checks a block.
func (c *BCB) UnmarshalBinary(b []byte) error {
	if len(b) != BCBSize {
		return fmt.Errorf("%w: %d bytes", errBCB, len(b))
	}
	if string(b[:8]) != bcbMagic {
		return fmt.Errorf("%w: no magic", errBCB)
	}
	if crc32.ChecksumIEEE(b[:BCBSize-4]) != binary.BigEndian.Uint32(b[BCBSize-4:]) {
		return fmt.Errorf("%w: CRC mismatch", errBCB)
	}
	n := BCB{Seq: binary.BigEndian.Uint64(b[8:]), Active: Bank(b[16]), Trial: Bank(b[17]), State: b[18],
		Boots: binary.BigEndian.Uint32(b[20:]), Fallback: binary.BigEndian.Uint32(b[24:])}
	if n.Active > BankB || n.Trial > BankB || n.State > TrialBooting || (n.State != TrialNone && n.Trial == NoBank) {
		return fmt.Errorf("%w: active %d trial %d state %d", errBCB, n.Active, n.Trial, n.State)
	}
	for i := range n.Banks {
		o := 32 + i*96
		n.Banks[i] = BankInfo{Valid: b[o] == 1, Length: binary.BigEndian.Uint64(b[o+8:])}
		copy(n.Banks[i].Digest[:], b[o+16:o+48])
		n.Banks[i].Version = string(bytes.TrimRight(b[o+48:o+80], "\x00"))
	}
	*c = n
	return nil
}

// Device is the flash disk: a file on the host, a block device in the blade.
type Device interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
}

// Flash is an opened flash disk.
type Flash struct {
	dev      Device
	bankSize int64
}

// Open opens a flash device with banks of bankSize bytes.
func Open(dev Device, bankSize int64) *Flash { return &Flash{dev: dev, bankSize: bankSize} }

// Size is the disk size this geometry needs.
func Size(bankSize int64) int64 { return BankBase + 2*bankSize }

// ErrBlank is returned by ReadBCB on a disk that was never formatted.
var ErrBlank = errors.New("flash: no valid boot-control block (blank disk)")

// ReadBCB returns the newest valid boot-control block and the copy it was read from.
func (f *Flash) ReadBCB() (BCB, int, error) {
	var best BCB
	which := -1
	for i := 0; i < 2; i++ {
		b := make([]byte, BCBSize)
		if _, err := f.dev.ReadAt(b, int64(i*BCBSize)); err != nil && !errors.Is(err, io.EOF) {
			return BCB{}, -1, fmt.Errorf("flash: read boot-control block %d: %w", i, err)
		}
		var c BCB
		if c.UnmarshalBinary(b) != nil {
			continue
		}
		if which < 0 || c.Seq > best.Seq {
			best, which = c, i
		}
	}
	if which < 0 {
		return BCB{}, -1, ErrBlank
	}
	return best, which, nil
}

// WriteBCB stores c as the next block: its sequence number is set above the newest one, and it
// goes into the copy that does not hold the newest block.
func (f *Flash) WriteBCB(c BCB) (BCB, error) {
	cur, which, err := f.ReadBCB()
	target := 0
	switch {
	case err == nil:
		c.Seq = cur.Seq + 1
		target = 1 - which
	case errors.Is(err, ErrBlank):
		c.Seq = 1
	default:
		return c, err
	}
	b, err := c.MarshalBinary()
	if err != nil {
		return c, err
	}
	if _, err := f.dev.WriteAt(b, int64(target*BCBSize)); err != nil {
		return c, fmt.Errorf("flash: write boot-control block: %w", err)
	}
	if err := f.dev.Sync(); err != nil {
		return c, fmt.Errorf("flash: sync: %w", err)
	}
	return c, nil
}

func (f *Flash) bankOffset(b Bank) int64 { return BankBase + int64(b-1)*f.bankSize }

// WriteBank writes an image into bank b and syncs. It refuses the active bank and the bank a
// trial is running from. It does not touch the boot-control block.
func (f *Flash) WriteBank(b Bank, img []byte) error {
	if b != BankA && b != BankB {
		return fmt.Errorf("flash: no bank %v", b)
	}
	if int64(len(img)) > f.bankSize {
		return fmt.Errorf("flash: image of %d bytes does not fit a %d-byte bank", len(img), f.bankSize)
	}
	if c, _, err := f.ReadBCB(); err == nil && (c.Active == b || (c.State != TrialNone && c.Trial == b)) {
		return fmt.Errorf("flash: bank %v is in use (active %v, trial %v)", b, c.Active, c.Trial)
	}
	if _, err := f.dev.WriteAt(img, f.bankOffset(b)); err != nil {
		return fmt.Errorf("flash: write bank %v: %w", b, err)
	}
	return f.dev.Sync()
}

// ReadBank returns the length bytes bank b holds.
func (f *Flash) ReadBank(b Bank, length uint64) ([]byte, error) {
	if int64(length) > f.bankSize {
		return nil, fmt.Errorf("flash: bank %v length %d over the bank size %d", b, length, f.bankSize)
	}
	buf := make([]byte, length)
	if _, err := f.dev.ReadAt(buf, f.bankOffset(b)); err != nil {
		return nil, fmt.Errorf("flash: read bank %v: %w", b, err)
	}
	return buf, nil
}

func crcOf(b []byte) uint32 { return crc32.ChecksumIEEE(b[:BCBSize-4]) }
