package ckpt

import (
	"bytes"
	"context"
	"testing"
	"time"
)

func TestSection(t *testing.T) {
	n := NewNode(Options{Self: 1, Send: func(uint8, []byte) {}})
	t.Cleanup(n.Close)
	sec := NewSection(n, "c", "state")
	if data, at, err := sec.Load(); data != nil || !at.IsZero() || err != nil {
		t.Fatalf("Load() of a missing checkpoint = %q, %v, %v; want nil, zero time, nil", data, at, err)
	}
	n.Do(func(s *Service, now time.Duration) {
		s.Promote(now)
		if err := s.Open(now, "c", time.Minute); err != nil {
			t.Fatal(err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	before := time.Now()
	if err := sec.Save(ctx, []byte("v1"), true); err != nil {
		t.Fatalf("Save = %v", err)
	}
	data, at, err := sec.Load()
	if err != nil || !bytes.Equal(data, []byte("v1")) {
		t.Fatalf("Load() = %q, %v; want v1", data, err)
	}
	if at.Before(before) {
		t.Errorf("Load() age mark %v is before the save at %v: the stream's move was not noted", at, before)
	}
	// No write: the mark stays where the stream last moved.
	if _, again, _ := sec.Load(); !again.Equal(at) {
		t.Errorf("Load() without a write moved the mark from %v to %v", at, again)
	}
}
