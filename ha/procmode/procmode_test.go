package procmode

import (
	"context"
	"slices"
	"testing"
	"time"
)

// mgmtGroups is the process-mode configuration of the bench: 10 ms x 3.
const mgmtGroups = `timers:
  interval: 10ms
  misses: 3
groups:` + mgmtUnits

// testGroups is looser (20 ms x 5) so that a test on a loaded CI machine
// does not see a starved process suspected; the bench measures 10 ms x 3.
const testGroups = `timers:
  interval: 20ms
  misses: 5
groups:` + mgmtUnits

const mgmtUnits = `
  - name: mgmt
    model: 2n
    units:
      - {name: mgmt-3, node: 3}
      - {name: mgmt-4, node: 4}
`

func answeredBy(answers []Answer, since time.Time) []uint8 {
	var s []uint8
	for _, a := range answers {
		if !a.At.Before(since) && !slices.Contains(s, a.Slot) {
			s = append(s, a.Slot)
		}
	}
	return s
}

func waitAnswers(t *testing.T, p *Prober, slot uint8, limit time.Duration) time.Time {
	t.Helper()
	start := time.Now()
	for time.Since(start) < limit {
		as := p.Answers()
		for i := len(as) - 1; i >= 0 && as[i].At.After(start); i-- {
			if as[i].Slot == slot {
				return as[i].At
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("no probe answer from slot %d within %v", slot, limit)
	return time.Time{}
}

// TestKillActiveMgmt: three blades as processes in namespaces (slot 1 is
// a hub-like witness that votes, 3 and 4 carry mgmt 2N), real sockets
// over veth through two bridges. kill -9 of the active mgmt process makes
// the standby answer the probe.
func TestKillActiveMgmt(t *testing.T) {
	Require(t)
	bin := Build(t, t.TempDir())
	s := New(t, bin, []uint8{1, 3, 4}, testGroups)
	for _, slot := range []uint8{1, 3, 4} {
		s.Start(slot)
	}
	p := s.NewProber(3, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx, time.Millisecond)
	waitAnswers(t, p, 3, 10*time.Second)
	time.Sleep(100 * time.Millisecond) // a stretch of steady answers before the kill
	if by := answeredBy(p.Answers(), time.Now().Add(-50*time.Millisecond)); !slices.Equal(by, []uint8{3}) {
		t.Fatalf("before the kill, answers from %v, want only [3]", by)
	}
	killed := time.Now()
	s.Kill(3)
	took := waitAnswers(t, p, 4, 5*time.Second).Sub(killed)
	end := killed.Add(took + 50*time.Millisecond)
	time.Sleep(time.Until(end) + 10*time.Millisecond) // let the window fill
	gap, err := Gap(p.Answers(), killed, end)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kill -9 of the active: standby answered after %v; largest probe gap %v", took, gap)
	// Generous bound for a shared CI machine; the bench measures the
	// distribution (target p99 <= 50 ms).
	if gap > time.Second {
		t.Errorf("outage %v after kill -9, want < 1s", gap)
	}
	// The killed blade comes back as standby and does not answer.
	s.Start(3)
	time.Sleep(300 * time.Millisecond)
	if by := answeredBy(p.Answers(), time.Now().Add(-100*time.Millisecond)); !slices.Equal(by, []uint8{4}) {
		t.Errorf("after restart of 3, answers from %v, want only [4]", by)
	}
}
