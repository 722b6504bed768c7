package ckpt

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Section is one section of one checkpoint as a role keeps its state in
// it: the active blade saves, a standby loads what the last active saved
// and learns how old it is. Age is on the loading blade's own clock: the
// local time at which the replicated stream last advanced (Watch notes
// it), late by at most the watch period plus the replication delay. Roles
// that restore timers from a checkpoint (the STP agent, the SNMP agent's
// engineTime) age the state by it.
type Section struct {
	node          *Node
	ckpt, section string

	mu      sync.Mutex
	lastSeq uint64
	seen    time.Time
}

// NewSection returns the section named section of checkpoint ckpt on node.
func NewSection(node *Node, ckpt, section string) *Section {
	return &Section{node: node, ckpt: ckpt, section: section, seen: time.Now()}
}

// Save writes data to the section; a synchronous save returns once every
// in-sync replica holds it.
func (s *Section) Save(ctx context.Context, data []byte, sync bool) error {
	_, err := s.node.Write(ctx, s.ckpt, s.section, data, sync)
	return err
}

// Load returns the section's data (nil when the checkpoint or section does
// not exist) and when this blade last saw the replicated stream move.
func (s *Section) Load() ([]byte, time.Time, error) {
	s.observe()
	data, err := s.node.Read(s.ckpt, s.section)
	if errors.Is(err, ErrNoCheckpoint) || errors.Is(err, ErrNoSection) {
		return nil, time.Time{}, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return data, s.seen, err
}

// observe notes the local time at which the replicated stream last moved.
func (s *Section) observe() {
	seq := s.node.Seq()
	s.mu.Lock()
	if seq != s.lastSeq {
		s.lastSeq, s.seen = seq, time.Now()
	}
	s.mu.Unlock()
}

// Watch notes the stream's progress every period until ctx ends.
func (s *Section) Watch(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.observe()
		}
	}
}
