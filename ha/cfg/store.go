package cfg

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"os"
	"slices"
	"sort"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Op is a replicated command's operation.
type Op string

// Operations.
const (
	OpLock   Op = "lock"   // Unit: admin-locked
	OpUnlock Op = "unlock" // Unit: admin-unlocked
	OpAssign Op = "assign" // Group, Unit, Node: a unit became active
	OpSet    Op = "set"    // Key, Value: a shelf-wide configuration item
)

// Command is one replicated change.
type Command struct {
	Op     Op     `json:"op"`
	Unit   string `json:"unit,omitempty"`
	Group  string `json:"group,omitempty"`
	Node   uint8  `json:"node,omitempty"`
	Key    string `json:"key,omitempty"`
	Value  string `json:"value,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Record is the replicated record of a group's latest active unit.
type Record struct {
	Unit   string `json:"unit"`
	Node   uint8  `json:"node"`
	Index  uint64 `json:"index"` // raft index that recorded it
	Reason string `json:"reason,omitempty"`
}

// State is the replicated shelf state: admin locks, the latest active
// unit of every group, and configuration items.
type State struct {
	Applied  uint64            `json:"applied"`
	Locked   map[string]bool   `json:"locked"`
	Active   map[string]Record `json:"active"`
	Settings map[string]string `json:"settings"`
}

func newState() State {
	return State{Locked: map[string]bool{}, Active: map[string]Record{}, Settings: map[string]string{}}
}

func (s State) clone() State {
	c := s
	c.Locked, c.Active, c.Settings = maps.Clone(s.Locked), maps.Clone(s.Active), maps.Clone(s.Settings)
	return c
}

func (s *State) apply(index uint64, c Command) {
	s.Applied = index
	switch c.Op {
	case OpLock:
		s.Locked[c.Unit] = true
	case OpUnlock:
		delete(s.Locked, c.Unit)
	case OpAssign:
		s.Active[c.Group] = Record{Unit: c.Unit, Node: c.Node, Index: index, Reason: c.Reason}
	case OpSet:
		s.Settings[c.Key] = c.Value
	}
}

// Options configure a Store.
type Options struct {
	Slot   uint8
	Voters []uint8 // every configured slot
	// Send carries a raft message to a slot (over the HA transport,
	// frame type TypeRaft). Messages larger than MaxMessage are dropped
	// and counted; raft retransmits what matters.
	Send func(to uint8, msg []byte)
	// MaxMessage bounds an encoded message (transport.MaxPayload).
	MaxMessage int
	// ElectionTicks and HeartbeatTicks count Tick calls (default 10 and 1;
	// with Tick every 10 ms an election takes 100-200 ms, which is fine:
	// nothing on the failover path waits for it).
	ElectionTicks, HeartbeatTicks int
	// VoteFile, if set, keeps raft's term and vote across restarts, so a
	// restarted voter never votes twice in one term. The log itself lives
	// in memory (raft.MemoryStorage) and is re-replicated from the leader.
	VoteFile string
	// OnApply is called for every committed command, in log order.
	OnApply func(Command, State)
	// Logger for raft (default: discard).
	Logger raft.Logger
}

// Store is the shelf configuration replicated with go.etcd.io/raft
// (RawNode over MemoryStorage). It is driven like the amf engine: Tick on
// a timer, Step with received messages, and both return after handling
// raft's Ready (append to storage, send messages, apply commits). Not
// safe for concurrent use: the caller serialises (ha.Blade's loop).
type Store struct {
	opts    Options
	rn      *raft.RawNode
	storage *raft.MemoryStorage
	state   State
	hard    *pb.HardState
	broken  error

	// Dropped counts messages too large to send and undecodable input;
	// Stale counts heartbeats meant for this slot's previous life.
	Dropped, Stale uint64
}

// ErrBroken is returned once raft panicked on an input: the replica must
// be recreated (it then catches up from the leader like a restarted one).
var ErrBroken = errors.New("cfg: replica broken by a bad message")

// New starts the replica of opts.Slot.
func New(opts Options) (*Store, error) {
	if opts.Send == nil || len(opts.Voters) == 0 || !slices.Contains(opts.Voters, opts.Slot) {
		return nil, fmt.Errorf("cfg: slot %d, voters %v: need Send and own slot among voters", opts.Slot, opts.Voters)
	}
	if opts.ElectionTicks == 0 {
		opts.ElectionTicks = 10
	}
	if opts.HeartbeatTicks == 0 {
		opts.HeartbeatTicks = 1
	}
	if opts.MaxMessage == 0 {
		opts.MaxMessage = 1400
	}
	if opts.Logger == nil {
		opts.Logger = &raft.DefaultLogger{Logger: log.New(io.Discard, "", 0)}
	}
	st := raft.NewMemoryStorage()
	var voters []uint64
	for _, v := range opts.Voters {
		voters = append(voters, uint64(v))
	}
	sort.Slice(voters, func(i, j int) bool { return voters[i] < voters[j] })
	// Every replica starts from the same empty snapshot at index 1 with
	// the configured voters; the leader replicates everything after it.
	snap := &pb.Snapshot{Metadata: &pb.SnapshotMetadata{ConfState: &pb.ConfState{Voters: voters}, Index: new(uint64(1)), Term: new(uint64(1))}}
	if err := st.ApplySnapshot(snap); err != nil {
		return nil, fmt.Errorf("cfg: %w", err)
	}
	term, vote, err := loadVote(opts.VoteFile)
	if err != nil {
		return nil, err
	}
	hs := &pb.HardState{Term: new(max(term, 1)), Vote: new(vote), Commit: new(uint64(1))}
	if err := st.SetHardState(hs); err != nil {
		return nil, fmt.Errorf("cfg: %w", err)
	}
	rn, err := raft.NewRawNode(&raft.Config{
		ID: uint64(opts.Slot), ElectionTick: opts.ElectionTicks, HeartbeatTick: opts.HeartbeatTicks,
		Storage: st, Applied: 1, MaxSizePerMsg: uint64(opts.MaxMessage / 2), MaxInflightMsgs: 64,
		CheckQuorum: true, PreVote: true, Logger: opts.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("cfg: %w", err)
	}
	return &Store{opts: opts, rn: rn, storage: st, state: newState(), hard: hs}, nil
}

// guard runs f, turning a raft panic (a member sent a message raft
// rejects by panicking, e.g. a commit index beyond our log) into
// ErrBroken: the blade keeps running.
func (s *Store) guard(f func() error) (err error) {
	if s.broken != nil {
		return s.broken
	}
	defer func() {
		if r := recover(); r != nil {
			s.broken = fmt.Errorf("%w: %v", ErrBroken, r)
			err = s.broken
		}
	}()
	return f()
}

// Tick advances raft's logical clock by one tick.
func (s *Store) Tick() error {
	return s.guard(func() error {
		s.rn.Tick()
		return s.process()
	})
}

// Step feeds a received message (frame payload from slot from).
func (s *Store) Step(from uint8, msg []byte) error {
	m := &pb.Message{}
	if err := proto.Unmarshal(msg, m); err != nil {
		s.Dropped++
		return fmt.Errorf("cfg: message from slot %d: %w", from, err)
	}
	if m.GetFrom() != uint64(from) || raft.IsLocalMsg(m.GetType()) {
		// The frame's authenticated sender must be the raft sender, and
		// local message types never travel.
		s.Dropped++
		return fmt.Errorf("cfg: message from slot %d claims sender %d type %v", from, m.GetFrom(), m.GetType())
	}
	if m.GetType() == pb.MsgHeartbeat {
		// A leader that knew this slot before it restarted still believes
		// it holds the lost log (progress Match) and sends a commit index
		// beyond it, on which raft would panic. Drop such heartbeats (as
		// if lost); the leader hands leadership over (TransferLeader on
		// the restart), and the new leader replicates the log afresh.
		if last, _ := s.storage.LastIndex(); m.GetCommit() > last {
			s.Stale++
			return nil
		}
	}
	return s.guard(func() error {
		if err := s.rn.Step(m); err != nil {
			return fmt.Errorf("cfg: step: %w", err)
		}
		return s.process()
	})
}

// Propose submits a command; it is forwarded to the leader. It fails at
// once if no leader is known (the caller retries or reports).
func (s *Store) Propose(c Command) error {
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("cfg: %w", err)
	}
	return s.guard(func() error {
		if err := s.rn.Propose(b); err != nil {
			return fmt.Errorf("cfg: propose %s: %w", c.Op, err)
		}
		return s.process()
	})
}

// State returns a copy of the applied state.
func (s *Store) State() State { return s.state.clone() }

// Restarted tells the replica that slot restarted with an empty log. If
// this replica leads, it hands leadership to another up-to-date voter:
// raft's leader keeps the restarted follower's old progress and would
// never resend the entries it lost; a new leader starts from scratch.
func (s *Store) Restarted(slot uint8) error {
	return s.guard(func() error {
		st := s.rn.Status()
		if st.Lead != uint64(s.opts.Slot) || st.RaftState != raft.StateLeader {
			return nil
		}
		var best uint64
		var bestMatch uint64
		for id, pr := range st.Progress {
			if id == uint64(slot) || id == uint64(s.opts.Slot) {
				continue
			}
			if best == 0 || pr.Match > bestMatch || (pr.Match == bestMatch && id < best) {
				best, bestMatch = id, pr.Match
			}
		}
		if best == 0 {
			return nil
		}
		s.rn.TransferLeader(best)
		return s.process()
	})
}

// Options returns the options the store was made with (to recreate it).
func (s *Store) Options() Options { return s.opts }

// Leader is the slot of the leader this replica knows (0 if none).
func (s *Store) Leader() uint8 { return uint8(s.rn.BasicStatus().Lead) }

func (s *Store) process() error {
	for s.rn.HasReady() {
		rd := s.rn.Ready()
		if rd.HardState != nil && !raft.IsEmptyHardState(rd.HardState) {
			if rd.HardState.GetTerm() != s.hard.GetTerm() || rd.HardState.GetVote() != s.hard.GetVote() {
				if err := saveVote(s.opts.VoteFile, rd.HardState.GetTerm(), rd.HardState.GetVote()); err != nil {
					return err
				}
			}
			s.hard = rd.HardState
			if err := s.storage.SetHardState(rd.HardState); err != nil {
				return fmt.Errorf("cfg: %w", err)
			}
		}
		if len(rd.Entries) > 0 {
			if err := s.storage.Append(rd.Entries); err != nil {
				return fmt.Errorf("cfg: %w", err)
			}
		}
		for _, m := range rd.Messages {
			b, err := proto.Marshal(m)
			if err != nil || len(b) > s.opts.MaxMessage {
				s.Dropped++
				continue
			}
			s.opts.Send(uint8(m.GetTo()), b)
		}
		for _, e := range rd.CommittedEntries {
			if e.GetType() != pb.EntryNormal || len(e.GetData()) == 0 {
				s.state.Applied = e.GetIndex()
				continue
			}
			var c Command
			if err := json.Unmarshal(e.GetData(), &c); err != nil {
				s.state.Applied = e.GetIndex()
				continue
			}
			s.state.apply(e.GetIndex(), c)
			if s.opts.OnApply != nil {
				s.opts.OnApply(c, s.state.clone())
			}
		}
		s.rn.Advance(rd)
	}
	return nil
}

func loadVote(path string) (term, vote uint64, err error) {
	if path == "" {
		return 0, 0, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("cfg: vote file: %w", err)
	}
	if len(b) != 16 {
		return 0, 0, fmt.Errorf("cfg: vote file %s: %d bytes, want 16", path, len(b))
	}
	return binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:]), nil
}

func saveVote(path string, term, vote uint64) error {
	if path == "" {
		return nil
	}
	b := binary.BigEndian.AppendUint64(nil, term)
	b = binary.BigEndian.AppendUint64(b, vote)
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("cfg: vote file: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("cfg: vote file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("cfg: vote file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cfg: vote file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("cfg: vote file: %w", err)
	}
	return nil
}
