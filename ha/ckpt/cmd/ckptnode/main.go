// Command ckptnode runs one blade's HA core and checkpoint service as a
// plain process (process mode), for the checkpoint kill test and bench in
// network namespaces (package ha/procmode makes the backplane).
//
//	ckptnode -config shelf.yaml -slot 3 -key 00112233... \
//	    -base0 base0=169.254.70.0/24 -base1 base1=169.254.71.0/24 -group mgmt
//
// The blade of group's active unit is the checkpoint writer; the blades
// of its standby units replicate (ckpt.Node.Track, Assign). While it is
// the writer, ckptnode writes a workload of synchronous and asynchronous
// writes and deletes of sections of checkpoint "c" and says what it did
// on stdout, one line per event (each line one write: a kill -9 never
// loses a line already written):
//
//	ready                                    started
//	promote ready <bool> seq <n> live <bool> became writer (live: the AMF
//	                                         showed another live writer); the sections
//	sec <name> <id> <len> <crc32>            it holds at that instant,
//	end                                      ...
//	base <seq>                               workload writes follow seq
//	w <id> <section> <del> <sync> <size>     about to write (or delete)
//	ack <seq> <id>                           a synchronous write is durable
//	err <id> <error>                         a write failed; workload stops
//
// Section data is write id (8 bytes, big endian) then size bytes derived
// from it, so a reader can tell a torn or mixed section. Commands on
// stdin: "pause" (stop writing; prints "paused <seq>"), "resume", "mode
// async" (asynchronous writes only) and "mode mixed", "dump"
// (prints "dump <role> gen <g> seq <n> ready <bool> resyncs <n>", the
// sec lines and "end"), "status" (show ckpt). With -bench writer|replica
// it runs one side of the checkpoint bench instead (bench.go; -cpuprofile
// writes that side's CPU profile). -gogc sets the collector's target
// percentage (default 100, the runtime's and the firmware's).
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cgoa/cgoa/ha"
	"github.com/cgoa/cgoa/ha/amf"
	"github.com/cgoa/cgoa/ha/ckpt"
	"github.com/cgoa/cgoa/ha/transport"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ckptnode:", err)
		os.Exit(1)
	}
}

// out serialises stdout lines; every line is one write(2), unbuffered.
var outMu sync.Mutex

func say(format string, a ...any) {
	outMu.Lock()
	fmt.Fprintf(os.Stdout, format+"\n", a...)
	outMu.Unlock()
}

// payload is the data of write id: its id then size bytes derived from it.
func payload(id uint64, size int) []byte {
	b := make([]byte, 8+size)
	binary.BigEndian.PutUint64(b, id)
	for i := 8; i < len(b); i++ {
		b[i] = byte(id*31 + uint64(i)*7)
	}
	return b
}

const ckptName = "c"

// dumpLines is the sections of ckptName, one "sec" line each.
func dumpLines(s *ckpt.Service) string {
	var b strings.Builder
	s.Sections(ckptName, func(name string, data []byte) bool {
		var id uint64
		if len(data) >= 8 {
			id = binary.BigEndian.Uint64(data)
		}
		fmt.Fprintf(&b, "sec %s %d %d %08x\n", name, id, len(data), crc32.ChecksumIEEE(data))
		return true
	})
	return b.String() + "end"
}

// basePath parses "iface=network/prefix" into a broadcast UDP path (like
// hanode: no ARP on the HA path).
func basePath(spec string, port uint16) (transport.UDPPath, error) {
	iface, cidr, ok := strings.Cut(spec, "=")
	if !ok {
		return transport.UDPPath{}, fmt.Errorf("base path %q: want iface=network/prefix", spec)
	}
	pfx, err := netip.ParsePrefix(cidr)
	if err != nil || !pfx.Addr().Is4() {
		return transport.UDPPath{}, fmt.Errorf("base path %q: want an IPv4 network", spec)
	}
	a := pfx.Masked().Addr().As4()
	host := ^uint32(0) >> pfx.Bits()
	for i := range a {
		a[i] |= byte(host >> (24 - 8*i))
	}
	return transport.UDPPath{Interface: iface, Local: netip.AddrPortFrom(netip.IPv4Unspecified(), port),
		Broadcast: netip.AddrPortFrom(netip.AddrFrom4(a), port)}, nil
}

