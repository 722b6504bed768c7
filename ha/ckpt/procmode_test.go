package ckpt

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cgoa/cgoa/ha/procmode"
)

// cnode is one ckptnode process in its blade's namespace.
type cnode struct {
	slot  uint8
	cmd   *exec.Cmd
	stdin io.WriteCloser
	mu    sync.Mutex
	lines []string
	done  chan struct{}
}

func (c *cnode) snapshot() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lines[:len(c.lines):len(c.lines)]
}

// await returns the index of the first line at or after from that
// satisfies ok.
func (c *cnode) await(t *testing.T, from int, limit time.Duration, what string, ok func(string) bool) int {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ls := c.snapshot()
		for i := from; i < len(ls); i++ {
			if ok(ls[i]) {
				return i
			}
		}
		from = len(ls)
		select {
		case <-c.done:
			if len(c.snapshot()) == len(ls) {
				t.Fatalf("slot %d exited while waiting for %s", c.slot, what)
			}
			continue
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot %d: no %s within %v", c.slot, what, limit)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (c *cnode) send(t *testing.T, cmd string) int {
	t.Helper()
	n := len(c.snapshot())
	if _, err := io.WriteString(c.stdin, cmd+"\n"); err != nil {
		t.Fatalf("slot %d: %s: %v", c.slot, cmd, err)
	}
	return n
}

// secState is one section as a dump shows it.
type secState struct {
	id  uint64
	len int
	crc uint32
}

// dump asks for the node's sections.
type dumpOut struct {
	role     string
	seq      uint64
	ready    bool
	resyncs  uint64
	sections map[string]secState
}

// parseSecs reads "sec" lines from ls[i:] up to "end".
func parseSecs(t *testing.T, ls []string, i int) map[string]secState {
	t.Helper()
	m := map[string]secState{}
	for ; i < len(ls) && ls[i] != "end"; i++ {
		var name string
		var s secState
		if _, err := fmt.Sscanf(ls[i], "sec %s %d %d %x", &name, &s.id, &s.len, &s.crc); err != nil {
			t.Fatalf("bad sec line %q: %v", ls[i], err)
		}
		m[name] = s
	}
	if i >= len(ls) {
		t.Fatalf("sections without end: %q", ls)
	}
	return m
}

func (c *cnode) dump(t *testing.T) dumpOut {
	t.Helper()
	from := c.send(t, "dump")
	i := c.await(t, from, 10*time.Second, "dump", func(l string) bool { return strings.HasPrefix(l, "dump ") })
	c.await(t, i, 10*time.Second, "dump end", func(l string) bool { return l == "end" })
	ls := c.snapshot()
	var d dumpOut
	var gen uint64
	if _, err := fmt.Sscanf(ls[i], "dump %s gen %d seq %d ready %t resyncs %d", &d.role, &gen, &d.seq, &d.ready, &d.resyncs); err != nil {
		t.Fatalf("bad dump line %q: %v", ls[i], err)
	}
	d.sections = parseSecs(t, ls, i+1)
	return d
}

// intent is one workload write in issue order.
type intent struct {
	id   uint64
	sec  string
	del  bool
	size int
}

// lineage is the history of one writer: the sections it started from,
// the sequence its workload writes follow, its writes in order and the
// highest acknowledged synchronous write.
type lineage struct {
	slot    uint8
	start   map[string]secState
	base    uint64
	intents []intent
	acked   uint64
	parsed  int // lines of the writer taken
	// index after its last promote line taken here (it was demoted and
	// promoted again): not a takeover to check later
	promoted int
	pos      map[uint64]int
}

func wantState(id uint64, size int) secState {
	return secState{id: id, len: 8 + size, crc: crc32.ChecksumIEEE(payload(id, size))}
}

// take parses the writer's lines from where it left off.
func (l *lineage) take(t *testing.T, ls []string) {
	t.Helper()
	for ; l.parsed < len(ls); l.parsed++ {
		f := strings.Fields(ls[l.parsed])
		switch {
		case len(f) == 6 && f[0] == "w":
			id, _ := strconv.ParseUint(f[1], 10, 64)
			size, _ := strconv.Atoi(f[5])
			l.pos[id] = len(l.intents)
			l.intents = append(l.intents, intent{id: id, sec: f[2], del: f[3] == "true", size: size})
		case len(f) == 3 && f[0] == "ack":
			seq, _ := strconv.ParseUint(f[1], 10, 64)
			id, _ := strconv.ParseUint(f[2], 10, 64)
			p, ok := l.pos[id]
			if !ok || seq != l.base+uint64(p)+1 {
				t.Fatalf("slot %d: %q: write %d is intent %d (found %v), want sequence %d", l.slot, ls[l.parsed], id, p, ok, l.base+uint64(p)+1)
			}
			l.acked = max(l.acked, seq)
		case len(f) > 2 && f[0] == "err":
			t.Logf("slot %d: %s", l.slot, ls[l.parsed])
			// A write refused (the unit was no longer active) left no
			// record; a synchronous write whose wait failed did.
			id, _ := strconv.ParseUint(f[1], 10, 64)
			if p, ok := l.pos[id]; ok && p == len(l.intents)-1 && !strings.Contains(ls[l.parsed], "synchronous write") {
				l.intents = l.intents[:p]
				delete(l.pos, id)
			}
		case len(f) == 7 && f[0] == "promote":
			// The writer's assignment flapped (a starved process lost its
			// lease) and came back: it must hold its whole lineage.
			var ready bool
			var seq uint64
			fmt.Sscanf(ls[l.parsed], "promote ready %t seq %d", &ready, &seq)
			if want := l.base + uint64(len(l.intents)); !ready || seq != want {
				t.Fatalf("slot %d promoted again: ready %v at sequence %d, want ready at its own %d", l.slot, ready, seq, want)
			}
			l.promoted = l.parsed + 1
		case len(f) == 2 && f[0] == "base":
			seq, _ := strconv.ParseUint(f[1], 10, 64)
			if want := l.base + uint64(len(l.intents)); seq != want {
				t.Fatalf("slot %d promoted again: base %d, want %d", l.slot, seq, want)
			}
			t.Logf("slot %d was demoted and promoted again at sequence %d", l.slot, seq)
		}
	}
}

// at is the sections after the lineage's records up to seq.
func (l *lineage) at(seq uint64) map[string]secState {
	m := maps.Clone(l.start)
	for _, in := range l.intents[:seq-l.base] {
		if in.del {
			delete(m, in.sec)
		} else {
			m[in.sec] = wantState(in.id, in.size)
		}
	}
	return m
}

// TestProcessKills is the checkpoint kill test in process mode: three
// ckptnode processes in network namespaces over veth (procmode's dual
// star: slot 1 a voting witness, slots 3 and 4 the mgmt 2N group), the
// writer and its replica chosen by the real AMF (ha.Blade). The active
// writes a mix of synchronous and asynchronous writes and deletes of
// sections up to three frames long; rounds of: the replica is stopped
// (SIGSTOP) while the writer streams asynchronous writes, so it falls
// behind the 64 KiB ring and is resynced from the sections, and must then
// hold exactly the writer's sections; then kill -9 of the active at a
// random point. At each promotion the new writer's sections (its own
// report, checked against CRCs of the data each write id stands for) are
// exactly the old writer's history up to the sequence it reached, and
// that sequence covers every synchronous write the old writer saw
// acknowledged: nothing acknowledged is lost, nothing is torn or
// reordered, only an unacknowledged tail may be missing. Every promotion
// is of a Ready replica: the AMF's readiness gate (Node.Ready as the
// checkpoint component's Ready) keeps a restarted blade that is still
// resyncing from taking the group. The killed blade restarts empty and
// rejoins as the replica. A writer whose assignment flaps (a starved
// process losing its lease) must come back with its whole lineage.
func TestProcessKills(t *testing.T) {
	procmode.Require(t)
	kills := 6
	if v, err := strconv.Atoi(os.Getenv("CKPT_PROC_KILLS")); err == nil && v > 0 {
		kills = v
	}
	dir := t.TempDir()
	bin := procmode.BuildCmd(t, dir, "github.com/cgoa/cgoa/ha/ckpt/cmd/ckptnode")
	slots := []uint8{1, 3, 4}
	shelf := procmode.New(t, bin, slots, "groups: []\n")
	// Our own shelf configuration and key (procmode's are for hanode).
	conf := filepath.Join(dir, "shelf.yaml")
	if err := os.WriteFile(conf, []byte(`shelf: 7
slots: [1, 3, 4]
timers:
  interval: 20ms
  misses: 10
groups:
  - name: mgmt
    model: 2n
    units:
      - {name: mgmt-3, node: 3}
      - {name: mgmt-4, node: 4}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	kb := make([]byte, 32)
	rand.Read(kb)
	key := hex.EncodeToString(kb)
	var stderr strings.Builder
	var stderrMu sync.Mutex
	nodes := map[uint8]*cnode{}
	start := func(slot uint8) *cnode {
		t.Helper()
		cmd := exec.Command("ip", "netns", "exec", shelf.NS(slot), bin, "-config", conf, "-slot", fmt.Sprint(slot), "-key", key,
			"-base0", "base0="+procmode.Base0Net, "-base1", "base1="+procmode.Base1Net, "-port", fmt.Sprint(procmode.HAPort),
			"-ring", fmt.Sprint(64<<10), "-seed", fmt.Sprint(mrand.Uint64()))
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		ew, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatalf("start ckptnode slot %d: %v", slot, err)
		}
		c := &cnode{slot: slot, cmd: cmd, stdin: in, done: make(chan struct{})}
		go func() {
			sc := bufio.NewScanner(ew)
			for sc.Scan() {
				stderrMu.Lock()
				fmt.Fprintf(&stderr, "slot %d: %s\n", slot, sc.Text())
				stderrMu.Unlock()
			}
		}()
		go func() {
			sc := bufio.NewScanner(out)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				c.mu.Lock()
				c.lines = append(c.lines, sc.Text())
				c.mu.Unlock()
			}
			cmd.Wait()
			close(c.done)
		}()
		nodes[slot] = c
		c.await(t, 0, 10*time.Second, "ready", func(l string) bool { return l == "ready" })
		return c
	}
	kill := func(slot uint8) {
		c := nodes[slot]
		c.cmd.Process.Kill()
		<-c.done
	}
	t.Cleanup(func() {
		for _, c := range nodes {
			c.cmd.Process.Kill()
			<-c.done
		}
		if t.Failed() {
			stderrMu.Lock()
			t.Logf("stderr:\n%s", stderr.String())
			stderrMu.Unlock()
		}
	})
	for _, sl := range slots {
		start(sl)
	}
	isPromote := func(l string) bool { return strings.HasPrefix(l, "promote ") }
	// The first writer: whichever unit the AMF made active.
	var active uint8
	deadline := time.Now().Add(15 * time.Second)
	for active == 0 {
		for _, sl := range []uint8{3, 4} {
			for _, l := range nodes[sl].snapshot() {
				if isPromote(l) {
					active = sl
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no writer promoted within 15s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// newLineage reads a writer's promotion: what it held, its base.
	newLineage := func(c *cnode, at int) (*lineage, uint64, bool, bool) {
		c.await(t, at, 10*time.Second, "base", func(l string) bool { return strings.HasPrefix(l, "base ") })
		ls := c.snapshot()
		var ready, live bool
		var seq uint64
		if _, err := fmt.Sscanf(ls[at], "promote ready %t seq %d live %t", &ready, &seq, &live); err != nil {
			t.Fatalf("bad promote line %q", ls[at])
		}
		l := &lineage{slot: c.slot, start: parseSecs(t, ls, at+1), pos: map[uint64]int{}}
		i := at + 1
		for ls[i] != "end" {
			i++
		}
		if _, err := fmt.Sscanf(ls[i+1], "base %d", &l.base); err != nil {
			t.Fatalf("bad base line %q", ls[i+1])
		}
		l.parsed = i + 2
		return l, seq, ready, live
	}
	first := nodes[active].await(t, 0, time.Second, "promote", isPromote)
	// promoteSeen: per slot, the line index after the last promotion
	// checked (a takeover, or a writer's flap taken with its lineage).
	promoteSeen := map[uint8]int{active: first + 1}
	cur, _, _, _ := newLineage(nodes[active], first)
	checkAgainst := func(what string, got map[string]secState, l *lineage, seq uint64) {
		t.Helper()
		tail := func() {
			ls := nodes[l.slot].snapshot()
			for _, line := range ls[max(len(ls)-80, 0):] {
				if !strings.HasPrefix(line, "sec ") {
					t.Logf("slot %d: %s", l.slot, line)
				}
			}
		}
		if seq < l.base || seq-l.base > uint64(len(l.intents)) {
			tail()
			t.Fatalf("%s: sequence %d outside writer %d's history %d..%d", what, seq, l.slot, l.base, l.base+uint64(len(l.intents)))
		}
		if want := l.at(seq); !maps.Equal(got, want) {
			for sec, g := range got {
				if w, ok := want[sec]; !ok || w != g {
					t.Logf("section %s: got %v, want %v (intent %d of %d)", sec, g, w, l.pos[g.id], len(l.intents))
				}
			}
			tail()
			t.Fatalf("%s at sequence %d: sections %v, want writer %d's history %v", what, seq, got, l.slot, want)
		}
	}
	rng := mrand.New(mrand.NewPCG(mrand.Uint64(), 1))
	// awaitReady waits until c is a ready replica. If c is promoted
	// meanwhile (the AMF moved the group by itself: a starved process on
	// a loaded machine, a switch-back), it returns the promote line's
	// index: the caller checks that takeover like one after a kill.
	awaitReady := func(c *cnode, from int) int {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			ls := c.snapshot()
			for i := from; i < len(ls); i++ {
				if isPromote(ls[i]) {
					return i
				}
			}
			d := c.dump(t)
			if d.role == "replica" && d.ready {
				return -1
			}
			if time.Now().After(deadline) {
				t.Fatalf("slot %d not a ready replica within 15s: %+v", c.slot, d)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// takeover checks the promotion of slot standby (line at) against
	// the current lineage and makes it the writer.
	takeover := func(what string, standby uint8, at int) {
		t.Helper()
		cur.take(t, nodes[active].snapshot())
		promoteSeen[active] = max(promoteSeen[active], cur.promoted)
		next, seq, ready, live := newLineage(nodes[standby], at)
		switch {
		case !ready && live:
			// The readiness gate's contract: with a live writer to sync
			// from, only a replica in sync takes over.
			t.Fatalf("%s: slot %d promoted while not ready, with a live writer", what, standby)
		case !ready:
			// No live writer as the AMF saw it (a writer starved past
			// detection on a loaded machine, or killed while the
			// replica's in-sync lease had lapsed): the gate opens,
			// nothing better can be had. The checks below still hold
			// whenever nothing was acknowledged without this replica.
			t.Logf("%s: slot %d promoted without a live writer and not provably in sync", what, standby)
		}
		if seq < cur.acked {
			t.Fatalf("%s: promoted slot %d has sequence %d, slot %d saw synchronous write %d acknowledged", what, standby, seq, active, cur.acked)
		}
		checkAgainst(fmt.Sprintf("%s: promoted slot %d", what, standby), next.start, cur, seq)
		t.Logf("%s: slot %d wrote %d (acknowledged sync up to seq %d); %d took over at seq %d (lost tail %d)",
			what, active, len(cur.intents), cur.acked, standby, seq, cur.base+uint64(len(cur.intents))-seq)
		cur = next
		active = standby
	}
	// converge pauses the writer and checks the replica reaches exactly
	// its sections (and the model's).
	// If the AMF promotes the replica meanwhile (by itself, on a loaded
	// machine), converge resumes the writer and returns the promote
	// line's index for the caller to check that takeover; else -1.
	converge := func(what string) int {
		t.Helper()
		w, r := nodes[active], nodes[7-active]
		i := w.await(t, w.send(t, "pause"), 10*time.Second, "paused", func(l string) bool { return strings.HasPrefix(l, "paused ") })
		var seq uint64
		fmt.Sscanf(w.snapshot()[i], "paused %d", &seq)
		cur.take(t, w.snapshot())
		promoteSeen[active] = max(promoteSeen[active], cur.promoted)
		wd := w.dump(t)
		if wd.role != "writer" {
			// Demoted between its pause and its dump: the AMF is moving
			// the group by itself (a starved process on a loaded
			// machine). The replica's promotion is that takeover.
			at := r.await(t, promoteSeen[r.slot], 10*time.Second, "promotion after a demotion", isPromote)
			w.send(t, "resume")
			return at
		}
		checkAgainst(what+": writer", wd.sections, cur, seq)
		deadline := time.Now().Add(10 * time.Second)
		for {
			ls := r.snapshot()
			for at := promoteSeen[r.slot]; at < len(ls); at++ {
				if isPromote(ls[at]) {
					w.send(t, "resume")
					return at
				}
			}
			rd := r.dump(t)
			if rd.seq == seq && rd.ready {
				if !maps.Equal(rd.sections, wd.sections) {
					t.Fatalf("%s: replica %d sections %v, want the writer's %v", what, r.slot, rd.sections, wd.sections)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: replica %d at seq %d ready %v, writer at %d after 10s", what, r.slot, rd.seq, rd.ready, seq)
			}
			time.Sleep(10 * time.Millisecond)
		}
		w.send(t, "resume")
		return -1
	}
	var stallResyncs uint64
	spontaneous := 0
	for round := 0; round < kills; round++ {
		standby := 7 - active
		if at := awaitReady(nodes[standby], promoteSeen[standby]); at >= 0 {
			promoteSeen[standby] = at + 1
			takeover(fmt.Sprintf("round %d, failover by the AMF itself", round), standby, at)
			spontaneous++
			round--
			if spontaneous > 3 {
				t.Fatalf("%d failovers nobody caused", spontaneous)
			}
			continue
		}
		// The replica stalls while the writer streams: it falls behind
		// the ring (64 KiB; the stall is shorter than failure detection).
		w := nodes[active]
		w.await(t, w.send(t, "mode async"), 5*time.Second, "mode", func(l string) bool { return l == "mode async" })
		before := w.dump(t).resyncs
		syscall.Kill(nodes[standby].cmd.Process.Pid, syscall.SIGSTOP)
		time.Sleep(60 * time.Millisecond) // the fault's length, not a wait for an event
		syscall.Kill(nodes[standby].cmd.Process.Pid, syscall.SIGCONT)
		w.send(t, "mode mixed")
		if at := converge(fmt.Sprintf("round %d after a stall", round)); at >= 0 {
			promoteSeen[standby] = at + 1
			takeover(fmt.Sprintf("round %d, failover by the AMF itself during the stall", round), standby, at)
			spontaneous++
			round--
			if spontaneous > 3 {
				t.Fatalf("%d failovers nobody caused", spontaneous)
			}
			continue
		}
		stallResyncs += w.dump(t).resyncs - before
		// kill -9 of the active at a random point of the workload.
		time.Sleep(time.Duration(20+rng.IntN(300)) * time.Millisecond)
		// From the last promotion checked: if the AMF moved the group by
		// itself just before the kill, that promotion is the takeover.
		from := promoteSeen[standby]
		killed := active
		kill(active)
		at := nodes[standby].await(t, from, 10*time.Second, "promotion after the kill", isPromote)
		promoteSeen[standby] = at + 1
		takeover(fmt.Sprintf("round %d, kill -9", round), standby, at)
		start(killed)
		promoteSeen[killed] = 0
	}
	for i := 0; ; i++ {
		sb := 7 - active
		at := awaitReady(nodes[sb], promoteSeen[sb])
		if at < 0 {
			if at = converge("end"); at < 0 {
				break
			}
		}
		if i == 3 {
			t.Fatalf("the AMF keeps moving the group by itself")
		}
		promoteSeen[sb] = at + 1
		takeover("end, failover by the AMF itself", sb, at)
	}
	if stallResyncs == 0 {
		t.Errorf("no stall made the replica fall behind the ring (resyncs 0): the test did not exercise the resync")
	}
	t.Logf("%d kills, %d resyncs after stalls", kills, stallResyncs)
}
