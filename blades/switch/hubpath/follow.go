package hubpath

import (
	"sync/atomic"
	"time"

	"github.com/cgoa/cgoa/blades/blade"
	"github.com/cgoa/cgoa/blades/shelf"
	"github.com/cgoa/cgoa/ha"
	"github.com/cgoa/cgoa/ha/ckpt"
)

// Follow runs a Path on node blade b for as long as the blade lives, following the switch
// group's active unit in h's view (read every 50 ms off the HA loop), as component
// "hubpath". It returns the Path (for counters).
func Follow(b *blade.Blade, h *ha.Blade) *Path {
	var hub atomic.Int64
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			w, _ := ckpt.Roles(h.Status().Status, shelf.GroupSwitch)
			hub.Store(int64(w))
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	p := New(Config{ActiveHub: func() int { return int(hub.Load()) }, Logf: b.Log.Printf})
	ctx := b.Context()
	go func() {
		<-ctx.Done()
		close(stop)
	}()
	b.Supervise(ctx, "hubpath", p.Run)
	return p
}
