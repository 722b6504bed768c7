package ckpt

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Kind says what a replication message is.
type Kind uint8

// Message kinds.
const (
	// KindData carries one fragment of a stream record (write, delete,
	// create or drop of a checkpoint) from the writer to a replica.
	KindData Kind = 1
	// KindAck is a replica's report of its position: the generation it
	// follows, the last record it applied and how many in-order frames of
	// the stream it has taken. With FlagNack it asks for a go-back.
	KindAck Kind = 2
	// KindSnapBegin starts a resync from the compacted sections: Seq is
	// the snapshot's sequence, Frag the number of sections, Total the
	// retention in milliseconds.
	KindSnapBegin Kind = 3
	// KindSnapSection carries one fragment of one section of a snapshot.
	KindSnapSection Kind = 4
	// KindSnapEnd completes a snapshot: the replica swaps it in.
	KindSnapEnd Kind = 5
	// KindPoll asks a replica for an ack (retransmission timer, idle
	// keep-alive); FlagSynced tells it the writer counts it in sync.
	KindPoll Kind = 6
	// KindRun carries whole stream records as they lie in the writer's
	// ring (runRecord), one frame each: N is the frame index of the
	// first, Frag the number of records, Total their bytes, Index and
	// FlagSynced as in KindData, FlagSync if one of them is synchronous.
	// A run of records is one piece of the ring: over a Link it is sent
	// from there as it is (one iovec), with no header built per record.
	KindRun Kind = 7
)

// Flags.
const (
	FlagSync   = 1 << 0 // record of a synchronous write: ack at once
	FlagNack   = 1 << 1 // ack: a gap was seen, go back to the position
	FlagSynced = 1 << 2 // poll/data: the writer counts this replica in sync
	FlagReply  = 1 << 3 // ack: answer to a poll
)

// Op is what a stream record does.
type Op uint8

// Record operations.
const (
	OpWrite  Op = 1 // replace a section's data
	OpDelete Op = 2 // delete a section
	OpCreate Op = 3 // create a checkpoint (Data: retention, 8 bytes ms)
	OpDrop   Op = 4 // drop a checkpoint (retention ran out)
)

// Msg is one replication message; it fits one HA transport frame.
//
// Layout (big endian):
//
//	off len field
//	0   1   kind
//	1   1   flags
//	2   1   op
//	3   1   checkpoint name length c
//	4   1   section name length s
//	5   8   generation (writer's term; larger after every promotion)
//	13  8   seq (record sequence; snapshot: its sequence; ack: applied)
//	21  8   n (stream frame index of this frame; ack: frames taken)
//	29  4   index (snapshot: section index; ack: its number; data and
//	            poll: the number of the replica's last ack the writer
//	            took, which anchors the replica's in-sync lease)
//	33  4   frag (fragment index; snap begin: section count)
//	37  4   total (record data length; snap begin: retention ms)
//	41  c   checkpoint name
//	    s   section name
//	    ... data (this fragment's bytes)
type Msg struct {
	Kind    Kind
	Flags   uint8
	Op      Op
	Gen     uint64
	Seq     uint64
	N       uint64
	Index   uint32
	Frag    uint32
	Total   uint32
	Ckpt    string
	Section string
	Data    []byte
}

// HeaderLen is the fixed part of a message.
const HeaderLen = 41

// MaxName bounds checkpoint and section names.
const MaxName = 255

// Errors of the codec.
var (
	ErrShort   = errors.New("ckpt: message truncated")
	ErrKind    = errors.New("ckpt: unknown message kind")
	ErrName    = errors.New("ckpt: name too long or empty")
	ErrTooBig  = errors.New("ckpt: message larger than the frame")
	ErrBadFrag = errors.New("ckpt: fragment out of range")
)

// Len is the encoded length of m.
func (m *Msg) Len() int { return HeaderLen + len(m.Ckpt) + len(m.Section) + len(m.Data) }

// AppendMsg appends m's encoding to b.
func AppendMsg(b []byte, m *Msg) ([]byte, error) {
	if len(m.Ckpt) > MaxName || len(m.Section) > MaxName {
		return b, ErrName
	}
	var h [HeaderLen]byte
	h[0], h[1], h[2], h[3], h[4] = byte(m.Kind), m.Flags, byte(m.Op), byte(len(m.Ckpt)), byte(len(m.Section))
	binary.BigEndian.PutUint64(h[5:], m.Gen)
	binary.BigEndian.PutUint64(h[13:], m.Seq)
	binary.BigEndian.PutUint64(h[21:], m.N)
	binary.BigEndian.PutUint32(h[29:], m.Index)
	binary.BigEndian.PutUint32(h[33:], m.Frag)
	binary.BigEndian.PutUint32(h[37:], m.Total)
	b = append(b, h[:]...)
	b = append(b, m.Ckpt...)
	b = append(b, m.Section...)
	return append(b, m.Data...), nil
}

