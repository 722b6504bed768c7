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
// ring. Memory is the ring plus the sections, whatever the number of
// writes; section buffers are reused in place when nothing shares them.
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
// tells it so (Ready). On failover, promote a replica that is Ready: it
// has every acknowledged synchronous write. Follow(slot) tells a replica
// who the writer is (from the AMF); one that learns of a new writer is not
// Ready until that writer counts it in sync, because the records it holds
// may be an asynchronous tail the new writer never had. The promoted
// replica continues the sequence from what it applied under a larger
// generation; the other replicas resync from it, dropping any tail. Killing
// the only Ready copy loses what only it held (in-memory replication).
// Known limit: a replica cut off for about the detection time may still
// say Ready while the writer already dropped it from the set (partition
// races are not closed here; the AMF's lease rule keeps it from being
// active in a minority).
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
// TCP Link per replica (shelf-key authenticated, large frames). The HA
// transport's 1.4 KB datagrams, each sealed and sent on both base paths,
// bound a stream to tens of MB/s; the Link carries hundreds (make
// bench-ckpt measures both beside raw TCP over the same veth). The
// protocol is the same on both.
//
// # Testing
//
// sim_test.go kills writers on virtual time (40 seeds); procmode_test.go
// runs cmd/ckptnode as three processes in network namespaces (ha/procmode)
// and kills the active with SIGKILL; bench_test.go is the bench
// (CGOA_BENCH_CKPT).
package ckpt
