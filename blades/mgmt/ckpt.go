package mgmt

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/cgoa/cgoa/ha/ckpt"
)

// Names of the mgmt blade's checkpoint and the SNMP agent's section in it.
const (
	ckptName      = "mgmt"
	ckptSNMP      = "snmp"
	ckptRetention = 24 * time.Hour
)

// ckptStore keeps the SNMP state in a section of the mgmt group's checkpoint (ha/ckpt):
// written synchronously by the active blade, replicated to the standby.
type ckptStore struct {
	node *ckpt.Node

	mu      sync.Mutex
	lastSeq uint64
	seen    time.Time // when this blade saw the replicated stream move last
}

func newCkptStore(node *ckpt.Node) *ckptStore { return &ckptStore{node: node, seen: time.Now()} }

func (c *ckptStore) Save(ctx context.Context, data []byte) error {
	_, err := c.node.Write(ctx, ckptName, ckptSNMP, data, true)
	return err
}

func (c *ckptStore) Load() ([]byte, time.Time, error) {
	c.observe()
	data, err := c.node.Read(ckptName, ckptSNMP)
	if errors.Is(err, ckpt.ErrNoCheckpoint) || errors.Is(err, ckpt.ErrNoSection) {
		return nil, time.Time{}, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return data, c.seen, err
}

// observe notes the local time at which the replicated stream last advanced: on a standby,
// on this blade's own clock, when the state it holds was saved, late by at most the watch
// period plus the replication delay.
func (c *ckptStore) observe() {
	seq := c.node.Status().Seq
	c.mu.Lock()
	if seq != c.lastSeq {
		c.lastSeq, c.seen = seq, time.Now()
	}
	c.mu.Unlock()
}

// watch calls observe every period until ctx ends.
func (c *ckptStore) watch(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.observe()
		}
	}
}