// Unmarshal decodes a message. Data aliases b. It checks the structure
// only; the Service checks the message against its state.
func Unmarshal(b []byte) (Msg, error) { return unmarshal(b, nil) }

// unmarshal decodes a message, taking its names from intern when given
// (a replica's names of sections it already holds: no allocation).
func unmarshal(b []byte, intern func([]byte) string) (Msg, error) {
	if len(b) < HeaderLen {
		return Msg{}, ErrShort
	}
	m := Msg{Kind: Kind(b[0]), Flags: b[1], Op: Op(b[2])}
	if m.Kind < KindData || m.Kind > KindRun {
		return Msg{}, fmt.Errorf("%w %d", ErrKind, b[0])
	}
	c, s := int(b[3]), int(b[4])
	m.Gen = binary.BigEndian.Uint64(b[5:])
	m.Seq = binary.BigEndian.Uint64(b[13:])
	m.N = binary.BigEndian.Uint64(b[21:])
	m.Index = binary.BigEndian.Uint32(b[29:])
	m.Frag = binary.BigEndian.Uint32(b[33:])
	m.Total = binary.BigEndian.Uint32(b[37:])
	if len(b) < HeaderLen+c+s {
		return Msg{}, ErrShort
	}
	if intern != nil {
		m.Ckpt, m.Section = intern(b[HeaderLen:HeaderLen+c]), intern(b[HeaderLen+c:HeaderLen+c+s])
	} else {
		m.Ckpt, m.Section = string(b[HeaderLen:HeaderLen+c]), string(b[HeaderLen+c:HeaderLen+c+s])
	}
	m.Data = b[HeaderLen+c+s:]
	switch m.Kind {
	case KindData, KindSnapSection:
		if c == 0 {
			return Msg{}, ErrName
		}
		if len(m.Data) > int(m.Total) {
			return Msg{}, fmt.Errorf("%w: %d data bytes, record of %d", ErrBadFrag, len(m.Data), m.Total)
		}
		if m.Kind == KindData && (m.Op < OpWrite || m.Op > OpDrop) {
			return Msg{}, fmt.Errorf("ckpt: unknown op %d", m.Op)
		}
	case KindSnapBegin, KindSnapEnd:
		if c == 0 {
			return Msg{}, ErrName
		}
	case KindRun:
		if c != 0 || s != 0 || len(m.Data) != int(m.Total) || m.Frag == 0 {
			return Msg{}, fmt.Errorf("%w: run of %d records, %d bytes of %d", ErrBadRun, m.Frag, len(m.Data), m.Total)
		}
	}
	return m, nil
}

// ErrBadRun: a KindRun message whose records do not parse.
var ErrBadRun = errors.New("ckpt: malformed run")

// runRecord is one record of a KindRun message (the ring's layout,
// ring.go): len u32 (whole record), op u8, flags u8, checkpoint name
// length c u8, section name length s u8, seq u64, checkpoint name,
// section name, data. Its slices alias the message.
type runRecord struct {
	op            Op
	flags         uint8
	seq           uint64
	ckpt, section []byte
	data          []byte
}

// nextRunRecord splits the first record off a run's data into r (filled
// in place: a record returned by value cost a copy on the way out and
// another at the call, an eighth of a replica's cost per record in
// BenchmarkServicePair) and returns the rest.
func nextRunRecord(b []byte, r *runRecord) ([]byte, error) {
	if len(b) < recHeader {
		return nil, fmt.Errorf("%w: %d bytes left", ErrBadRun, len(b))
	}
	n := uint64(binary.BigEndian.Uint32(b))
	c, s := int(b[6]), int(b[7])
	if n > uint64(len(b)) || n < uint64(recHeader+c+s) {
		return nil, fmt.Errorf("%w: record of %d bytes, names %d+%d, %d left", ErrBadRun, n, c, s, len(b))
	}
	op := Op(b[4])
	if op < OpWrite || op > OpDrop || c == 0 {
		return nil, fmt.Errorf("%w: op %d, checkpoint name of %d bytes", ErrBadRun, op, c)
	}
	r.op, r.flags, r.seq = op, b[5], binary.BigEndian.Uint64(b[8:])
	r.ckpt = b[recHeader : recHeader+c]
	r.section = b[recHeader+c : recHeader+c+s]
	r.data = b[recHeader+c+s : n]
	return b[n:], nil
}

// chunk is how many data bytes a fragment of a record for ckpt/section
// carries in a frame of maxFrame bytes.
func chunk(maxFrame int, ckpt, section string) int {
	return maxFrame - HeaderLen - len(ckpt) - len(section)
}

// frags is the number of fragments of a record of n bytes (at least one:
// an empty write or a delete is one frame).
func frags(n, chunk int) uint32 {
	if n == 0 {
		return 1
	}
	return uint32((n + chunk - 1) / chunk)
}

var be = binary.BigEndian
