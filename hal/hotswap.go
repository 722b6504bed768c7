package hal

import (
	"fmt"
	"sync"
	"time"
)

// HotSwapState is an ATCA FRU hot-swap state (PICMG 3.0, M0..M7).
type HotSwapState int

// The ATCA FRU states.
const (
	M0 HotSwapState = iota // not installed
	M1                     // inactive
	M2                     // activation request
	M3                     // activation in progress
	M4                     // active
	M5                     // deactivation request
	M6                     // deactivation in progress
	M7                     // communication lost
)

var hotSwapNames = [...]string{"not installed", "inactive", "activation request", "activation in progress",
	"active", "deactivation request", "deactivation in progress", "communication lost"}

func (s HotSwapState) String() string {
	if s < M0 || s > M7 {
		return fmt.Sprintf("M?(%d)", int(s))
	}
	return fmt.Sprintf("M%d", int(s))
}

// Description is the state's name in PICMG 3.0 words.
func (s HotSwapState) Description() string {
	if s < M0 || s > M7 {
		return "invalid"
	}
	return hotSwapNames[s]
}

// HotSwap is the blade's FRU hot-swap state machine. The handle (ejector latch) drives it: a
// closed handle on an inactive blade requests activation, an opened handle on an active blade
// requests deactivation. Deactivation is not immediate: the request is handed to whoever
// subscribed (the HA core, to switch services over gracefully), which then calls Deactivate.
type HotSwap struct {
	mu        sync.Mutex
	state     HotSwapState
	since     time.Time
	handle    string // "closed" or "open"
	onRequest []func(HotSwapState)
	history   []HotSwapTransition
}

// HotSwapTransition records one state change.
type HotSwapTransition struct {
	From  HotSwapState `json:"-"`
	To    HotSwapState `json:"-"`
	FromS string       `json:"from"`
	ToS   string       `json:"to"`
	At    time.Time    `json:"at"`
	Cause string       `json:"cause"`
}

// HotSwapStatus is what `show hardware` reports.
type HotSwapStatus struct {
	State       string              `json:"state"`
	Description string              `json:"description"`
	Handle      string              `json:"handle"`
	SinceMs     int64               `json:"since_ms"`
	History     []HotSwapTransition `json:"history"`
}

// NewHotSwap starts a FRU inserted with its handle closed, in M1 at now.
func NewHotSwap(now time.Time) *HotSwap {
	h := &HotSwap{state: M0, since: now, handle: "closed"}
	h.moveLocked(M1, now, "inserted")
	return h
}

// ErrHotSwap is returned for a request the current state does not allow.
type ErrHotSwap struct {
	Op    string
	State HotSwapState
}

func (e *ErrHotSwap) Error() string {
	return fmt.Sprintf("hal: hot-swap: cannot %s in state %s (%s)", e.Op, e.State, e.State.Description())
}

// OnRequest registers f to be called (outside the lock) when the blade enters M2 or M5.
func (h *HotSwap) OnRequest(f func(HotSwapState)) {
	h.mu.Lock()
	h.onRequest = append(h.onRequest, f)
	h.mu.Unlock()
}

// State returns the current state.
func (h *HotSwap) State() HotSwapState {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.state
}

// Activate runs M1 -> M2 -> M3 -> M4: the shelf manager grants activation at boot.
func (h *HotSwap) Activate(now time.Time) error {
	h.mu.Lock()
	if h.state != M1 && h.state != M2 {
		h.mu.Unlock()
		return &ErrHotSwap{"activate", h.state}
	}
	if h.state == M1 {
		h.moveLocked(M2, now, "activation requested")
	}
	h.moveLocked(M3, now, "activation granted")
	h.moveLocked(M4, now, "payload up")
	h.mu.Unlock()
	return nil
}

// OpenHandle is the operator opening the ejector handle: an active blade goes to M5 and its
// request subscribers are told, so services can move away before the blade is released.
func (h *HotSwap) OpenHandle(now time.Time) error {
	h.mu.Lock()
	if h.handle == "open" {
		h.mu.Unlock()
		return &ErrHotSwap{"open the handle (already open)", h.state}
	}
	h.handle = "open"
	if h.state != M4 {
		h.mu.Unlock()
		return nil
	}
	h.moveLocked(M5, now, "handle opened")
	subs := append([]func(HotSwapState){}, h.onRequest...)
	h.mu.Unlock()
	for _, f := range subs {
		f(M5)
	}
	return nil
}

// CloseHandle cancels a pending deactivation request (M5 -> M4) or, on an inactive blade,
// requests activation (M1 -> M2).
func (h *HotSwap) CloseHandle(now time.Time) error {
	h.mu.Lock()
	if h.handle == "closed" {
		h.mu.Unlock()
		return &ErrHotSwap{"close the handle (already closed)", h.state}
	}
	h.handle = "closed"
	var notify bool
	switch h.state {
	case M5:
		h.moveLocked(M4, now, "handle closed: deactivation cancelled")
	case M1:
		h.moveLocked(M2, now, "handle closed")
		notify = true
	}
	subs := append([]func(HotSwapState){}, h.onRequest...)
	h.mu.Unlock()
	if notify {
		for _, f := range subs {
			f(M2)
		}
	}
	return nil
}

// Deactivate runs M5 -> M6 -> M1 once services have moved away: the blade may be pulled.
func (h *HotSwap) Deactivate(now time.Time) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state != M5 {
		return &ErrHotSwap{"deactivate", h.state}
	}
	h.moveLocked(M6, now, "services released")
	h.moveLocked(M1, now, "payload off")
	return nil
}

func (h *HotSwap) moveLocked(to HotSwapState, now time.Time, cause string) {
	h.history = append(h.history, HotSwapTransition{From: h.state, To: to, FromS: h.state.String(), ToS: to.String(), At: now, Cause: cause})
	if len(h.history) > 16 {
		h.history = h.history[len(h.history)-16:]
	}
	h.state, h.since = to, now
}

// Status reports the state for the console.
func (h *HotSwap) Status(now time.Time) HotSwapStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	return HotSwapStatus{State: h.state.String(), Description: h.state.Description(), Handle: h.handle,
		SinceMs: now.Sub(h.since).Milliseconds(), History: append([]HotSwapTransition{}, h.history...)}
}
