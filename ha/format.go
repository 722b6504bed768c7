package ha

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cgoa/cgoa/ha/transport"
)

// WriteStatus prints s for the console's `show ha` (use encoding/json on
// Status for `show ha json`).
func WriteStatus(w io.Writer, s Status) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	q := "no (minority: no active assignments here)"
	if s.InQuorum {
		q = "yes"
	}
	fmt.Fprintf(tw, "slot %d  incarnation %d  in quorum: %s  lease %v\n", s.Self, s.Incarnation, q, s.Lease)
	fmt.Fprintf(tw, "\nMEMBER\tINCARNATION\tUP\tCONNECTED\tLAST HEARD\n")
	for _, m := range s.View.Members {
		heard := "-"
		if m.Slot == s.Self {
			heard = "self"
		} else if m.Inc != 0 {
			heard = m.SinceHeard.Round(time.Millisecond).String() + " ago"
		}
		fmt.Fprintf(tw, "%d\t%d\t%v\t%v\t%s\n", m.Slot, m.Inc, m.Up, m.Connected, heard)
	}
	fmt.Fprintf(tw, "\nGROUP\tMODEL\tUNIT\tSLOT\tHA STATE\tOPER\tINSTANCES\n")
	for _, g := range s.Groups {
		for _, u := range g.Units {
			st, oper := u.State.String(), string(u.Oper)
			if !u.Known {
				st, oper = "?", "unknown"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", g.Name, g.Model, u.Name, u.Node, st, oper, strings.Join(u.Instances, ","))
		}
	}
	if f := s.LastFailover; f != nil {
		fmt.Fprintf(tw, "\nlast failover: group %s %s -> %s (%s) in %v\n", f.Group, f.From, f.To, f.Reason, f.Duration.Round(100*time.Microsecond))
	} else {
		fmt.Fprintf(tw, "\nlast failover: none\n")
	}
	if l := s.Links; l != nil {
		iso := ""
		if l.Isolated {
			iso = "  ISOLATED: no carrier on any channel, no lease held"
		}
		fmt.Fprintf(tw, "carrier: no carrier to slots %v  fenced %v%s\n", l.Down, l.Fenced, iso)
	}
	if s.LateWakeups > 0 {
		fmt.Fprintf(tw, "HA loop woke late (>= 50ms, not scheduled) %d times, worst %v\n", s.LateWakeups, s.WorstLate.Round(time.Millisecond))
	}
	c := s.Transport
	fmt.Fprintf(tw, "frames: sent %d received %d (base0 %d base1 %d) duplicates %d send errors %d/%d\n",
		c.Sent, c.Received, c.PathRx[0], c.PathRx[1], c.Duplicates, c.PathTxErr[0], c.PathTxErr[1])
	fmt.Fprintf(tw, "sent by type: beat %d lease %d heartbeat %d raft %d event %d leave %d admin %d links %d user %d\n",
		c.SentByType[transport.TypeBeat], c.SentByType[transport.TypeLease], c.SentByType[transport.TypeHeartbeat],
		c.SentByType[transport.TypeRaft], c.SentByType[transport.TypeEvent], c.SentByType[transport.TypeLeave],
		c.SentByType[transport.TypeAdmin], c.SentByType[transport.TypeLinks], c.SentByType[0])
	fmt.Fprintf(tw, "dropped: forged %d replayed %d stale %d short %d garbled %d other shelf %d bad payload %d\n",
		c.Forged, c.Replayed, c.Stale, c.Short, c.Garbled, c.Misrouted, s.BadPayloads)
	if s.LastBadPayload != "" {
		fmt.Fprintf(tw, "last bad payload: %s\n", s.LastBadPayload)
	}
	return tw.Flush()
}
