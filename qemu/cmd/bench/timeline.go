package main

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cgoa/cgoa/qemu/farend"
	"github.com/cgoa/cgoa/qemu/shelf"
)

// clockOffsets reads the clock of each slot (show slot json) and returns, per slot, the
// blade's clock minus the host's, the host's taken at the middle of the console round trip
// (good to half of it: a few milliseconds on a quiet shelf).
func clockOffsets(ctx context.Context, s *shelf.Shelf, slots ...int) map[int]time.Duration {
	off := map[int]time.Duration{}
	for _, slot := range slots {
		t0 := time.Now()
		out, err := s.Exec(ctx, slot, "show slot json")
		t1 := time.Now()
		var v struct {
			Clock time.Time `json:"clock"`
		}
		if err != nil || json.Unmarshal([]byte(out), &v) != nil || v.Clock.IsZero() {
			continue
		}
		off[slot] = v.Clock.Sub(t0.Add(t1.Sub(t0) / 2))
	}
	return off
}

// logEntry is a line of show log json.
type logEntry struct {
	Time time.Time `json:"time"`
	Msg  string    `json:"msg"`
}

var carrierSlots = regexp.MustCompile(`backplane channels without carrier: slots \[([0-9 ]*)\]`)

// pullTimeline says, in milliseconds after a pull of slot pulled at killed (host clock),
// when each step of the failover happened, from the logs of the hubs (slots 1 and 2) and the
// new active, set on the host's clock by off: each hub's carrier report of the pulled slot,
// the fence, the active assignment, the address and gratuitous ARPs done, the prober
// following the address to another MAC (the first gratuitous ARP reaching the host), and the
// first probe answered by the new active.
func pullTimeline(ctx context.Context, s *shelf.Shelf, off map[int]time.Duration, killed time.Time, pulled, active int, answers []farend.Answer, moves []farend.Move) string {
	rel := func(slot int, t time.Time) string {
		o, ok := off[slot]
		if !ok {
			return "?"
		}
		return fmt.Sprintf("%+d", t.Add(-o).Sub(killed).Milliseconds())
	}
	find := func(slot int, match func(string) bool) string {
		out, err := s.Exec(ctx, slot, "show log 25 json")
		var v struct {
			Entries []logEntry `json:"entries"`
		}
		if err != nil || json.Unmarshal([]byte(out), &v) != nil {
			return "?"
		}
		for _, e := range v.Entries {
			if o, ok := off[slot]; ok && e.Time.Add(-o).Before(killed.Add(-time.Second)) {
				continue // an earlier failover's
			}
			if match(e.Msg) {
				return rel(slot, e.Time)
			}
		}
		return "-"
	}
	var parts []string
	for _, hub := range []int{1, 2} {
		at := find(hub, func(m string) bool {
			sm := carrierSlots.FindStringSubmatch(m)
			return sm != nil && slices.Contains(strings.Fields(sm[1]), strconv.Itoa(pulled))
		})
		parts = append(parts, fmt.Sprintf("hub %d carrier %s", hub, at))
	}
	parts = append(parts, "fenced "+find(active, func(m string) bool {
		return strings.Contains(m, fmt.Sprintf(" membership %d ", pulled)) && strings.Contains(m, "-> fenced")
	}))
	parts = append(parts, "active "+find(active, func(m string) bool {
		return strings.Contains(m, fmt.Sprintf(" assignment mgmt-%d ", active)) && strings.Contains(m, "-> active")
	}))
	parts = append(parts, "address and ARPs done "+find(active, func(m string) bool { return strings.HasPrefix(m, "mgmt: active: management address") }))
	moved := "-"
	for _, m := range moves {
		if m.At.After(killed) {
			moved = fmt.Sprintf("%+d (to %v)", m.At.Sub(killed).Milliseconds(), m.To)
			break
		}
	}
	parts = append(parts, "prober moved "+moved)
	first := "-"
	want := fmt.Sprintf("active %d", active)
	var from []string // the MACs the new active answered from, in order
	for _, a := range answers {
		if !a.At.After(killed) || a.Text != want {
			continue
		}
		if first == "-" {
			first = fmt.Sprintf("%+d", a.At.Sub(killed).Milliseconds())
		}
		if mac := a.From.String(); len(from) == 0 || from[len(from)-1] != mac {
			from = append(from, mac)
		}
	}
	parts = append(parts, "first probe answer "+first)
	if len(from) > 0 {
		parts = append(parts, "answered from "+strings.Join(from, " then "))
	}
	return "timeline, ms after the pull (blade clocks set against the host's): " + strings.Join(parts, ", ")
}
