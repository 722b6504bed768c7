package hal

import (
	"errors"
	"testing"
	"time"
)

func TestHotSwapLifecycle(t *testing.T) {
	t0 := time.Unix(1000, 0)
	h := NewHotSwap(t0)
	if h.State() != M1 {
		t.Fatalf("new FRU state = %v, want M1", h.State())
	}
	var requests []HotSwapState
	h.OnRequest(func(s HotSwapState) { requests = append(requests, s) })
	if err := h.Activate(t0); err != nil || h.State() != M4 {
		t.Fatalf("Activate() = %v, state %v; want nil, M4", err, h.State())
	}
	if err := h.Deactivate(t0); err == nil {
		t.Fatalf("Deactivate() in M4 = nil, want an error: the handle was not opened")
	}
	if err := h.OpenHandle(t0.Add(time.Second)); err != nil || h.State() != M5 {
		t.Fatalf("OpenHandle() = %v, state %v; want nil, M5", err, h.State())
	}
	if len(requests) != 1 || requests[0] != M5 {
		t.Fatalf("requests = %v, want [M5]", requests)
	}
	if err := h.OpenHandle(t0); err == nil {
		t.Errorf("OpenHandle() twice = nil, want an error")
	}
	if err := h.CloseHandle(t0); err != nil || h.State() != M4 {
		t.Fatalf("CloseHandle() in M5 = %v, state %v; want nil, M4 (cancelled)", err, h.State())
	}
	_ = h.OpenHandle(t0)
	if err := h.Deactivate(t0.Add(2 * time.Second)); err != nil || h.State() != M1 {
		t.Fatalf("Deactivate() = %v, state %v; want nil, M1", err, h.State())
	}
	var hs *ErrHotSwap
	if err := h.Activate(t0); err != nil {
		t.Fatalf("Activate() from M1 = %v", err)
	}
	h2 := NewHotSwap(t0)
	_ = h2.Activate(t0)
	_ = h2.OpenHandle(t0)
	if err := h2.Activate(t0); !errors.As(err, &hs) || hs.State != M5 {
		t.Errorf("Activate() in M5 = %v, want *ErrHotSwap in M5", err)
	}
	st := h.Status(t0.Add(3 * time.Second))
	if st.State != "M4" || st.Handle != "open" || len(st.History) == 0 {
		t.Errorf("Status() = %+v", st)
	}
}
