package transport

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
)

// Frame layout (big endian), version 1:
//
//	off len field
//	0   2   magic "HA"
//	2   1   version (1)
//	3   1   type
//	4   2   shelf id
//	6   1   sender slot
//	7   1   destination slot (Broadcast = all)
//	8   8   sender epoch (incarnation; grows on every start)
//	16  8   sequence number (per sender and epoch, starts at 1)
//	24  2   payload length n
//	26  n   payload
//	26+n 16 tag: HMAC-SHA256(shelf key, bytes 0..26+n) truncated to 16 bytes
//
// The path (base0/base1) a frame travelled is deliberately not covered:
// the same sealed bytes go out on both paths and the receiver keeps the
// first copy.
const (
	HeaderLen = 26
	TagLen    = 16
	// MaxPayload bounds a frame to one unfragmented datagram on the base
	// interfaces (1500-byte MTU minus IP and UDP headers, header and tag).
	MaxPayload = 1472 - HeaderLen - TagLen
	// Version is the frame format version this package speaks.
	Version = 1
	// Broadcast as destination addresses every member of the shelf.
	Broadcast = 0xff
)

var magic = [2]byte{'H', 'A'}

// Type says what a frame's payload is.
type Type uint8

// Frame types carried by the HA core.
const (
	TypeHeartbeat Type = 1  // membership heartbeat (format before TypeBeat; still understood)
	TypeLease     Type = 2  // lease request / grant / release (latency-critical, sent at once)
	TypeRaft      Type = 3  // go.etcd.io/raft message for the replicated shelf configuration
	TypeEvent     Type = 4  // shelf-wide event
	TypeLeave     Type = 5  // graceful leave
	TypeAdmin     Type = 6  // administrative operation (switchover, lock, unlock, repair)
	TypeBeat      Type = 7  // heartbeat with the interval's lease requests, renewals and releases, in one frame
	TypeLinks     Type = 8  // carrier report: the slots whose channel to the sender has no carrier
	TypeUser      Type = 64 // first type free for users of the transport (checkpoints, ...)
)

// Errors returned by Open and counted by Endpoint.
var (
	ErrShort     = errors.New("frame truncated")
	ErrMagic     = errors.New("bad magic")
	ErrVersion   = errors.New("unsupported version")
	ErrLength    = errors.New("payload length mismatch")
	ErrAuth      = errors.New("authentication failed")
	ErrTooBig    = errors.New("payload too large")
	ErrShelf     = errors.New("frame for another shelf")
	ErrNotForUs  = errors.New("frame for another slot")
	ErrReplay    = errors.New("replayed or too old sequence")
	ErrStale     = errors.New("stale sender epoch")
	ErrDuplicate = errors.New("duplicate (other path)")
	ErrSelf      = errors.New("frame from own slot")
)

// Header is the authenticated frame header.
type Header struct {
	Type  Type
	Shelf uint16
	From  uint8
	To    uint8
	Epoch uint64
	Seq   uint64
}

// Frame is a decoded, authenticated frame.
type Frame struct {
	Header
	Payload []byte
}

// Key is a shelf key. Every member of a shelf holds the same key; frames
// sealed with another key are dropped.
type Key []byte

// Seal encodes f and appends its tag. It never does I/O.
func Seal(key Key, f Frame) ([]byte, error) {
	return seal(hmac.New(sha256.New, key), f)
}

func seal(mac hash.Hash, f Frame) ([]byte, error) {
	if len(f.Payload) > MaxPayload {
		return nil, fmt.Errorf("transport: seal type %d: %d bytes: %w", f.Type, len(f.Payload), ErrTooBig)
	}
	b := make([]byte, HeaderLen+len(f.Payload), HeaderLen+len(f.Payload)+TagLen)
	copy(b[0:2], magic[:])
	b[2] = Version
	b[3] = byte(f.Type)
	binary.BigEndian.PutUint16(b[4:], f.Shelf)
	b[6] = f.From
	b[7] = f.To
	binary.BigEndian.PutUint64(b[8:], f.Epoch)
	binary.BigEndian.PutUint64(b[16:], f.Seq)
	binary.BigEndian.PutUint16(b[24:], uint16(len(f.Payload)))
	copy(b[HeaderLen:], f.Payload)
	return append(b, tag(mac, b)...), nil
}

func tag(mac hash.Hash, b []byte) []byte {
	mac.Reset()
	mac.Write(b)
	var sum [sha256.Size]byte
	return mac.Sum(sum[:0])[:TagLen]
}

// Open checks and decodes a sealed frame. The returned payload aliases b.
// Open checks integrity and authenticity only; replay and addressing are
// the Endpoint's job.
func Open(key Key, b []byte) (Frame, error) {
	return open(hmac.New(sha256.New, key), b)
}

// peek reads the sender, destination, epoch and sequence number of a
// well-formed frame of shelf without checking its tag (ok false: not well
// formed).
func peek(b []byte, shelf uint16) (from, to uint8, epoch, seq uint64, ok bool) {
	if len(b) < HeaderLen+TagLen || b[0] != magic[0] || b[1] != magic[1] || b[2] != Version ||
		binary.BigEndian.Uint16(b[4:]) != shelf || len(b) != HeaderLen+int(binary.BigEndian.Uint16(b[24:]))+TagLen {
		return 0, 0, 0, 0, false
	}
	return b[6], b[7], binary.BigEndian.Uint64(b[8:]), binary.BigEndian.Uint64(b[16:]), true
}

func open(mac hash.Hash, b []byte) (Frame, error) {
	if len(b) < HeaderLen+TagLen {
		return Frame{}, ErrShort
	}
	if b[0] != magic[0] || b[1] != magic[1] {
		return Frame{}, ErrMagic
	}
	if b[2] != Version {
		return Frame{}, ErrVersion
	}
	n := int(binary.BigEndian.Uint16(b[24:]))
	if n > MaxPayload {
		return Frame{}, ErrTooBig
	}
	if len(b) != HeaderLen+n+TagLen {
		if len(b) < HeaderLen+n+TagLen {
			return Frame{}, ErrShort
		}
		return Frame{}, ErrLength
	}
	body := b[:HeaderLen+n]
	if !hmac.Equal(tag(mac, body), b[HeaderLen+n:]) {
		return Frame{}, ErrAuth
	}
	return Frame{
		Header: Header{
			Type:  Type(b[3]),
			Shelf: binary.BigEndian.Uint16(b[4:]),
			From:  b[6],
			To:    b[7],
			Epoch: binary.BigEndian.Uint64(b[8:]),
			Seq:   binary.BigEndian.Uint64(b[16:]),
		},
		Payload: b[HeaderLen : HeaderLen+n],
	}, nil
}
