// Command snmpbench measures the agent's request rate against net-snmp's
// snmpd with one load generator, side by side in the same run, and writes
// build/bench/snmp.json. Both agents run as separate processes on
// 127.0.0.1 with equivalent configurations (community public, USM user
// SHA-256/AES); the load generator keeps a fixed window of requests in
// flight on one socket and counts responses.
//
//	go run ./snmpagent/cmd/snmpbench -out build/bench/snmp.json
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/cgoa/cgoa/snmpagent"
	"github.com/gosnmp/gosnmp"
	"golang.org/x/net/ipv4"
)

const (
	community = "public"
	user      = "bench"
	authPass  = "benchauth123"
	privPass  = "benchpriv123"
	sysDescr  = ".1.3.6.1.2.1.1.1.0"
	system    = ".1.3.6.1.2.1.1"
)

func main() {
	serve := flag.Bool("serve-agent", false, "internal: run our agent and print its address")
	out := flag.String("out", "build/bench/snmp.json", "result file")
	runs := flag.Int("runs", 7, "runs per metric and agent (median reported)")
	dur := flag.Duration("duration", 1500*time.Millisecond, "measured time per run")
	window := flag.Int("window", 16, "requests in flight")
	workers := flag.Int("workers", 0, "our agent's socket readers (0: its default)")
	profile := flag.String("agent-cpuprofile", "", "write our agent's CPU profile here")
	flag.Parse()
	if *serve {
		if *profile != "" {
			f, err := os.Create(*profile)
			if err != nil {
				log.Fatal(err)
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				log.Fatal(err)
			}
			defer pprof.StopCPUProfile()
		}
		if err := serveAgent(*workers); err != nil {
			log.Fatal(err)
		}
		return
	}
	agentArgs = []string{"-serve-agent", fmt.Sprintf("-workers=%d", *workers), "-agent-cpuprofile=" + *profile}
	if err := run(*out, *runs, *dur, *window); err != nil {
		log.Fatal(err)
	}
}

// serveAgent runs our agent until stdin closes.
func serveAgent(workers int) error {
	a, err := snmpagent.New(snmpagent.Config{Workers: workers, System: snmpagent.System{Descr: "cgoa snmpbench agent"}})
	if err != nil {
		return err
	}
	v := a.VACM()
	if err := v.AddView(snmpagent.ViewFamily{View: "all", Subtree: snmpagent.MustOID("1")}); err != nil {
		return err
	}
	if err := v.AddAccess(snmpagent.Access{Group: "ro", Level: snmpagent.AuthPriv, Read: "all"}); err != nil {
		return err
	}
	if err := a.AddCommunity(snmpagent.Community{Name: community, Sources: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}); err != nil {
		return err
	}
	if err := a.AddUser(snmpagent.User{Name: user, Auth: gosnmp.SHA256, AuthPassphrase: authPass, Priv: gosnmp.AES, PrivPassphrase: privPass, Group: "ro"}); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := a.Start(ctx, "127.0.0.1:0"); err != nil {
		return err
	}
	fmt.Printf("ADDR %s\n", a.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return a.Close()
}

type peer struct {
	name string
	addr netip.AddrPort
	stop func()
	pid  int // the agent's process, for its CPU time (0: not measured)
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100 on Linux.
const clockTicks = 100

// processCPU returns the CPU time (user and system, every thread) process pid used so far.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces; the fields after it are fixed.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command field", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	var utime, stime int64
	if _, err := fmt.Sscan(f[11], &utime); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat utime: %w", pid, err)
	}
	if _, err := fmt.Sscan(f[12], &stime); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat stime: %w", pid, err)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// agentArgs are the flags our agent's process is started with.
var agentArgs []string

func startOurs() (*peer, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, agentArgs...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := func() { stdin.Close(); cmd.Wait() }
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		stop()
		return nil, fmt.Errorf("our agent: %w", err)
	}
	ap, err := netip.ParseAddrPort(strings.TrimSpace(strings.TrimPrefix(line, "ADDR ")))
	if err != nil {
		stop()
		return nil, fmt.Errorf("our agent said %q: %w", line, err)
	}
	return &peer{name: "cgoa snmpagent", addr: ap, stop: stop, pid: cmd.Process.Pid}, nil
}

