// Package blade is the runtime every blade role runs on: it holds the HAL, the console and the
// log, supervises the role's components (a panic is recovered, logged and the component
// restarted, never the blade's end), and runs the main loop that pets the hardware watchdog
// only while the loop is healthy.
//
// The firmware's main package builds a [Blade] from the HAL backend it opened and the role
// compiled in, then calls [Blade.Run], which does not return while the blade lives:
//
//	b := blade.New(blade.Config{Role: mgmt.Role(), HW: hw, Build: info, Log: log})
//	b.Run(ctx)
package blade

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cgoa/cgoa/blades/console"
	"github.com/cgoa/cgoa/ha"
	"github.com/cgoa/cgoa/hal"
)

// Role is what a blade package gives the runtime.
type Role struct {
	Name string
	// Start wires the role's components into the blade (console commands, supervised
	// goroutines). It is called once, after the HAL is up.
	Start func(b *Blade) error
	// Helpers are programs the image links to the firmware binary under another name (the
	// switch role's /sbin/bridge-stp): main runs Helpers[basename(argv[0])] instead of the
	// blade, with the remaining arguments, and exits with its status.
	Helpers map[string]func(args []string, stderr io.Writer) int
	// HA runs after the HA core is up: the role registers its components (the units the
	// shelf map gives this blade) and what they do when assigned.
	HA func(b *Blade, h *ha.Blade) error
}

// BuildInfo identifies the firmware build.
type BuildInfo struct {
	Version  string `json:"version"`
	Revision string `json:"revision"`
	Built    string `json:"built"`
}

// Config is how the firmware's main package sets a blade up.
type Config struct {
	Role  Role
	HW    *hal.Hardware
	Build BuildInfo
	Log   *Log
	// WatchdogTimeout is the hardware watchdog's timeout; the main loop pets it every
	// WatchdogTimeout/5 (at least every second).
	WatchdogTimeout time.Duration
	// Reboot restarts (poweroff false) or powers off the blade. Blade mode passes the real
	// syscalls; process mode re-executes or exits.
	Reboot func(poweroff bool) error
	// Now is the clock (tests inject one).
	Now func() time.Time
	// HA, when set, brings the HA core up after the role has started.
	HA *HAConfig
}

// Blade is a running blade.
type Blade struct {
	cfg     Config
	Console *console.Console
	Log     *Log
	HW      *hal.Hardware
	// HA is the blade's HA core once StartHA has run (nil before, and when HA is off).
	HA      *ha.Blade
	started time.Time

	mu         sync.Mutex
	ctx        context.Context
	components map[string]*component

	ready     chan struct{} // closed once Run has started the role and HA
	readyOnce sync.Once
	loopTicks atomic.Uint64
	lastTick  atomic.Int64 // UnixNano of the last main-loop tick
	hang      chan struct{}
	hangOnce  sync.Once
	panics    atomic.Uint64
}

type component struct {
	Name     string `json:"name"`
	State    string `json:"state"`
	Restarts int    `json:"restarts"`
	LastErr  string `json:"last_error,omitempty"`
}

// New builds a blade and registers the base console commands.
func New(cfg Config) *Blade {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = NewLog(512, nil)
	}
	if cfg.WatchdogTimeout <= 0 {
		cfg.WatchdogTimeout = 10 * time.Second
	}
	b := &Blade{cfg: cfg, Console: console.New(), Log: cfg.Log, HW: cfg.HW, started: cfg.Now(),
		components: map[string]*component{}, hang: make(chan struct{}), ready: make(chan struct{})}
	b.Console.OnPanic = func(line string, v any, stack []byte) {
		b.panics.Add(1)
		b.Log.Errorf("console: panic in %q recovered: %v\n%s", line, v, firstLines(stack, 12))
	}
	b.registerCommands()
	return b
}

// Identity is the blade's identity.
func (b *Blade) Identity() hal.Identity { return b.HW.Identity }

// Prompt is the console prompt, "<hostname>> ".
func (b *Blade) Prompt() string { return b.HW.Identity.Hostname() + "> " }

// Banner is the line printed before the first prompt.
func (b *Blade) Banner() string {
	id := b.HW.Identity
	return fmt.Sprintf("CGOA %s role=%s shelf=%d slot=%d ready", b.cfg.Build.Version, id.Role, id.Shelf, id.Slot)
}

// Supervise runs fn as a named component: a panic or an error return is logged and the
// component restarted after a back-off (doubling from 100 ms up to 10 s); a nil return ends it.
func (b *Blade) Supervise(ctx context.Context, name string, fn func(ctx context.Context) error) {
	b.mu.Lock()
	c := &component{Name: name, State: "running"}
	b.components[name] = c
	b.mu.Unlock()
	go func() {
		backoff := 100 * time.Millisecond
		for {
			err := b.runOnce(ctx, name, fn)
			b.mu.Lock()
			if err == nil || ctx.Err() != nil {
				c.State = "stopped"
				b.mu.Unlock()
				return
			}
			c.Restarts++
			c.LastErr = err.Error()
			c.State = "restarting"
			b.mu.Unlock()
			b.Log.Errorf("component %s failed: %v; restart in %v", name, err, backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 10*time.Second)
			b.mu.Lock()
			c.State = "running"
			b.mu.Unlock()
		}
	}()
}

