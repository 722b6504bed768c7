package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/metrics"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cgoa/cgoa/ha"
	"github.com/cgoa/cgoa/ha/ckpt"
	"github.com/cgoa/cgoa/ha/transport"
)

// Bench ports on the replica (base0 address).
const (
	portSink = 7601 // raw TCP: reads everything, answers the byte count
	portEcho = 7602 // raw TCP: 1 KiB request, 8-byte reply
	portLink = 7603 // checkpoint Link
)

// benchResult is one line of the bench's output ("result {json}"), in
// the bench report's Result form.
type benchResult struct {
	Metric  string    `json:"metric"`
	Unit    string    `json:"unit"`
	Value   float64   `json:"value"`
	Samples int       `json:"samples"`
	Peer    *benchRef `json:"peer,omitempty"`
}

type benchRef struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
}

func report(r benchResult) {
	b, _ := json.Marshal(r)
	say("result %s", b)
}

// benchReplica serves the raw TCP peers and the replica side of both
// checkpoint paths until killed.
func benchReplica(blade *ha.Blade, key []byte, self, writer uint8, ring int) error {
	hn, err := ckpt.AttachBlade(blade, transport.TypeUser+1, ckpt.Options{Self: self, Ring: ring})
	if err != nil {
		return err
	}
	hn.Do(func(s *ckpt.Service, _ time.Duration) { s.Follow(writer) })
	listen := func(port int, serve func(net.Conn)) error {
		ln, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
		if err != nil {
			return err
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go serve(c)
			}
		}()
		return nil
	}
	err = listen(portSink, func(c net.Conn) {
		defer c.Close()
		n, _ := io.Copy(io.Discard, c)
		binary.Write(c, binary.BigEndian, uint64(n))
	})
	if err == nil {
		err = listen(portEcho, func(c net.Conn) {
			defer c.Close()
			buf := make([]byte, 1024)
			for {
				if _, err := io.ReadFull(c, buf); err != nil {
					return
				}
				if _, err := c.Write(buf[:8]); err != nil {
					return
				}
			}
		})
	}
	if err == nil {
		err = listen(portLink, func(c net.Conn) {
			l, err := ckpt.NewLink(c, key, self, writer, false)
			if err != nil {
				c.Close()
				return
			}
			n := ckpt.NewNode(ckpt.LinkOptions(self, ring))
			n.Do(func(s *ckpt.Service, _ time.Duration) { s.Follow(writer) })
			if d := os.Getenv("CGOA_BENCH_CKPT_PROFILE"); d != "" && os.Getenv("CGOA_BENCH_CKPT_ONLY") != "" {
				// The replica's side of the writer's trace (onlyStream).
				time.AfterFunc(5*time.Second, func() { traceFor(filepath.Join(d, "replica.trace"), 2*time.Second) })
			}
			<-n.ServeLink(l)
			n.Close()
			profileDone()
		})
	}
	return err
}

// gcPercent is the collector setting the process runs with (-gogc).
var gcPercent = 100

// placement says where the two processes run (-placement: the test's
// words, put in the throughput peer's description); throughputOnly
// (-throughput-only) makes the writer measure only the throughput
// streams and name their metrics with suffix (-metric-suffix).
var (
	placement      string
	throughputOnly bool
	suffix         string
)

// profileDone stops the CPU profile, if one runs.
var profileDone = func() {}

