// Package ckpt is the HA core's checkpoint service (the SA Forum CKPT
// idea): named checkpoints of named sections, written by the active unit's
// blade and replicated to the blades of the other units of its group, so
// that a standby takes over with the active's state.
//
// # Model
//
// A Service is one blade's side of one replication domain (typically a
// service group). The blade whose unit is active is the writer (Promote);
// the others are replicas (the writer's SetReplicas, taken from the AMF:
// for a 2N group the standby unit's blade). Writes replace a section whole
// (Write) or delete it (Delete); each is a record with a sequence number in
// one stream, so records are applied in order on every replica, and a
// record is applied only once all its fragments (messages of at most
// MaxFrame bytes, the HA transport's payload limit) have arrived: a
// replica never holds a torn section.
//
//   - Asynchronous write: Write returns at once; the record is sent as the
//     window allows.
//   - Synchronous write: the caller waits until Durable() reaches the
//     record's sequence, i.e. every replica in the set has applied it
//     (Node.Write does the waiting). With no replicas it is durable at once.
//
// # Memory
//
// The stream lives in one preallocated ring (Options.Ring, 4 MiB by
// default): it is both the send queue and the retransmission buffer.
// Appending never blocks: it evicts the oldest records. A replica whose
// unacknowledged records were evicted, one that joins late, one that
// restarted or one that followed another writer is resynced from the
// compacted sections (a snapshot: the current value of every section,
// staged aside and swapped in whole at its end), then continues from the
// ring. Memory is the ring plus the sections (plus a Link's three 8 KiB
// batch buffers), whatever the number of writes. On the writer a
// section's value stays in the ring (one copy of its bytes, not two)
// until the ring evicts that record while it is still the value; only
// then is it copied to a buffer of its own (buffers are reused when
// nothing shares them). Neither the write path nor a replica's receive
// path makes garbage. The ring is mapped outside the Go heap: as heap it
// would count as live data and let the collector keep as much garbage
// again before collecting.
//
// # Reliability
//
// Messages go over the HA transport (authenticated, both base paths, but
// datagrams: lost, duplicated or reordered). Every message to a replica
// carries its index in that replica's stream; a replica takes them
// strictly in order (go-back-N): it acks every Options.AckEvery frames, at
// once after a synchronous record or a snapshot's end, and with a nack at
// the first gap; the writer polls after Options.RTO without an ack and
// goes back to the replica's position.
//
// # Promotion rule
//
// A sync write is acknowledged only once every replica in the set applied
// it, so every replica that was in the set when it was written has it. A
// replica added later (a restarted or late blade) counts as in sync once
// it has applied every record written before it was added; the writer
// tells it so (FlagSynced in its polls and data frames). That claim is a
// lease (Options.SyncLease, counted from the replica's ack the writer
// echoes): a writer that drops a replica in sync from its set (the AMF no
// longer counts it, though it may only be stopped or cut off) keeps
// holding synchronous writes for it until the lease has run out on the
// writer's side, and the replica's own claim runs out no later. So a
// replica that says Ready has every acknowledged synchronous write.
// Follow(slot) tells a replica who the writer is (from the AMF); one that
// learns of a new writer is not Ready until that writer counts it in
// sync, because the records it holds may be an asynchronous tail the new
// writer never had; Follow(0) (no live writer) freezes the claim it had.
// A demoted writer stays Ready until it follows another writer: it holds
// its whole lineage. Track sets the lease from the HA lease (the
// detection time) plus an idle poll and a little margin, so a dead
// standby holds synchronous writes for about the detection time, no
// longer (TestStandbyDeathStall, on the virtual clock).
//
// The AMF promotes only a Ready replica: Node.Ready is the readiness gate
// (amf.Component.Ready of the unit's checkpoint component; Node.Track
// feeds it from the AMF). It is true for the writer, for a replica in
// sync, and when the AMF shows no live writer at all (nothing better can
// be had; else the group would stay unassigned). The promoted replica
// continues the sequence from what it applied under a larger generation;
// the other replicas resync from it, dropping any tail. Killing the only
// Ready copy loses what only it held (in-memory replication).
//
// # Use
//
//	svc := ckpt.New(ckpt.Options{Self: slot, Send: func(to uint8, b []byte) { blade.Send(typ, to, b) }})
//	blade.Handle(typ, func(f transport.Frame) { svc.Receive(now(), f.From, f.Payload) })
//	// on Active: svc.Promote(now()); svc.SetReplicas(now(), standbySlots)
//	svc.Open(now(), "sessions", time.Minute)
//	seq, _ := svc.Write(now(), "sessions", "onu-17", state, true) // wait for svc.Durable() >= seq
//	// every few ms: svc.Tick(now())
//	ckpt.WriteStatus(os.Stdout, svc.Status(now()))   // show ckpt (json: encoding/json)
//
// Service is a pure state machine (no goroutines, no clock reads); Node
// runs it on the real clock with waiting synchronous writes (and
// WaitDurable for flow control). Node.Track keeps a Node's writer and
// replica set in line with the AMF (Roles: the group's active unit's
// blade writes, its standby units' blades replicate).
//
// # Paths
//
// The stream runs over the HA transport (AttachBlade) or over a direct
// TCP Link per replica (Node.ServeLink: shelf-key authenticated, large
// frames in batches, one AES-GMAC tag and one writev per batch, flow
// control through Options.Room and Offer so the Link's batches never drop
// a frame, urgent messages written inline).
//
// Per byte of a 1 KiB or 64 KiB asynchronous write over a Link, user
// space passes: the writer copies the data into the ring (Write copies),
// the GMAC reads it (gmac.go, AVX-512 VPCLMULQDQ where the CPU has it:
// 11-16 GB/s, crypto/cipher's GCM reached 5-6.5 here) and the kernel
// copies it out of the ring (writev: frames of 512 bytes or more are not
// staged; Options.Reclaim copies out the rare batch the ring is about to
// overwrite); the replica's kernel copies it into the read buffer, where
// the GMAC checks it in place, and apply copies it into the section
// (the replica's store). The HA transport's 1.4 KB
// datagrams, each sealed and sent on both base paths, bound a stream to
// tens of MB/s; the Link carries hundreds (make bench-ckpt measures both
// beside raw TCP over the same veth). The protocol is the same on both;
// over a Link (Options.Reliable) only a nack makes the writer go back.
//
// Over a Link the writer sends records in runs (Options.Runs, KindRun):
// the records queued since the last batch, as they lie in the ring (a
// record's layout in the ring is its layout on the wire), go out as one
// message whose data is one piece of the ring: one iovec for up to 32 KiB (maxRun)
// of records, no header built and no frame cursor moved per record. A
// record still counts as one frame of the stream (acks, go-back and
// nacks are per record), and a replica takes a run record by record,
// looking each section up once (names are views of the run's bytes until
// a new section's name is kept). A Link's sealer goroutine refills the
// queue itself when the writer takes the batch it sealed, so there is no
// hand-off to the application per batch; it tags the next batch while the
// writer goroutine writes the one before.
//
// # Testing
//
// sim_test.go kills writers on virtual time (40 seeds); procmode_test.go
// runs cmd/ckptnode as three processes in network namespaces (ha/procmode)
// with the real AMF and the readiness gate, stalls the replica and kills
// the active with SIGKILL, and checks every takeover (also those the AMF
// makes by itself on a loaded machine); node_test.go checks the gate and
// the in-sync lease; bench_test.go is the bench (CGOA_BENCH_CKPT).
package ckpt
