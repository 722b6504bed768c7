package transport

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"sync"
)

// Paths is the number of base paths a blade has: base0 through hub slot 1
// and base1 through hub slot 2.
const Paths = 2

// Counters are an Endpoint's frame counters. Every dropped frame is counted
// under exactly one reason.
type Counters struct {
	Sent       uint64        // frames sealed (each goes out on every path)
	SentByType [9]uint64     // Sent by type: [t] for the HA core's types 1..8, [0] every TypeUser and above
	Received   uint64        // frames accepted and delivered
	PathRx     [Paths]uint64 // accepted or duplicate frames per path
	PathTxErr  [Paths]uint64 // send errors per path
	Duplicates uint64        // second copy of a frame via the other path (normal)
	Short      uint64        // truncated
	Garbled    uint64        // bad magic, version, length
	Forged     uint64        // tag mismatch
	Replayed   uint64        // sequence below the window or seen before
	Stale      uint64        // epoch older than the sender's current one
	Misrouted  uint64        // for another shelf
	NotForUs   uint64        // for another slot (normal on a broadcast path)
	Own        uint64        // our own frame looped back (normal on a broadcast path)
}

// Handler receives accepted frames. The payload is only valid during the call.
type Handler func(f Frame)

// Endpoint is one shelf member's view of the HA transport: it seals frames
// with the shelf key, sender slot, epoch and next sequence number, and it
// authenticates, de-duplicates and replay-checks received frames. It does
// no I/O: a Transport moves its bytes. Safe for concurrent use.
type Endpoint struct {
	shelf uint16
	slot  uint8
	epoch uint64

	mu      sync.Mutex
	mac     hash.Hash // keyed with the shelf key, reused under mu
	seq     uint64
	windows map[uint8]*window
	c       Counters
}

// NewEndpoint returns an endpoint for slot in shelf. epoch must grow every
// time the member starts (e.g. boot wall-clock time in nanoseconds, or a
// persisted counter) so that peers accept it again after a restart and
// reject frames replayed from an earlier life.
func NewEndpoint(key Key, shelf uint16, slot uint8, epoch uint64) (*Endpoint, error) {
	if len(key) < 16 {
		return nil, fmt.Errorf("transport: shelf key of %d bytes, want at least 16", len(key))
	}
	if epoch == 0 {
		return nil, errors.New("transport: epoch 0 is reserved")
	}
	if slot == Broadcast || slot == 0 {
		return nil, fmt.Errorf("transport: slot %d is reserved", slot)
	}
	return &Endpoint{mac: hmac.New(sha256.New, key), shelf: shelf, slot: slot, epoch: epoch, windows: map[uint8]*window{}}, nil
}

// Slot is the endpoint's own slot.
func (e *Endpoint) Slot() uint8 { return e.slot }

// Epoch is the endpoint's epoch (incarnation).
func (e *Endpoint) Epoch() uint64 { return e.epoch }

// Shelf is the endpoint's shelf id.
func (e *Endpoint) Shelf() uint16 { return e.shelf }

// Seal makes the wire bytes of one frame to slot to (or Broadcast).
func (e *Endpoint) Seal(typ Type, to uint8, payload []byte) ([]byte, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seq++
	e.c.Sent++
	if typ < Type(len(e.c.SentByType)) {
		e.c.SentByType[typ]++
	} else {
		e.c.SentByType[0]++
	}
	return seal(e.mac, Frame{Header: Header{Type: typ, Shelf: e.shelf, From: e.slot, To: to, Epoch: e.epoch, Seq: e.seq}, Payload: payload})
}

// Accept checks bytes received on path and returns the frame if it is
// authentic, addressed to this endpoint and fresh. Every rejection is
// counted; the error says why.
func (e *Endpoint) Accept(path int, b []byte) (Frame, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	// Frames that would be dropped whatever their tag says are dropped
	// before it is checked, since the tag is the receive path's main cost:
	// our own frames looped back and frames for another slot (both normal
	// on a broadcast path), and the copy of a frame already accepted
	// (every frame travels on both paths), be it the genuine copy or a
	// forgery with a used sequence number.
	if from, to, epoch, seq, ok := peek(b, e.shelf); ok {
		switch {
		case from == e.slot:
			e.c.Own++
			return Frame{}, ErrSelf
		case to != e.slot && to != Broadcast:
			e.c.NotForUs++
			return Frame{}, ErrNotForUs
		}
		if w := e.windows[from]; w != nil && w.accepted(epoch, seq) {
			e.c.Duplicates++
			if path >= 0 && path < Paths {
				e.c.PathRx[path]++
			}
			return Frame{}, ErrDuplicate
		}
	}
	f, err := open(e.mac, b)
	if err != nil {
		switch {
		case errors.Is(err, ErrShort):
			e.c.Short++
		case errors.Is(err, ErrAuth):
			e.c.Forged++
		default:
			e.c.Garbled++
		}
		return Frame{}, err
	}
	switch {
	case f.Shelf != e.shelf:
		e.c.Misrouted++
		return Frame{}, ErrShelf
	case f.From == e.slot:
		e.c.Own++
		return Frame{}, ErrSelf
	case f.To != e.slot && f.To != Broadcast:
		e.c.NotForUs++
		return Frame{}, ErrNotForUs
	case f.Epoch == 0:
		e.c.Stale++
		return Frame{}, ErrStale
	}
	w := e.windows[f.From]
	if w == nil {
		w = &window{}
		e.windows[f.From] = w
	}
	if err := w.check(f.Epoch, f.Seq); err != nil {
		switch {
		case errors.Is(err, ErrDuplicate):
			e.c.Duplicates++
			if path >= 0 && path < Paths {
				e.c.PathRx[path]++
			}
		case errors.Is(err, ErrStale):
			e.c.Stale++
		default:
			e.c.Replayed++
		}
		return Frame{}, err
	}
	e.c.Received++
	if path >= 0 && path < Paths {
		e.c.PathRx[path]++
	}
	return f, nil
}

// CountTxError records a failed send on path.
func (e *Endpoint) CountTxError(path int) {
	e.mu.Lock()
	if path >= 0 && path < Paths {
		e.c.PathTxErr[path]++
	}
	e.mu.Unlock()
}

// Counters returns a snapshot of the counters.
func (e *Endpoint) Counters() Counters {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.c
}

// Transport sends an endpoint's frames over every base path.
type Transport interface {
	// Send seals payload as one frame and sends it on every path. It
	// fails only if no path took it.
	Send(typ Type, to uint8, payload []byte) error
	// Endpoint is the transport's endpoint (counters, identity).
	Endpoint() *Endpoint
	// Close stops the transport.
	Close() error
}
