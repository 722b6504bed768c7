package onu

import (
	"encoding/binary"
	"net"
)

// TestEtherType is the EtherType of numbered test frames (IEEE 802
// local experimental EtherType 1).
const TestEtherType = 0x88b5

var testMagic = [4]byte{'C', 'G', 'O', 'A'}

// numberedHeader is the Ethernet header, magic, stream and sequence.
const numberedHeader = 14 + 4 + 4 + 8

// MinNumbered is the shortest numbered frame.
const MinNumbered = 60

// NumberedFrame builds a test frame of size bytes (no FCS; at least
// MinNumbered) from src to dst that carries its stream and sequence
// number, so the receiver can count loss (LossCounter).
func NumberedFrame(dst, src net.HardwareAddr, stream uint32, seq uint64, size int) []byte {
	size = max(size, MinNumbered)
	b := make([]byte, size)
	copy(b[0:6], dst)
	copy(b[6:12], src)
	binary.BigEndian.PutUint16(b[12:], TestEtherType)
	copy(b[14:18], testMagic[:])
	binary.BigEndian.PutUint32(b[18:], stream)
	binary.BigEndian.PutUint64(b[22:], seq)
	return b
}

// ParseNumbered reads a numbered test frame's stream and sequence; ok is
// false for any other frame.
func ParseNumbered(b []byte) (stream uint32, seq uint64, ok bool) {
	if len(b) < numberedHeader || binary.BigEndian.Uint16(b[12:]) != TestEtherType || [4]byte(b[14:18]) != testMagic {
		return 0, 0, false
	}
	return binary.BigEndian.Uint32(b[18:]), binary.BigEndian.Uint64(b[22:]), true
}

// LossCounter counts numbered frames per stream: received, lost (gaps in
// the sequence) and out of order (a number at or below one already seen,
// a duplicate or a late frame; EPON keeps order, so any is a fault). A
// late frame that fills a gap does not take back the loss counted for it.
type LossCounter struct {
	next map[uint32]uint64
	// Received, Lost and OutOfOrder per stream.
	Received, Lost, OutOfOrder map[uint32]uint64
}

// NewLossCounter returns an empty counter.
func NewLossCounter() *LossCounter {
	return &LossCounter{next: map[uint32]uint64{}, Received: map[uint32]uint64{},
		Lost: map[uint32]uint64{}, OutOfOrder: map[uint32]uint64{}}
}

// Add counts one frame; it returns false for a frame that is not a
// numbered test frame.
func (c *LossCounter) Add(frame []byte) bool {
	s, seq, ok := ParseNumbered(frame)
	if !ok {
		return false
	}
	c.Received[s]++
	n := c.next[s]
	switch {
	case seq == n:
	case seq > n:
		c.Lost[s] += seq - n
	default:
		c.OutOfOrder[s]++
		return true
	}
	c.next[s] = seq + 1
	return true
}

// Expect counts as lost the frames of stream s up to sent (the number
// the sender numbered) that never arrived after the last one that did.
func (c *LossCounter) Expect(s uint32, sent uint64) {
	if n := c.next[s]; sent > n {
		c.Lost[s] += sent - n
		c.next[s] = sent
	}
}