func freePort() (int, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port, nil
}

func startSnmpd(dir string) (*peer, error) {
	path, err := exec.LookPath("snmpd")
	if err != nil {
		return nil, fmt.Errorf("snmpd not installed (Debian package snmpd): %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "snmpd.conf")
	text := fmt.Sprintf("rocommunity %s 127.0.0.1\ncreateUser %s SHA-256 %s AES %s\nrouser %s priv\nsysDescr net-snmp snmpbench peer\n",
		community, user, authPass, privPass, user)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(path, "-f", "-Lo", "-C", "-c", conf, "-p", filepath.Join(dir, "snmpd.pid"), fmt.Sprintf("udp:127.0.0.1:%d", port))
	cmd.Env = []string{"MIBS=", "MIBDIRS=" + dir, "SNMPCONFPATH=" + dir, "SNMP_PERSISTENT_DIR=" + dir, "HOME=" + dir, "PATH=" + os.Getenv("PATH")}
	logf, err := os.Create(filepath.Join(dir, "snmpd.log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait(); logf.Close() }
	p := &peer{name: "net-snmp snmpd " + snmpdVersion(path), addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)), stop: stop,
		pid: cmd.Process.Pid}
	deadline := time.Now().Add(15 * time.Second)
	for {
		g := client(p.addr, gosnmp.Version2c)
		if err := g.Connect(); err == nil {
			_, err = g.Get([]string{sysDescr})
			g.Conn.Close()
			if err == nil {
				return p, nil
			}
		}
		if time.Now().After(deadline) {
			stop()
			b, _ := os.ReadFile(filepath.Join(dir, "snmpd.log"))
			return nil, fmt.Errorf("snmpd did not answer: %s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func snmpdVersion(path string) string {
	out, _ := exec.Command(path, "-v").Output()
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "NET-SNMP version") {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "NET-SNMP version:"))
		}
	}
	return ""
}

func client(addr netip.AddrPort, v gosnmp.SnmpVersion) *gosnmp.GoSNMP {
	g := &gosnmp.GoSNMP{Target: addr.Addr().String(), Port: addr.Port(), Version: v, Community: community,
		Timeout: 500 * time.Millisecond, Retries: 2, MaxOids: 60}
	if v == gosnmp.Version3 {
		g.SecurityModel = gosnmp.UserSecurityModel
		g.MsgFlags = gosnmp.AuthPriv
		g.SecurityParameters = &gosnmp.UsmSecurityParameters{UserName: user,
			AuthenticationProtocol: gosnmp.SHA256, AuthenticationPassphrase: authPass,
			PrivacyProtocol: gosnmp.AES, PrivacyPassphrase: privPass}
	}
	return g
}

// requests pre-encodes n distinct requests (request IDs, and for v3 msgIDs
// and salts) so the load generator spends no time encoding. v3 requests
// stay valid for the 150 s time window, longer than a run.
func requests(p *peer, metric string, n int) ([][]byte, func([]byte) error, error) {
	v := gosnmp.Version2c
	if strings.HasPrefix(metric, "v3") {
		v = gosnmp.Version3
	}
	g := client(p.addr, v)
	if err := g.Connect(); err != nil {
		return nil, nil, err
	}
	defer g.Conn.Close()
	// A real exchange first: checks the agent answers correctly and, for
	// v3, discovers its engine ID, boots and time.
	res, err := g.Get([]string{sysDescr})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: check get: %w", p.name, err)
	}
	if res.Error != gosnmp.NoError || len(res.Variables) != 1 || res.Variables[0].Type != gosnmp.OctetString {
		return nil, nil, fmt.Errorf("%s: check get answered %v %v", p.name, res.Error, res.Variables)
	}
	msgs := make([][]byte, n)
	for i := range msgs {
		var b []byte
		if metric == "v2c.getbulk" {
			b, err = g.SnmpEncodePacket(gosnmp.GetBulkRequest, []gosnmp.SnmpPDU{{Name: system, Type: gosnmp.Null}}, 0, 10)
		} else {
			b, err = g.SnmpEncodePacket(gosnmp.GetRequest, []gosnmp.SnmpPDU{{Name: sysDescr, Type: gosnmp.Null}}, 0, 0)
		}
		if err != nil {
			return nil, nil, err
		}
		msgs[i] = b
	}
	want := 1
	if metric == "v2c.getbulk" {
		want = 10
	}
	// check decodes a response of the run (v3: with the session's keys)
	// and insists on a real answer, not a Report or an error.
	check := func(msg []byte) error {
		d := &gosnmp.GoSNMP{Version: v}
		if v == gosnmp.Version3 {
			d.SecurityModel, d.MsgFlags, d.SecurityParameters = gosnmp.UserSecurityModel, gosnmp.AuthPriv, g.SecurityParameters.Copy()
		}
		pkt, err := d.SnmpDecodePacket(msg)
		if err != nil {
			return err
		}
		if pkt.PDUType != gosnmp.GetResponse || pkt.Error != gosnmp.NoError || len(pkt.Variables) != want {
			return fmt.Errorf("response %v %v with %d varbinds %v, want %d varbinds", pkt.PDUType, pkt.Error, len(pkt.Variables), pkt.Variables, want)
		}
		return nil
	}
	return msgs, check, nil
}