// rssMiB is the process's resident set (VmRSS: /proc/self/statm's
// second field, in pages), read without allocating.
func rssMiB() float64 {
	fd, err := syscall.Open("/proc/self/statm", syscall.O_RDONLY, 0)
	if err != nil {
		return math.NaN()
	}
	defer syscall.Close(fd)
	var b [128]byte
	n, err := syscall.Read(fd, b[:])
	if err != nil || n <= 0 {
		return math.NaN()
	}
	var pages float64
	field := 0
	for _, c := range b[:n] {
		switch {
		case c == ' ':
			field++
		case field == 1 && c >= '0' && c <= '9':
			pages = pages*10 + float64(c-'0')
		}
	}
	return pages * float64(os.Getpagesize()) / (1 << 20)
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func pct(v []float64, p float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	i := min(max(int(math.Ceil(p/100*float64(len(s))))-1, 0), len(s)-1)
	return s[i]
}

// rawThroughput sends for d over TCP and returns MB/s as the sink counted.
func rawThroughput(peer string, d time.Duration) (float64, error) {
	c, err := net.Dial("tcp", net.JoinHostPort(peer, strconv.Itoa(portSink)))
	if err != nil {
		return 0, err
	}
	defer c.Close()
	buf := make([]byte, 256<<10)
	start := time.Now()
	for time.Since(start) < d {
		if _, err := c.Write(buf); err != nil {
			return 0, err
		}
	}
	c.(*net.TCPConn).CloseWrite()
	var n uint64
	if err := binary.Read(c, binary.BigEndian, &n); err != nil {
		return 0, err
	}
	return float64(n) / 1e6 / time.Since(start).Seconds(), nil
}

// rawRTT returns n round trips (µs) of a 1 KiB request and 8-byte reply.
func rawRTT(peer string, n int) ([]float64, error) {
	c, err := net.Dial("tcp", net.JoinHostPort(peer, strconv.Itoa(portEcho)))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	req, rep := make([]byte, 1024), make([]byte, 8)
	var rtts []float64
	for range n {
		t := time.Now()
		if _, err := c.Write(req); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(c, rep); err != nil {
			return nil, err
		}
		rtts = append(rtts, float64(time.Since(t).Microseconds()))
	}
	return rtts, nil
}

// benchLoad is what a stream writes: section names, one section's data
// and the window of sequence numbers not yet durable. It is the writing
// application's own memory, made before a stream starts.
type benchLoad struct {
	names []string
	data  []byte
	seqs  []uint64
}

func newBenchLoad(prefix string, size, sections, ring int) *benchLoad {
	w := &benchLoad{data: payload(1, size-8), names: make([]string, sections), seqs: make([]uint64, max(ring/2/size, 1))}
	for i := range w.names {
		w.names[i] = fmt.Sprintf("%s%04d", prefix, i)
	}
	return w
}

// stream writes total bytes in asynchronous writes of w's sections in
// turn, keeping at most ring/2 bytes not yet durable, and returns MB/s up
// to the last write being durable.
func stream(ctx context.Context, n *ckpt.Node, w *benchLoad, total int) (float64, error) {
	size, window := len(w.data), len(w.seqs)
	count := total / size
	start := time.Now()
	var seq uint64
	// Diagnostics on the log (not results): how long the stream stood
	// still, sampled every 256 writes (a clock reading costs ~200 ns
	// here), and the acks the writer had to ask for.
	last := start
	var maxGap, stood time.Duration
	st0 := n.Status().Counters
	defer func() {
		say("stream %d x %d B: %v, longest stop %v, stops over 5 ms %v in all, polls %d", count, size,
			time.Since(start).Round(time.Millisecond), maxGap.Round(time.Millisecond), stood.Round(time.Millisecond),
			n.Status().Counters.Polls-st0.Polls)
	}()
	for i := range count {
		if i%256 == 0 {
			t := time.Now()
			g := t.Sub(last)
			maxGap = max(maxGap, g)
			if g > 5*time.Millisecond {
				stood += g
			}
			last = t
		}
		var err error
		seq, err = n.Write(ctx, ckptName, w.names[i%len(w.names)], w.data, false)
		if err != nil {
			return 0, err
		}
		if i >= window {
			if err := n.WaitDurable(ctx, w.seqs[i%window]); err != nil {
				return 0, err
			}
		}
		w.seqs[i%window] = seq
	}
	if err := n.WaitDurable(ctx, seq); err != nil {
		return 0, err
	}
	return float64(count*size) / 1e6 / time.Since(start).Seconds(), nil
}

func syncLatencies(ctx context.Context, n *ckpt.Node, count int) ([]float64, error) {
	data := payload(2, 1024-8)
	names := make([]string, 16)
	for i := range names {
		names[i] = fmt.Sprintf("sync%02d", i)
	}
	us := make([]float64, 0, count)
	for i := range count {
		t := time.Now()
		if _, err := n.Write(ctx, ckptName, names[i%len(names)], data, true); err != nil {
			return nil, err
		}
		us = append(us, float64(time.Since(t).Nanoseconds())/1e3)
	}
	return us, nil
}

// benchWriter measures everything from the writer's side and prints
// result lines. The peers are measured interleaved with what they are
// compared with (raw TCP, then the checkpoint runs, five times over; raw
// round trips and synchronous writes in alternating blocks), so a busy
// shared machine weighs on both alike.
func benchWriter(blade *ha.Blade, key []byte, self, replica uint8, peer string, ring int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const runs = 7
	// Warm up the path and the process (its heap reaches its steady size).
	if _, err := rawThroughput(peer, 500*time.Millisecond); err != nil {
		return fmt.Errorf("raw tcp: %w", err)
	}
	if _, err := rawRTT(peer, 500); err != nil {
		return fmt.Errorf("raw rtt: %w", err)
	}

	// The direct TCP Link. RSS first (not in a throughput-only pass):
	// from before the node exists to after 10x the ring written, as the
	// process stands (no GC or FreeOSMemory before either reading: the
	// product does neither). The application's own input (section names,
	// data) exists before.
	rw := newBenchLoad("k", 1024, 256, ring)
	var rss0 float64
	if !throughputOnly {
		memNote("before") // first: its own allocations are not the node's
		rss0 = rssMiB()
	}
	c, err := net.Dial("tcp", net.JoinHostPort(peer, strconv.Itoa(portLink)))
	if err != nil {
		return err
	}
	l, err := ckpt.NewLink(c, key, self, replica, true)
	if err != nil {
		return err
	}
	ln := ckpt.NewNode(ckpt.LinkOptions(self, ring))
	ln.ServeLink(l)
	ln.Do(func(s *ckpt.Service, now time.Duration) {
		s.Promote(now)
		s.Open(now, ckptName, time.Hour)
		s.SetReplicas(now, []uint8{replica})
	})
	if !throughputOnly {
		if _, err := stream(ctx, ln, rw, ring); err != nil {
			return fmt.Errorf("rss run: %w", err)
		}
		rss1 := rssMiB()
		if _, err := stream(ctx, ln, rw, 9*ring); err != nil {
			return fmt.Errorf("rss run: %w", err)
		}
		rss10 := rssMiB()
		growth := rss10 - rss0
		memNote("after")
		say("link: reclaimed %d dropped %d", l.Reclaimed(), l.Dropped())
		if d := os.Getenv("CGOA_BENCH_CKPT_PROFILE"); d != "" {
			// What the writer allocated up to here (go tool pprof -sample_index=alloc_space).
			if f, err := os.Create(filepath.Join(d, "writer.heap")); err == nil {
				pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}
		report(benchResult{Metric: "rss.growth.ring1to10", Unit: "MiB", Value: rss10 - rss1, Samples: 1,
			Peer: &benchRef{"0: memory does not grow with the number of writes (RSS after 10 x the ring written minus after 1 x)", 0}})
		report(benchResult{Metric: "rss.growth", Unit: "MiB", Value: growth, Samples: 1,
			Peer: &benchRef{fmt.Sprintf("ring size (writer, %d x ring written in 1 KiB sections over the TCP link, 256 sections; GOGC=%d)", 10, gcPercent), float64(ring) / (1 << 20)}})
	}

	kinds := func(mb int) []kind {
		return []kind{{"async.1k", 1024, 256, mb << 20 / 2}, {"async.64k", 64 << 10, 16, mb << 20}}
	}
	if only := os.Getenv("CGOA_BENCH_CKPT_ONLY"); only != "" {
		// Diagnostics (profiling one kind alone, perf): that kind's
		// stream, or raw TCP ("tcp"), for 20 s; no results.
		return onlyStream(ctx, ln, l, peer, ring, only, kinds(256))
	}
	// Throughput: raw TCP and the Link, interleaved, after one run of
	// each kind that is not counted (both sides allocate their sections).
	for _, k := range kinds(16) {
		if _, err := stream(ctx, ln, newBenchLoad(k.name, k.size, k.secs, ring), k.total); err != nil {
			return fmt.Errorf("%s: %w", k.name, err)
		}
	}
	// Each run streams 128 MiB (1 KiB sections) or 256 MiB (64 KiB):
	// a fraction of a second to a second, like the raw run beside it, so
	// a pause of the shared machine weighs on both alike.
	var tcp []float64
	link := map[string][]float64{}
	for range runs {
		v, err := rawThroughput(peer, time.Second)
		if err != nil {
			return fmt.Errorf("raw tcp: %w", err)
		}
		tcp = append(tcp, v)
		for _, k := range kinds(256) {
			mb, err := stream(ctx, ln, newBenchLoad(k.name, k.size, k.secs, ring), k.total)
			if err != nil {
				return fmt.Errorf("%s: %w", k.name, err)
			}
			link[k.name] = append(link[k.name], mb)
		}
	}
	tcpMB := median(tcp)
	report(benchResult{Metric: "tcp.throughput" + suffix, Unit: "MB/s", Value: tcpMB, Samples: len(tcp)})
	tcpPeer := &benchRef{fmt.Sprintf("raw TCP throughput, same veth, interleaved in the same run (median of %d x 1 s)%s", len(tcp), placement), tcpMB}
	for _, k := range kinds(256) {
		v := link[k.name]
		report(benchResult{Metric: k.name + suffix, Unit: "MB/s", Value: median(v), Samples: len(v), Peer: tcpPeer})
		say("%s runs %v raw %v", k.name+suffix, rounded(v), rounded(tcp))
		// On a busy machine the ratio of each run to the raw TCP run
		// just before it is steadier than the ratio of the medians.
		var ratios []float64
		for i := range v {
			ratios = append(ratios, v[i]/tcp[i])
		}
		report(benchResult{Metric: k.name + suffix + ".vs_tcp", Unit: "ratio", Value: median(ratios), Samples: len(ratios),
			Peer: &benchRef{"target: median of each run's throughput over the raw TCP run just before it" + placement, 0.6}})
	}
	if throughputOnly {
		say("done")
		return nil
	}

	// The HA transport's node, for the synchronous runs and the
	// comparison below (not needed before).
	hn, err := ckpt.AttachBlade(blade, transport.TypeUser+1, ckpt.Options{Self: self, Ring: ring})
	if err != nil {
		return err
	}
	hn.Do(func(s *ckpt.Service, now time.Duration) {
		s.Promote(now)
		s.Open(now, ckptName, time.Hour)
		s.SetReplicas(now, []uint8{replica})
	})
	// Synchronous latency: raw round trips and synchronous writes in
	// alternating blocks.
	var rtt, lat, p99s []float64
	for range runs {
		r, err := rawRTT(peer, 1000)
		if err != nil {
			return fmt.Errorf("raw rtt: %w", err)
		}
		rtt = append(rtt, r...)
		v, err := syncLatencies(ctx, ln, 1000)
		if err != nil {
			return fmt.Errorf("sync: %w", err)
		}
		lat = append(lat, v...)
		p99s = append(p99s, pct(v, 99)/pct(r, 99))
	}
	rttP50, rttP99 := pct(rtt, 50), pct(rtt, 99)
	report(benchResult{Metric: "tcp.rtt.1k.p50", Unit: "us", Value: rttP50, Samples: len(rtt)})
	report(benchResult{Metric: "tcp.rtt.1k.p99", Unit: "us", Value: rttP99, Samples: len(rtt)})
	report(benchResult{Metric: "sync.1k.p50", Unit: "us", Value: pct(lat, 50), Samples: len(lat),
		Peer: &benchRef{"raw TCP 1 KiB request + 8 B reply round trip p50 (interleaved blocks)", rttP50}})
	report(benchResult{Metric: "sync.1k.p99.vs_tcp", Unit: "ratio", Value: median(p99s), Samples: len(p99s),
		Peer: &benchRef{"target: median over blocks of 1000 of the p99 over the raw p99 of the block just before", 2}})
	report(benchResult{Metric: "sync.1k.p99", Unit: "us", Value: pct(lat, 99), Samples: len(lat),
		Peer: &benchRef{"raw TCP 1 KiB request + 8 B reply round trip p99 (interleaved blocks)", rttP99}})

	// The HA transport, for comparison (fewer, smaller runs: it is slow).
	for _, k := range kinds(16) {
		var v []float64
		for range 3 {
			mb, err := stream(ctx, hn, newBenchLoad(k.name, k.size, k.secs, ring), k.total)
			if err != nil {
				return fmt.Errorf("%s.ha: %w", k.name, err)
			}
			v = append(v, mb)
		}
		report(benchResult{Metric: k.name + ".ha", Unit: "MB/s", Value: median(v), Samples: len(v), Peer: tcpPeer})
	}
	hl, err := syncLatencies(ctx, hn, 2000)
	if err != nil {
		return fmt.Errorf("sync.ha: %w", err)
	}
	report(benchResult{Metric: "sync.1k.p50.ha", Unit: "us", Value: pct(hl, 50), Samples: len(hl),
		Peer: &benchRef{"raw TCP 1 KiB request + 8 B reply round trip p50", rttP50}})
	report(benchResult{Metric: "sync.1k.p99.ha", Unit: "us", Value: pct(hl, 99), Samples: len(hl),
		Peer: &benchRef{"raw TCP 1 KiB request + 8 B reply round trip p99", rttP99}})
	st := ln.Status()
	say("link status: resyncs %d retransmits %d dropped %d reclaimed %d", st.Counters.Resyncs, st.Counters.Retransmits, l.Dropped(), l.Reclaimed())
	st = hn.Status()
	say("ha status: resyncs %d retransmits %d", st.Counters.Resyncs, st.Counters.Retransmits)
	say("done")
	return nil
}

type kind struct {
	name  string
	size  int
	secs  int
	total int
}

// onlyStream runs one kind's stream (or raw TCP: "tcp") for 20 s and
// logs each run's rate: a steady load to profile (CGOA_BENCH_CKPT_ONLY).
func onlyStream(ctx context.Context, ln *ckpt.Node, l *ckpt.Link, peer string, ring int, only string, ks []kind) error {
	end := time.Now().Add(20 * time.Second)
	if d := os.Getenv("CGOA_BENCH_CKPT_PROFILE"); d != "" {
		// An execution trace of 2 s in the middle (go tool trace
		// -pprof=sync|sched|syscall): where goroutines wait on each other.
		time.AfterFunc(5*time.Second, func() { traceFor(filepath.Join(d, "writer.trace"), 2*time.Second) })
	}
	for time.Now().Before(end) {
		if only == "tcp" {
			v, err := rawThroughput(peer, time.Second)
			if err != nil {
				return err
			}
			say("only tcp %.1f MB/s", v)
			continue
		}
		found := false
		for _, k := range ks {
			if k.name != only {
				continue
			}
			found = true
			b0, n0 := l.Batches()
			c0 := cpuTime()
			s0 := schedLatencies()
			mb, err := stream(ctx, ln, newBenchLoad(k.name, k.size, k.secs, ring), k.total)
			if err != nil {
				return err
			}
			b1, n1 := l.Batches()
			say("only %s %.1f MB/s, writer CPU %.3f ms/MB, %d batches of %.0f KiB on average, %s", k.name, mb,
				(cpuTime()-c0).Seconds()*1e3/(float64(k.total)/1e6), b1-b0, float64(n1-n0)/float64(max(b1-b0, 1))/1024,
				schedSince(s0))
		}
		if !found {
			return fmt.Errorf("bench: no stream kind %q", only)
		}
	}
	return nil
}

// traceFor writes an execution trace of the next d to path.
func traceFor(path string, d time.Duration) {
	f, err := os.Create(path)
	if err != nil {
		say("trace: %v", err)
		return
	}
	defer f.Close()
	if err := trace.Start(f); err != nil {
		say("trace: %v", err)
		return
	}
	time.Sleep(d)
	trace.Stop()
}

// cpuTime is the process's CPU time (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// memNote says where the process's memory is (diagnostics beside the
// RSS figure; reading the statistics does not collect garbage): the
// runtime's memory classes, and the kernel's resident anonymous and
// file-backed (program text) pages.
func memNote(when string) {
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/memory/classes/heap/stacks:bytes"},
		{Name: "/memory/classes/os-stacks:bytes"},
		{Name: "/memory/classes/metadata/other:bytes"},
		{Name: "/memory/classes/metadata/mspan/inuse:bytes"},
		{Name: "/memory/classes/metadata/mcache/inuse:bytes"},
		{Name: "/memory/classes/other:bytes"},
		{Name: "/memory/classes/profiling/buckets:bytes"},
		{Name: "/gc/cycles/total:gc-cycles"},
		{Name: "/gc/heap/allocs:bytes"},
	}
	metrics.Read(samples)
	var b strings.Builder
	fmt.Fprintf(&b, "memory %s: rss %.2f MiB (%s)", when, rssMiB(), smapsRollup())
	for _, s := range samples {
		name := strings.TrimPrefix(strings.TrimPrefix(s.Name, "/memory/classes/"), "/gc/")
		if s.Value.Kind() == metrics.KindUint64 {
			v := float64(s.Value.Uint64())
			if strings.HasSuffix(name, ":bytes") {
				fmt.Fprintf(&b, ", %s %.3f MiB", strings.TrimSuffix(name, ":bytes"), v/(1<<20))
			} else {
				fmt.Fprintf(&b, ", %s %.0f", name, v)
			}
		}
	}
	say("%s", b.String())
}

// smapsRollup is the resident memory by kind (the non-zero lines of
// smaps_rollup: anonymous, file-backed clean and dirty).
func smapsRollup() string {
	b, err := os.ReadFile("/proc/self/smaps_rollup")
	if err != nil {
		return "no smaps_rollup"
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && strings.HasSuffix(f[0], ":") && f[1] != "0" {
			out = append(out, l)
		}
	}
	for i, l := range out {
		out[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(out, ", ")
}

func rounded(v []float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = math.Round(x*10) / 10
	}
	return out
}

// runBench runs role's side of the bench against slot other.
func runBench(role string, blade *ha.Blade, key []byte, self, other uint8, peer string, ring int, prof string) error {
	if prof != "" {
		f, err := os.Create(prof)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		profileDone = func() {
			pprof.StopCPUProfile()
			f.Close()
		}
		defer profileDone()
	}
	switch role {
	case "replica":
		if err := benchReplica(blade, key, self, other, ring); err != nil {
			return err
		}
		say("ready")
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		return nil
	case "writer":
		if peer == "" {
			return fmt.Errorf("bench writer: -peer needed")
		}
		say("ready")
		return benchWriter(blade, key, self, other, peer, ring)
	}
	return fmt.Errorf("bench: role %q, want writer or replica", role)
}

// schedLatencies reads the runtime's histogram of the time goroutines
// waited runnable for a processor (/sched/latencies:seconds).
func schedLatencies() *metrics.Float64Histogram {
	m := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	metrics.Read(m)
	if m[0].Value.Kind() != metrics.KindFloat64Histogram {
		return nil
	}
	return m[0].Value.Float64Histogram()
}

// schedSince says how long goroutines of the writer waited runnable
// (woken, no processor free) since h0: the waits the runtime sampled
// (a fraction of all wake-ups), their percentiles and the sum of their
// buckets' lower bounds. On a shared 2-core machine a stream's
// hand-offs wait here rather than on each other: an execution trace
// showed the Link's sealer runnable, not running, half the time (woken
// by the writer goroutine just before its writev(2), on the processor
// that system call then holds).
func schedSince(h0 *metrics.Float64Histogram) string {
	h1 := schedLatencies()
	if h0 == nil || h1 == nil || len(h0.Counts) != len(h1.Counts) {
		return "sched latencies unknown"
	}
	counts := make([]uint64, len(h1.Counts))
	var n uint64
	var sum float64
	for i := range counts {
		counts[i] = h1.Counts[i] - h0.Counts[i]
		n += counts[i]
		// The bucket's lower bound (the first and last are open).
		lo := h1.Buckets[i]
		if math.IsInf(lo, -1) {
			lo = 0
		}
		sum += float64(counts[i]) * lo
	}
	at := func(p float64) float64 {
		want := uint64(math.Ceil(p * float64(n)))
		var c uint64
		for i, k := range counts {
			c += k
			if c >= want && k > 0 {
				return h1.Buckets[i+1] // the bucket's upper bound
			}
		}
		return math.NaN()
	}
	if n == 0 {
		return "no goroutine waited runnable"
	}
	return fmt.Sprintf("%d sampled waits runnable: p50 < %.0f us, p90 < %.0f us, p99 < %.0f us, sum >= %.1f ms",
		n, at(0.5)*1e6, at(0.9)*1e6, at(0.99)*1e6, sum*1e3)
}
