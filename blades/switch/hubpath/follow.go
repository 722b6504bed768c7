package hubpath

import (
	"fmt"
	"io"
	"sync/atomic"

	"github.com/cgoa/cgoa/blades/blade"
	"github.com/cgoa/cgoa/blades/shelf"
	"github.com/cgoa/cgoa/ha"
	"github.com/cgoa/cgoa/ha/ckpt"
)

// Follow runs a Path on node blade b for as long as the blade lives, following the switch
// group's active unit in h's view, as component "hubpath", and registers `show hubpath
// [json]` on the blade's console. It reads the group when h's placement changes
// (ha.Blade.Changed), and nudges the Path when the active hub moved: an idle shelf costs
// it no wake-up, and a hub failover reaches the routes at once rather than at the next
// poll. It returns the Path (for the channel in use and counters).
func Follow(b *blade.Blade, h *ha.Blade) *Path {
	var hub atomic.Int64
	ctx := b.Context()
	p := New(Config{ActiveHub: func() int { return int(hub.Load()) }, Logf: b.Log.Printf})
	go func() {
		for {
			changed := h.Changed()
			if g, self, _, ok := h.Group(shelf.GroupSwitch); ok {
				w, _ := ckpt.GroupRoles(g, self)
				if hub.Swap(int64(w)) != int64(w) {
					p.Nudge()
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-changed:
			}
		}
	}()
	b.Supervise(ctx, "hubpath", p.Run)
	b.Console.View([]string{"show", "hubpath"}, "", "the base channel node traffic takes (toward the active hub)", 0, 0,
		func([]string) (any, error) { return p.View(), nil }, WriteView)
	return p
}

// WriteView prints a View (a *View or View) as text.
func WriteView(w io.Writer, v any) {
	var pv View
	switch x := v.(type) {
	case View:
		pv = x
	case *View:
		pv = *x
	default:
		return
	}
	cur := pv.Current
	if cur == "" {
		cur = "(undecided)"
	}
	fmt.Fprintf(w, "traffic via %s (active hub %d; carrier %s %v, %s %v; shared %s)\n", cur, pv.ActiveHub,
		pv.Ports[0], pv.Carrier[0], pv.Ports[1], pv.Carrier[1], pv.Shared)
	fmt.Fprintf(w, "changes %d, gratuitous ARPs %d, errors %d\n", pv.Changes, pv.GARPs, pv.Errors)
}