// load sends msgs round-robin to addr keeping window requests in flight
// and returns the responses received per second over d (after warm), the
// agent's CPU time per response over d when cpu reads it (the agent's
// process CPU time: a figure a busy shared machine disturbs far less than
// the rate), and the first and last responses (for a sanity check). It
// reads and writes in batches (recvmmsg/sendmmsg) so that the generator,
// which shares the machine with the agent under test, stays cheap.
func load(addr netip.AddrPort, msgs [][]byte, window int, warm, d time.Duration, cpu func() (time.Duration, error)) (float64, time.Duration, [][]byte, error) {
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return 0, 0, nil, err
	}
	defer conn.Close()
	_ = conn.SetReadBuffer(1 << 20)
	pc := ipv4.NewPacketConn(conn)
	next := 0
	out := make([]ipv4.Message, window)
	send := func(n int) error {
		for i := 0; i < n; i++ {
			out[i].Buffers = [][]byte{msgs[next]}
			next = (next + 1) % len(msgs)
		}
		for sent := 0; sent < n; {
			k, err := pc.WriteBatch(out[sent:n], 0)
			if err != nil {
				return err
			}
			sent += k
		}
		return nil
	}
	in := make([]ipv4.Message, window)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, 65536)}
	}
	if err := send(window); err != nil {
		return 0, 0, nil, err
	}
	var first []byte
	measureFrom := time.Now().Add(warm)
	var end time.Time // t0 + d: a generator descheduled past measureFrom still measures d
	count := 0
	measuring := false
	var t0 time.Time
	var cpu0 time.Duration
	lastRead := time.Now()
	for {
		_ = conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		n, err := pc.ReadBatch(in, 0)
		now := time.Now()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if now.Sub(lastRead) > 2*time.Second {
					return 0, 0, nil, fmt.Errorf("no responses from %v", addr)
				}
				// Lost requests: refill the window.
				if err := send(window); err != nil {
					return 0, 0, nil, err
				}
				continue
			}
			return 0, 0, nil, err
		}
		lastRead = now
		if first == nil && n > 0 {
			first = append([]byte(nil), in[0].Buffers[0][:in[0].N]...)
		}
		if !measuring && now.After(measureFrom) {
			measuring, t0, count = true, now, 0
			end = t0.Add(d)
			if cpu != nil {
				if cpu0, err = cpu(); err != nil {
					return 0, 0, nil, err
				}
			}
			continue // responses before t0 do not count
		}
		count += n
		if measuring && now.After(end) {
			last := in[n-1].Buffers[0][:in[n-1].N]
			var per time.Duration
			if cpu != nil {
				c, err := cpu()
				if err != nil {
					return 0, 0, nil, err
				}
				per = (c - cpu0) / time.Duration(max(count, 1))
			}
			return float64(count) / now.Sub(t0).Seconds(), per, [][]byte{first, last}, nil
		}
		if err := send(n); err != nil {
			return 0, 0, nil, err
		}
	}
}