type workload struct {
	node   *ckpt.Node
	rng    *rand.Rand
	every  time.Duration
	mu     sync.Mutex
	cond   *sync.Cond
	paused bool
	busy   bool // a write is under way
	async  bool // asynchronous writes only (a stalled replica then falls behind the ring)
	active bool
	gen    int // bumped on every promotion and demotion
	nextID uint64
}

func (w *workload) setActive(active bool) {
	w.mu.Lock()
	w.active = active
	w.gen++
	w.nextID = uint64(time.Now().UnixNano())
	w.cond.Broadcast()
	w.mu.Unlock()
}

// run writes while this blade is the writer and not paused.
func (w *workload) run() {
	present := map[string]bool{}
	for {
		w.mu.Lock()
		for !w.active || w.paused {
			w.cond.Wait()
		}
		w.nextID++
		id := w.nextID
		w.busy = true
		asyncOnly := w.async
		w.mu.Unlock()
		sec := fmt.Sprintf("s%02d", w.rng.IntN(24))
		sync := w.rng.IntN(3) == 0 && !asyncOnly
		del := present[sec] && w.rng.IntN(8) == 0
		size := w.rng.IntN(3 * ckpt.MaxFrame)
		say("w %d %s %v %v %d", id, sec, del, sync, size)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var seq uint64
		var err error
		if del {
			seq, err = w.node.Delete(ctx, ckptName, sec, sync)
			delete(present, sec)
		} else {
			seq, err = w.node.Write(ctx, ckptName, sec, payload(id, size), sync)
			present[sec] = true
		}
		cancel()
		if err != nil {
			say("err %d %v", id, err)
		} else if sync {
			say("ack %d %d", seq, id)
		}
		w.mu.Lock()
		w.busy = false
		if err != nil {
			w.active = false
		}
		w.cond.Broadcast()
		w.mu.Unlock()
		if w.every > 0 {
			time.Sleep(w.every)
		}
	}
}

