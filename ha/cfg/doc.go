// Package cfg replicates the shelf-wide HA configuration with
// go.etcd.io/raft/v3 (raft.RawNode over raft.MemoryStorage): admin locks,
// the latest active unit of every service group, and configuration
// settings. It does not decide who is active (package quorum's leases do,
// without waiting for a leader election); it records and distributes what
// operators and the AMF decided, so a blade that restarts learns that its
// unit is locked and `show ha` on any blade shows the same history.
//
// Every replica starts from the same empty snapshot (index 1, the
// configured voters); the leader re-replicates the in-memory log to a
// restarted replica. Term and vote can be kept in a small file (VoteFile)
// so that a restarted voter never votes twice in a term; without it a
// replica that restarts within an election could help elect two leaders
// of one term. The log is not compacted: it grows by one entry per admin
// operation or failover (tens of bytes), which a blade's lifetime absorbs;
// snapshots would also need messages larger than one HA frame.
//
// Messages travel as transport.TypeRaft frames; a message larger than one
// frame is dropped and counted (raft retries with smaller batches since
// MaxSizePerMsg is half a frame). A message whose raft sender differs from
// the authenticated frame sender is rejected. If raft panics on an input
// (it does on some impossible messages), Store reports ErrBroken instead of
// crashing the blade; the blade recreates the replica.
//
//	s, _ := cfg.New(cfg.Options{Slot: 3, Voters: slots, Send: send})
//	s.Tick()                     // every heartbeat interval
//	s.Step(from, payload)        // TypeRaft frames
//	s.Propose(cfg.Command{Op: cfg.OpLock, Unit: "mgmt-3"})
//	s.State().Locked["mgmt-3"]
package cfg