type result struct {
	Metric  string  `json:"metric"`
	Unit    string  `json:"unit"`
	Value   float64 `json:"value"`
	Samples int     `json:"samples"`
	Peer    struct {
		Name  string  `json:"name"`
		Value float64 `json:"value"`
	} `json:"peer"`
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func machine() string {
	model := "unknown cpu"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				model = strings.TrimSpace(l[strings.IndexByte(l, ':')+1:])
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d cores", model, runtime.NumCPU())
}

func run(out string, runs int, d time.Duration, window int) error {
	dir, err := os.MkdirTemp("", "snmpbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ours, err := startOurs()
	if err != nil {
		return err
	}
	defer ours.stop()
	snmpd, err := startSnmpd(dir)
	if err != nil {
		return err
	}
	defer snmpd.stop()

	var results []result
	for _, metric := range []string{"v2c.get", "v2c.getbulk", "v3.get"} {
		rates := map[*peer][]float64{}
		cpus := map[*peer][]float64{} // µs of the agent's CPU per response
		msgs := map[*peer][][]byte{}
		checks := map[*peer]func([]byte) error{}
		for _, p := range []*peer{ours, snmpd} {
			if msgs[p], checks[p], err = requests(p, metric, 4*window); err != nil {
				return err
			}
		}
		// Alternate the agents run by run so drift on a shared machine
		// hits both alike.
		for i := 0; i < runs; i++ {
			for _, p := range []*peer{ours, snmpd} {
				pid := p.pid
				r, per, seen, err := load(p.addr, msgs[p], window, 300*time.Millisecond, d, func() (time.Duration, error) { return processCPU(pid) })
				if err != nil {
					return fmt.Errorf("%s %s: %w", metric, p.name, err)
				}
				for _, m := range seen {
					if err := checks[p](m); err != nil {
						return fmt.Errorf("%s %s: %w", metric, p.name, err)
					}
				}
				rates[p] = append(rates[p], r)
				cpus[p] = append(cpus[p], float64(per)/float64(time.Microsecond))
			}
		}
		res := result{Metric: metric, Unit: "requests/s", Value: round(median(rates[ours])), Samples: runs}
		res.Peer.Name = snmpd.name
		res.Peer.Value = round(median(rates[snmpd]))
		fmt.Printf("%-12s ours %9.0f/s  snmpd %9.0f/s  ratio %.2f  (median of %d runs of %v, window %d; ours %v snmpd %v)\n",
			metric, res.Value, res.Peer.Value, res.Value/res.Peer.Value, runs, d, window, rounded(rates[ours]), rounded(rates[snmpd]))
		results = append(results, res)
		// Beside the rate: the agent's CPU time per response, which the neighbours on a
		// shared machine disturb much less than the rate (lower is better).
		cres := result{Metric: metric + ".cpu", Unit: "us/request", Value: round2(median(cpus[ours])), Samples: runs}
		cres.Peer.Name = snmpd.name
		cres.Peer.Value = round2(median(cpus[snmpd]))
		fmt.Printf("%-12s ours %9.2fus snmpd %9.2fus  CPU per response, snmpd/ours %.2f\n",
			metric+".cpu", cres.Value, cres.Peer.Value, cres.Peer.Value/cres.Value)
		results = append(results, cres)
	}
	doc := struct {
		Bench   string   `json:"bench"`
		Machine string   `json:"machine"`
		Results []result `json:"results"`
	}{"snmp", machine(), results}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(out, append(b, '\n'), 0o644)
}

func round(x float64) float64 { return float64(int64(x + 0.5)) }

func round2(x float64) float64 { return float64(int64(x*100+0.5)) / 100 }

func rounded(xs []float64) []int64 {
	r := make([]int64, len(xs))
	for i, x := range xs {
		r[i] = int64(x + 0.5)
	}
	return r
}
