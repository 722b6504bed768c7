package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
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
			<-n.ServeLink(l)
			n.Close()
		})
	}
	return err
}

func rssMiB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return math.NaN()
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var kb float64
		if _, err := fmt.Sscanf(sc.Text(), "VmRSS: %f kB", &kb); err == nil {
			return kb / 1024
		}
	}
	return math.NaN()
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

// stream writes total bytes in asynchronous writes of size bytes over
// sections sections, keeping at most ring/2 bytes not yet durable, and
// returns MB/s up to the last write being durable.
func stream(ctx context.Context, n *ckpt.Node, prefix string, size, sections int, total, ring int) (float64, error) {
	data := payload(1, size-8)
	names := make([]string, sections)
	for i := range names {
		names[i] = fmt.Sprintf("%s%04d", prefix, i)
	}
	window := max(ring/2/size, 1)
	seqs := make([]uint64, window)
	count := total / size
	start := time.Now()
	var seq uint64
	for i := range count {
		var err error
		seq, err = n.Write(ctx, ckptName, names[i%sections], data, false)
		if err != nil {
			return 0, err
		}
		if i >= window {
			if err := n.WaitDurable(ctx, seqs[i%window]); err != nil {
				return 0, err
			}
		}
		seqs[i%window] = seq
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
// result lines.
func benchWriter(blade *ha.Blade, key []byte, self, replica uint8, peer string, ring int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	runs := 3
	// Raw TCP over the same veth, in this run: the physical limit.
	var tcp []float64
	for range runs {
		v, err := rawThroughput(peer, time.Second)
		if err != nil {
			return fmt.Errorf("raw tcp: %w", err)
		}
		tcp = append(tcp, v)
	}
	rtt, err := rawRTT(peer, 5000)
	if err != nil {
		return fmt.Errorf("raw rtt: %w", err)
	}
	tcpMB, rttP50, rttP99 := median(tcp), pct(rtt, 50), pct(rtt, 99)
	report(benchResult{Metric: "tcp.throughput", Unit: "MB/s", Value: tcpMB, Samples: runs})
	report(benchResult{Metric: "tcp.rtt.1k.p50", Unit: "us", Value: rttP50, Samples: len(rtt)})
	report(benchResult{Metric: "tcp.rtt.1k.p99", Unit: "us", Value: rttP99, Samples: len(rtt)})
	tcpPeer := &benchRef{"raw TCP throughput, same veth, same run (median of 3 x 1 s)", tcpMB}

	// The direct TCP Link. RSS first: from before the node exists (its
	// ring untouched; the garbage of the raw TCP runs returned to the OS
	// first, so the baseline is low) to after 10x the ring written, as the
	// process stands (no GC or FreeOSMemory before reading it: the product
	// does not do that either).
	debug.FreeOSMemory()
	rss0 := rssMiB()
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
	for _, n := range []*ckpt.Node{ln} {
		n.Do(func(s *ckpt.Service, now time.Duration) {
			s.Promote(now)
			s.Open(now, ckptName, time.Hour)
			s.SetReplicas(now, []uint8{replica})
		})
	}
	if _, err := stream(ctx, ln, "k", 1024, 256, 10*ring, ring); err != nil {
		return fmt.Errorf("rss run: %w", err)
	}
	growth := rssMiB() - rss0
	report(benchResult{Metric: "rss.growth", Unit: "MiB", Value: growth, Samples: 1,
		Peer: &benchRef{fmt.Sprintf("ring size (writer, %d x ring written in 1 KiB sections over the TCP link)", 10), float64(ring) / (1 << 20)}})

	hn, err := ckpt.AttachBlade(blade, transport.TypeUser+1, ckpt.Options{Self: self, Ring: ring})
	if err != nil {
		return err
	}
	hn.Do(func(s *ckpt.Service, now time.Duration) {
		s.Promote(now)
		s.Open(now, ckptName, time.Hour)
		s.SetReplicas(now, []uint8{replica})
	})
	paths := []struct {
		suffix string
		n      *ckpt.Node
		scale  int // MB per async run
		syncs  int
	}{{"", ln, 64, 5000}, {".ha", hn, 16, 2000}}
	for _, p := range paths {
		for _, k := range []struct {
			name  string
			size  int
			secs  int
			total int
		}{{"async.1k", 1024, 256, p.scale << 20 / 2}, {"async.64k", 64 << 10, 16, p.scale << 20}} {
			var v []float64
			for range runs {
				mb, err := stream(ctx, p.n, k.name, k.size, k.secs, k.total, ring)
				if err != nil {
					return fmt.Errorf("%s%s: %w", k.name, p.suffix, err)
				}
				v = append(v, mb)
			}
			report(benchResult{Metric: k.name + p.suffix, Unit: "MB/s", Value: median(v), Samples: runs, Peer: tcpPeer})
		}
		lat, err := syncLatencies(ctx, p.n, p.syncs)
		if err != nil {
			return fmt.Errorf("sync%s: %w", p.suffix, err)
		}
		report(benchResult{Metric: "sync.1k.p50" + p.suffix, Unit: "us", Value: pct(lat, 50), Samples: len(lat),
			Peer: &benchRef{"raw TCP 1 KiB request + 8 B reply round trip p50", rttP50}})
		report(benchResult{Metric: "sync.1k.p99" + p.suffix, Unit: "us", Value: pct(lat, 99), Samples: len(lat),
			Peer: &benchRef{"raw TCP 1 KiB request + 8 B reply round trip p99", rttP99}})
	}
	st := ln.Status()
	say("link status: resyncs %d retransmits %d dropped %d", st.Counters.Resyncs, st.Counters.Retransmits, l.Dropped())
	st = hn.Status()
	say("ha status: resyncs %d retransmits %d", st.Counters.Resyncs, st.Counters.Retransmits)
	say("done")
	return nil
}

// runBench runs role's side of the bench against slot other.
func runBench(role string, blade *ha.Blade, key []byte, self, other uint8, peer string, ring int) error {
	switch role {
	case "replica":
		if err := benchReplica(blade, key, self, other, ring); err != nil {
			return err
		}
		say("ready")
		select {}
	case "writer":
		if peer == "" {
			return fmt.Errorf("bench writer: -peer needed")
		}
		say("ready")
		return benchWriter(blade, key, self, other, peer, ring)
	}
	return fmt.Errorf("bench: role %q, want writer or replica", role)
}