func run() error {
	var (
		cfgPath = flag.String("config", "", "shelf HA configuration (YAML or JSON, amf.Config)")
		slot    = flag.Uint("slot", 0, "this blade's slot")
		keyHex  = flag.String("key", "", "shelf key, hex (at least 16 bytes)")
		base0   = flag.String("base0", "", "base path 0: iface=network/prefix")
		base1   = flag.String("base1", "", "base path 1: iface=network/prefix (optional)")
		port    = flag.Uint("port", 7400, "HA UDP port")
		group   = flag.String("group", "mgmt", "service group whose active unit's blade writes")
		ring    = flag.Int("ring", 128<<10, "checkpoint ring budget, bytes")
		every   = flag.Duration("every", 200*time.Microsecond, "pause between workload writes")
		seed    = flag.Uint64("seed", 0, "workload seed (0: from the clock)")
		bench   = flag.String("bench", "", "run the checkpoint bench in this role instead (writer|replica)")
		prof    = flag.String("cpuprofile", "", "bench: write a CPU profile here (writer: the whole run; replica: until its link ends)")
		gogc    = flag.Int("gogc", 100, "garbage collector target percentage (GOGC)")
		peer    = flag.String("peer", "", "bench: the other side's base0 address")
		other   = flag.Uint("peer-slot", 0, "bench: the other side's slot")
		place   = flag.String("placement", "", "bench writer: where the processes run, for the throughput peer's description")
		tonly   = flag.Bool("throughput-only", false, "bench writer: measure the throughput streams only")
		suf     = flag.String("metric-suffix", "", "bench writer: suffix of the throughput metrics' names")
	)
	flag.Parse()
	// The bench runs with the runtime's default, as the firmware does:
	// the checkpoint ring is outside the heap and the write path makes no
	// garbage, so collections are rare; a tighter percentage collects
	// more often, and every collection grows the runtime's own metadata
	// (measured: about 0.5 MiB of RSS more with -gogc 25).
	debug.SetGCPercent(*gogc)
	gcPercent = *gogc
	placement, throughputOnly, suffix = *place, *tonly, *suf
	b, err := os.ReadFile(*cfgPath)
	if err != nil {
		return err
	}
	cfg, err := amf.ParseConfig(b)
	if err != nil {
		return fmt.Errorf("config %s: %w", *cfgPath, err)
	}
	key, err := hex.DecodeString(*keyHex)
	if err != nil {
		return fmt.Errorf("key: %w", err)
	}
	if *slot == 0 || *slot > 254 || *port == 0 || *port > 65535 {
		return fmt.Errorf("slot %d port %d out of range", *slot, *port)
	}
	var paths []transport.UDPPath
	for _, spec := range []string{*base0, *base1} {
		if spec != "" {
			p, err := basePath(spec, uint16(*port))
			if err != nil {
				return err
			}
			paths = append(paths, p)
		}
	}
	blade, err := ha.Start(ha.Options{Config: cfg, Slot: uint8(*slot), Key: key, Paths: paths})
	if err != nil {
		return err
	}
	if *bench != "" {
		return runBench(*bench, blade, key, uint8(*slot), uint8(*other), *peer, *ring, *prof)
	}
	node, err := ckpt.AttachBlade(blade, transport.TypeUser+1, ckpt.Options{Self: uint8(*slot), Ring: *ring})
	if err != nil {
		return err
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	wl := &workload{node: node, rng: rand.New(rand.NewPCG(*seed, uint64(*slot))), every: *every}
	wl.cond = sync.NewCond(&wl.mu)
	for _, g := range cfg.Groups {
		for _, u := range g.Units {
			if g.Name != *group || u.Node != uint8(*slot) {
				continue
			}
			// Ready: the unit takes over only with a replica in sync (or
			// with no live writer left to sync from).
			err := blade.Register(amf.Component{Name: u.Name + "-ckpt", Unit: u.Name, Ready: node.Ready, Assign: func(a amf.Assignment) {
				// On the HA loop: promote, say what we hold, open the
				// checkpoint, let the workload go.
				var line string
				live := node.LiveWriter()
				node.Do(func(s *ckpt.Service, now time.Duration) {
					if a.State != amf.Active || s.Active() {
						if a.State != amf.Active {
							s.Demote()
						}
						return
					}
					line = fmt.Sprintf("promote ready %v seq %d live %v\n%s", s.Ready(), s.Seq(), live, dumpLines(s))
					s.Promote(now)
					if err := s.Open(now, ckptName, time.Hour); err != nil {
						line += "\nerr 0 " + err.Error()
					}
					line += fmt.Sprintf("\nbase %d", s.Seq())
				})
				if line != "" {
					say("%s", line)
				}
				wl.setActive(a.State == amf.Active)
			}})
			if err != nil {
				return err
			}
		}
	}
	stop := node.Track(blade, *group, 5*time.Millisecond)
	go wl.run()
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			switch sc.Text() {
			case "pause":
				wl.mu.Lock()
				wl.paused = true
				for wl.busy {
					wl.cond.Wait()
				}
				wl.mu.Unlock()
				var seq uint64
				node.Do(func(s *ckpt.Service, _ time.Duration) { seq = s.Seq() })
				say("paused %d", seq)
			case "mode async", "mode mixed":
				wl.mu.Lock()
				wl.async = sc.Text() == "mode async"
				wl.mu.Unlock()
				say("mode %v", sc.Text()[5:])
			case "resume":
				wl.mu.Lock()
				wl.paused = false
				wl.cond.Broadcast()
				wl.mu.Unlock()
			case "dump":
				var line string
				node.Do(func(s *ckpt.Service, _ time.Duration) {
					st := s.Status()
					line = fmt.Sprintf("dump %s gen %d seq %d ready %v resyncs %d\n%s", st.Role, st.Gen, st.Seq, st.Ready,
						st.Counters.Resyncs, dumpLines(s))
				})
				say("%s", line)
			case "status":
				var b strings.Builder
				ckpt.WriteStatus(&b, node.Status())
				say("%s", strings.TrimRight(b.String(), "\n"))
			}
		}
	}()
	say("ready")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	stop()
	node.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return blade.Close(ctx)
}
