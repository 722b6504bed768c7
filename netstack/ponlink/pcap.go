package ponlink

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// LinkTypeEPON is the pcap link type of EPON frames with their preamble
// (LINKTYPE_EPON, 259): what Wireshark's "epon" dissector reads, showing
// each frame's mode bit and LLID before the Ethernet frame.
const LinkTypeEPON = 259

// PcapWriter writes a classic libpcap capture (nanosecond timestamps) of
// PON frames as they would be on the fibre: the EPON preamble carrying
// the mode bit and LLID with its CRC-8 (802.3 65.1.3.2), then the
// Ethernet frame. The FCS is left out, as most captures do: Wireshark
// guesses it from a LINKTYPE_EPON record and would read it as payload.
// It only formats bytes; the caller owns w.
//
//	pw, err := ponlink.NewPcapWriter(f)
//	pw.WriteFrame(at, llid, mode, frame) // frame without FCS
type PcapWriter struct {
	w   io.Writer
	buf []byte
	n   int
}

// NewPcapWriter writes the file header to w.
func NewPcapWriter(w io.Writer) (*PcapWriter, error) {
	h := make([]byte, 24)
	binary.LittleEndian.PutUint32(h[0:], 0xa1b23c4d) // nanosecond resolution
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], 65535)
	binary.LittleEndian.PutUint32(h[20:], LinkTypeEPON)
	if _, err := w.Write(h); err != nil {
		return nil, fmt.Errorf("ponlink: pcap header: %w", err)
	}
	return &PcapWriter{w: w}, nil
}

// preambleLen is the part of the EPON preamble a LINKTYPE_EPON record
// holds: SLD 0xd5, 0x55, 0x55 (no DPoE security), mode|LLID, CRC-8.
const preambleLen = 6

// WriteFrame adds one frame (Ethernet, no FCS) seen at at on llid.
func (p *PcapWriter) WriteFrame(at time.Time, llid uint16, mode bool, frame []byte) error {
	if llid > MaxLLID {
		return fmt.Errorf("ponlink: pcap: LLID %#x: %w", llid, ErrLLID)
	}
	if len(frame) < MinFrame || len(frame) > MaxFrame {
		return fmt.Errorf("ponlink: pcap: %d-byte frame: %w", len(frame), ErrFrameSize)
	}
	n := preambleLen + len(frame)
	b := p.buf[:0]
	b = binary.LittleEndian.AppendUint32(b, uint32(at.Unix()))
	b = binary.LittleEndian.AppendUint32(b, uint32(at.Nanosecond()))
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	ml := llid
	if mode {
		ml |= 0x8000
	}
	pre := len(b)
	b = append(b, 0xd5, 0x55, 0x55, byte(ml>>8), byte(ml))
	b = append(b, PreambleCRC8(b[pre:]))
	b = append(b, frame...)
	p.buf = b
	if _, err := p.w.Write(b); err != nil {
		return fmt.Errorf("ponlink: pcap record %d: %w", p.n+1, err)
	}
	p.n++
	return nil
}

// Frames is the number of frames written.
func (p *PcapWriter) Frames() int { return p.n }

// PreambleCRC8 is the EPON preamble's CRC-8 (polynomial x^8+x^2+x+1,
// initial value 0, bits in transmission order, least significant first)
// over the SLD through the LLID.
func PreambleCRC8(b []byte) byte {
	var c byte
	for _, v := range b {
		c ^= v
		for range 8 {
			if c&1 != 0 {
				c = c>>1 ^ 0xe0
			} else {
				c >>= 1
			}
		}
	}
	return c
}