func (b *Blade) runOnce(ctx context.Context, name string, fn func(context.Context) error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			b.panics.Add(1)
			err = fmt.Errorf("panic: %v", v)
			b.Log.Errorf("component %s: panic recovered: %v\n%s", name, v, firstLines(debug.Stack(), 12))
		}
	}()
	return fn(ctx)
}

// Run starts the role and runs the main loop until ctx ends (in blade mode, never). The loop
// pets the watchdog; when it stops (debug hang, or a real hang) the hardware resets the blade.
func (b *Blade) Run(ctx context.Context) {
	b.mu.Lock()
	b.ctx = ctx
	b.mu.Unlock()
	hw := b.HW
	if wd := hw.Watchdog; wd.Present() {
		if err := wd.Arm(b.cfg.WatchdogTimeout); err != nil {
			b.Log.Errorf("watchdog: %v", err)
		} else {
			b.Log.Printf("watchdog armed: %v", b.cfg.WatchdogTimeout)
		}
	} else {
		b.Log.Printf("watchdog: %s", hw.Watchdog.Status(b.cfg.Now()).Reason)
	}
	if hw.BMC.Present() {
		if err := hw.BMC.LogEvent(hal.EventBoot, b.cfg.Build.Version); err != nil {
			b.Log.Errorf("ipmi: %v", err)
		}
	}
	if err := hw.HotSwap.Activate(b.cfg.Now()); err != nil {
		b.Log.Errorf("hot-swap: %v", err)
	}
	hw.HotSwap.OnRequest(func(s hal.HotSwapState) {
		b.Log.Printf("hot-swap: %s requested (%s)", s, s.Description())
		if s == hal.M5 && hw.BMC.Present() {
			_ = hw.BMC.LogEvent(hal.EventHandleOpen, "")
		}
	})
	if b.cfg.Role.Start != nil {
		if err := b.safeStart(); err != nil {
			b.Log.Errorf("role %s: start: %v", b.cfg.Role.Name, err)
		}
	}
	if b.cfg.HA != nil {
		if err := b.StartHA(ctx, *b.cfg.HA); err != nil {
			b.Log.Errorf("ha: not started: %v", err)
		}
	}
	b.readyOnce.Do(func() { close(b.ready) })
	b.Log.Printf("blade %s up: %s", hw.Identity.Hostname(), b.Banner())
	period := min(b.cfg.WatchdogTimeout/5, time.Second)
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.hang:
			b.Log.Errorf("main loop: hung on request (debug hang); watchdog not petted")
			<-ctx.Done()
			return
		case <-t.C:
			b.loopTicks.Add(1)
			b.lastTick.Store(b.cfg.Now().UnixNano())
			if hw.Watchdog.Present() {
				if err := hw.Watchdog.Pet(b.cfg.Now()); err != nil {
					b.Log.Errorf("%v", err)
				}
			}
		}
	}
}

func (b *Blade) safeStart() (err error) {
	defer func() {
		if v := recover(); v != nil {
			b.panics.Add(1)
			err = fmt.Errorf("panic: %v", v)
			b.Log.Errorf("role start: panic recovered: %v\n%s", v, firstLines(debug.Stack(), 12))
		}
	}()
	return b.cfg.Role.Start(b)
}

// Healthy reports whether the main loop is running: it ticked within the last three periods
// and was not hung. A trial image is confirmed only while this holds.
func (b *Blade) Healthy() bool {
	last := b.lastTick.Load()
	period := min(b.cfg.WatchdogTimeout/5, time.Second)
	select {
	case <-b.hang:
		return false
	default:
	}
	return last != 0 && b.cfg.Now().Sub(time.Unix(0, last)) < 3*period
}

// Ready is closed once the role and the HA core have started and registered their console
// commands: the console prints its banner and prompt only then, so "ready" means every
// command is there.
func (b *Blade) Ready() <-chan struct{} { return b.ready }

// Hang stops the main loop, as a firmware bug would: the watchdog is no longer petted.
func (b *Blade) Hang() { b.hangOnce.Do(func() { close(b.hang) }) }

func firstLines(b []byte, n int) string {
	lines := strings.SplitN(string(b), "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

// memory reads the firmware's resident set from /proc.
type memory struct {
	RSSKiB     int    `json:"rss_kib"`
	HWMKiB     int    `json:"rss_peak_kib"`
	HeapKiB    uint64 `json:"heap_kib"`
	SysKiB     uint64 `json:"go_sys_kib"`
	Goroutines int    `json:"goroutines"`
	NumGC      uint32 `json:"gc_cycles"`
}

func procStatusKiB(status, key string) int {
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.Atoi(f[0])
				return n
			}
		}
	}
	return 0
}

func readStatus() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return ""
	}
	return string(b)
}

// Context is the blade's lifetime context, for components a role starts.
func (b *Blade) Context() context.Context {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ctx == nil {
		return context.Background()
	}
	return b.ctx
}
