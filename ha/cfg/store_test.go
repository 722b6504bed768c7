package cfg

import (
	"errors"
	"path/filepath"
	"reflect"
	"testing"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

type msg struct {
	from, to uint8
	b        []byte
}

// cluster routes messages between replicas in FIFO order; down replicas
// neither send nor receive.
type cluster struct {
	t     *testing.T
	reps  map[uint8]*Store
	down  map[uint8]bool
	queue []msg
	slots []uint8
}

func newCluster(t *testing.T, slots ...uint8) *cluster {
	c := &cluster{t: t, reps: map[uint8]*Store{}, down: map[uint8]bool{}, slots: slots}
	for _, s := range slots {
		c.start(s, "")
	}
	return c
}

func (c *cluster) start(slot uint8, voteFile string) {
	s, err := New(Options{Slot: slot, Voters: c.slots, VoteFile: voteFile, Send: func(to uint8, b []byte) {
		c.queue = append(c.queue, msg{slot, to, b})
	}})
	if err != nil {
		c.t.Fatalf("New(slot %d) error %v", slot, err)
	}
	c.reps[slot] = s
	c.down[slot] = false
}

// run ticks every live replica n times, delivering all messages between.
func (c *cluster) run(n int) {
	for i := 0; i < n; i++ {
		for _, s := range c.slots {
			if !c.down[s] {
				if err := c.reps[s].Tick(); err != nil {
					c.t.Fatalf("Tick(slot %d) error %v", s, err)
				}
			}
		}
		for len(c.queue) > 0 {
			m := c.queue[0]
			c.queue = c.queue[1:]
			if c.down[m.from] || c.down[m.to] {
				continue
			}
			if err := c.reps[m.to].Step(m.from, m.b); err != nil {
				c.t.Fatalf("Step(%d->%d) error %v", m.from, m.to, err)
			}
		}
	}
}

func (c *cluster) leader() uint8 {
	for _, s := range c.slots {
		if !c.down[s] && c.reps[s].Leader() == s {
			return s
		}
	}
	return 0
}

func TestReplicatedState(t *testing.T) {
	c := newCluster(t, 1, 2, 3, 4, 5)
	c.run(40)
	lead := c.leader()
	if lead == 0 {
		t.Fatal("no leader after 40 ticks")
	}
	follower := uint8(1)
	if follower == lead {
		follower = 2
	}
	var applied []Command
	c.reps[follower].opts.OnApply = func(cmd Command, _ State) { applied = append(applied, cmd) }
	for _, cmd := range []Command{{Op: OpLock, Unit: "mgmt-3"}, {Op: OpAssign, Group: "mgmt", Unit: "mgmt-4", Node: 4, Reason: "failover"}, {Op: OpSet, Key: "lease", Value: "30ms"}} {
		if err := c.reps[follower].Propose(cmd); err != nil {
			t.Fatalf("Propose(%v) on follower error %v", cmd, err)
		}
	}
	c.run(5)
	want := c.reps[lead].State()
	if !want.Locked["mgmt-3"] || want.Active["mgmt"].Unit != "mgmt-4" || want.Settings["lease"] != "30ms" {
		t.Fatalf("leader state %+v lacks the commands", want)
	}
	for _, s := range c.slots {
		if got := c.reps[s].State(); !reflect.DeepEqual(got, want) {
			t.Errorf("slot %d state %+v, want %+v", s, got, want)
		}
	}
	if len(applied) != 3 || applied[0].Op != OpLock {
		t.Errorf("OnApply saw %v, want the 3 commands in order", applied)
	}

	// The leader dies: the others elect a new one and keep going.
	c.down[lead] = true
	c.run(60)
	nl := c.leader()
	if nl == 0 || nl == lead {
		t.Fatalf("leader after killing %d: %d", lead, nl)
	}
	if err := c.reps[nl].Propose(Command{Op: OpUnlock, Unit: "mgmt-3"}); err != nil {
		t.Fatal(err)
	}
	c.run(5)
	if c.reps[nl].State().Locked["mgmt-3"] {
		t.Error("unlock not applied on the new leader")
	}
	// The old leader restarts with an empty memory log and catches up.
	c.start(lead, "")
	c.run(40)
	if got, want := c.reps[lead].State(), c.reps[nl].State(); !reflect.DeepEqual(got, want) {
		t.Errorf("restarted slot %d state %+v, want %+v", lead, got, want)
	}

	// A follower restarts with an empty log. The leader still believes it
	// has the entries, so the leader must hand over (Restarted).
	l := c.leader()
	var f uint8
	for _, s := range c.slots {
		if s != l {
			f = s
			break
		}
	}
	c.start(f, "")
	c.run(20)
	if c.reps[f].Stale == 0 {
		t.Errorf("restarted follower %d saw no stale heartbeat from leader %d", f, l)
	}
	if err := c.reps[l].Restarted(f); err != nil {
		t.Fatal(err)
	}
	c.run(40)
	if nl := c.leader(); nl == l || nl == 0 {
		t.Errorf("leader after Restarted(%d): %d, want another than %d", f, nl, l)
	}
	if got, want := c.reps[f].State(), c.reps[c.leader()].State(); !reflect.DeepEqual(got, want) {
		t.Errorf("restarted follower %d state %+v, want %+v", f, got, want)
	}
}

func TestProposeWithoutLeader(t *testing.T) {
	c := newCluster(t, 1, 2, 3)
	if err := c.reps[1].Propose(Command{Op: OpLock, Unit: "x"}); err == nil {
		t.Error("Propose with no leader known succeeded, want error")
	}
}

func TestVoteFile(t *testing.T) {
	dir := t.TempDir()
	c := newCluster(t, 1, 2, 3)
	c.start(1, filepath.Join(dir, "vote"))
	c.run(40)
	term, vote, err := loadVote(filepath.Join(dir, "vote"))
	if err != nil || term < 2 || vote == 0 {
		t.Fatalf("loadVote() = %d, %d, %v; want term >= 2 and a vote", term, vote, err)
	}
	s, err := New(Options{Slot: 1, Voters: []uint8{1, 2, 3}, VoteFile: filepath.Join(dir, "vote"), Send: func(uint8, []byte) {}})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.hard.GetTerm(); got != term {
		t.Errorf("restarted replica term %d, want %d from the vote file", got, term)
	}
}

func TestStepRejects(t *testing.T) {
	s, _ := New(Options{Slot: 1, Voters: []uint8{1, 2, 3}, Send: func(uint8, []byte) {}})
	if err := s.Step(2, []byte{0xff, 0xff, 0xff}); err == nil {
		t.Error("Step(garbage) = nil, want error")
	}
	spoof, _ := proto.Marshal(&pb.Message{Type: pb.MsgHeartbeat.Enum(), From: new(uint64(3)), To: new(uint64(1)), Term: new(uint64(5))})
	if err := s.Step(2, spoof); err == nil {
		t.Error("Step(from 2, message claiming 3) = nil, want error")
	}
	// A heartbeat committing beyond our log makes raft panic: contained.
	bad, _ := proto.Marshal(&pb.Message{Type: pb.MsgHeartbeat.Enum(), From: new(uint64(2)), To: new(uint64(1)), Term: new(uint64(5)), Commit: new(uint64(1000))})
	err := s.Step(2, bad)
	if err != nil && !errors.Is(err, ErrBroken) {
		t.Errorf("Step(bad commit) = %v, want nil or ErrBroken", err)
	}
	if s.Dropped != 2 {
		t.Errorf("Dropped = %d, want 2", s.Dropped)
	}
}

// FuzzStep: whatever a member sends, Step returns; it never panics.
func FuzzStep(f *testing.F) {
	hb, _ := proto.Marshal(&pb.Message{Type: pb.MsgHeartbeat.Enum(), From: new(uint64(2)), To: new(uint64(1)), Term: new(uint64(2))})
	app, _ := proto.Marshal(&pb.Message{Type: pb.MsgApp.Enum(), From: new(uint64(2)), To: new(uint64(1)), Term: new(uint64(2)), Index: new(uint64(1)), LogTerm: new(uint64(1)),
		Entries: []*pb.Entry{{Index: new(uint64(2)), Term: new(uint64(2)), Data: []byte(`{"op":"lock","unit":"u"}`)}}, Commit: new(uint64(2))})
	f.Add(hb)
	f.Add(app)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, _ := New(Options{Slot: 1, Voters: []uint8{1, 2, 3}, Send: func(uint8, []byte) {}})
		s.Step(2, b)
		s.Tick()
	})
}
