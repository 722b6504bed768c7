package transport

// WindowSize is how far behind the highest sequence number seen from a
// sender a frame may arrive and still be accepted (reordering between the
// two paths).
const WindowSize = 64

// window is the anti-replay state for one sender: its current epoch, the
// highest sequence accepted and a bitmap of the WindowSize sequences below.
type window struct {
	epoch uint64
	top   uint64
	seen  uint64 // bit i set: top-i accepted
}

// accepted reports whether (epoch, seq) was already accepted, without
// recording anything.
func (w *window) accepted(epoch, seq uint64) bool {
	if epoch != w.epoch || seq > w.top {
		return false
	}
	back := w.top - seq
	return back < 64 && w.seen&(uint64(1)<<back) != 0
}

// check decides whether (epoch, seq) is fresh and, if so, records it.
// A higher epoch means the sender restarted: the window starts over.
func (w *window) check(epoch, seq uint64) error {
	switch {
	case epoch < w.epoch:
		return ErrStale
	case epoch > w.epoch:
		*w = window{epoch: epoch, top: seq, seen: 1}
		return nil
	}
	if seq > w.top {
		shift := seq - w.top
		if shift >= 64 {
			w.seen = 1
		} else {
			w.seen = w.seen<<shift | 1
		}
		w.top = seq
		return nil
	}
	back := w.top - seq
	if back >= WindowSize {
		return ErrReplay
	}
	bit := uint64(1) << back
	if w.seen&bit != 0 {
		return ErrDuplicate
	}
	w.seen |= bit
	return nil
}
