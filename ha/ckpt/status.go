package ckpt

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"
)

// Status is what `show ckpt` shows.
type Status struct {
	Self        uint8              `json:"self"`
	Role        string             `json:"role"` // writer or replica
	Gen         uint64             `json:"generation"`
	Seq         uint64             `json:"seq"`
	Durable     uint64             `json:"durable"`
	Ready       bool               `json:"ready"`
	Checkpoints []CheckpointStatus `json:"checkpoints"`
	Replicas    []ReplicaStatus    `json:"replicas"`
	Ring        RingStatus         `json:"ring"`
	Counters    Counters           `json:"counters"`
}

// CheckpointStatus is one checkpoint.
type CheckpointStatus struct {
	Name      string        `json:"name"`
	Sections  int           `json:"sections"`
	Bytes     int           `json:"bytes"`
	Openers   int           `json:"openers"`
	Retention time.Duration `json:"retention_ns"`
}

// ReplicaStatus is one replica as the writer sees it.
type ReplicaStatus struct {
	Slot     uint8  `json:"slot"`
	Applied  uint64 `json:"applied"`
	Lag      uint64 `json:"lag"` // records behind the writer
	InFlight uint64 `json:"in_flight"`
	Resync   bool   `json:"resyncing"`
	InSync   bool   `json:"in_sync"`
}

// RingStatus is the replication ring's use.
type RingStatus struct {
	Size    int `json:"size"`
	Used    int `json:"used"`
	Records int `json:"records"`
}

// Status returns a snapshot.
func (s *Service) Status() Status {
	st := Status{Self: s.opt.Self, Role: "replica", Gen: s.gen, Seq: s.seq, Durable: s.Durable(), Ready: s.Ready(),
		Ring: RingStatus{Size: len(s.ring.buf), Used: int(s.ring.used()), Records: s.ring.records}, Counters: s.c}
	if s.active {
		st.Role = "writer"
	} else {
		st.Durable = s.seq
	}
	for _, name := range sortedKeys(s.ckpts) {
		c := s.ckpts[name]
		st.Checkpoints = append(st.Checkpoints, CheckpointStatus{Name: name, Sections: len(c.sections), Bytes: c.bytes,
			Openers: c.openers, Retention: c.retention})
	}
	for _, sl := range s.order {
		p := s.peers[sl]
		r := ReplicaStatus{Slot: sl, Applied: p.acked, Lag: s.seq - min(p.acked, s.seq), Resync: p.snap != nil || !p.known, InSync: p.synced}
		if p.next.n > p.base.n {
			r.InFlight = p.next.n - p.base.n
		}
		st.Replicas = append(st.Replicas, r)
	}
	return st
}

// WriteStatus prints s for the console's `show ckpt` (use encoding/json
// on Status for `show ckpt json`).
func WriteStatus(w io.Writer, s Status) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "slot %d  %s  generation %#x  seq %d  durable %d  ready %v\n", s.Self, s.Role, s.Gen, s.Seq, s.Durable, s.Ready)
	pct := 0.0
	if s.Ring.Size > 0 {
		pct = 100 * float64(s.Ring.Used) / float64(s.Ring.Size)
	}
	fmt.Fprintf(tw, "ring: %d of %d bytes (%.0f%%), %d records\n", s.Ring.Used, s.Ring.Size, pct, s.Ring.Records)
	fmt.Fprintf(tw, "\nCHECKPOINT\tSECTIONS\tBYTES\tOPENERS\tRETENTION\n")
	for _, c := range s.Checkpoints {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%v\n", c.Name, c.Sections, c.Bytes, c.Openers, c.Retention)
	}
	if len(s.Replicas) > 0 {
		fmt.Fprintf(tw, "\nREPLICA\tAPPLIED\tLAG\tIN FLIGHT\tSTATE\n")
		for _, r := range slices.Clone(s.Replicas) {
			state := "streaming"
			switch {
			case r.Resync:
				state = "resyncing"
			case !r.InSync:
				state = "catching up"
			}
			fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%s\n", r.Slot, r.Applied, r.Lag, r.InFlight, state)
		}
	}
	c := s.Counters
	fmt.Fprintf(tw, "\nrecords %d frames %d retransmits %d resyncs %d applied %d bad %d stale %d out of order %d\n",
		c.Records, c.Frames, c.Retransmits, c.Resyncs, c.Applied, c.Bad, c.Stale, c.OutOfOrder)
	return tw.Flush()
}
