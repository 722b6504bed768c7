// Command shelf boots and operates an emulated CGOA shelf in QEMU.
//
//	shelf up [--topology FILE] [--detach]   boot a shelf (default: the standard 5-blade shelf)
//	shelf down                              stop it; nothing is left running
//	shelf status [--json]                   per slot: role, state, uptime, what the blade reports
//	shelf console SLOT                      interactive serial console; detach with Ctrl-]
//	shelf exec SLOT COMMAND...              run one console command (exit 1 on a console error)
//	shelf kill SLOT                         pull the blade (links drop on both ends)
//	shelf restart SLOT                      reinsert and boot it
//	shelf hang SLOT | resume SLOT           stop / continue the blade's CPU
//	shelf cut SLOT PORT | mend SLOT PORT    cut / repair one backplane channel
//	shelf flash SLOT FILE [--force] [--reboot]  send a signed image through the craft port
//	shelf upgrade ROLE FILE                 rolling upgrade of a protected pair
//
// `up` in the foreground shows a live status table until every blade has
// its prompt, then (on a terminal) a `shelf>` prompt; quit, Ctrl-D, Ctrl-C
// or SIGTERM stop every VM. With --detach a background supervisor holds the
// shelf and the other subcommands talk to it through
// build/shelf/<name>/control.sock.
//
// Common flags: --build DIR (default <repo>/build), --name NAME (the shelf
// to address; default: the only running one, else "default"), --run DIR
// (the run directory itself).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/cgoa/cgoa/qemu/shelf"
	"github.com/cgoa/cgoa/qemu/topology"
	"github.com/cgoa/cgoa/qemu/vm"
)

const usage = `usage: shelf <command> [flags] [args]

commands:
  up [--topology FILE] [--detach] [--timeout 3m]   boot a shelf
  down                                             stop the shelf
  status [--json]                                  show every slot
  console SLOT                                     serial console (detach: Ctrl-])
  exec SLOT COMMAND...                             run one console command
  kill SLOT | restart SLOT                         pull / reinsert a blade
  hang SLOT | resume SLOT                          stop / continue a blade's CPU
  cut SLOT PORT | mend SLOT PORT                   cut / repair a channel
  flash SLOT FILE [--force] [--reboot]             send a signed image to a blade's craft port
                                                   (--force: an older version; --reboot: boot it now, on trial)
  upgrade ROLE FILE                                rolling upgrade of a protected pair (mgmt, switch)

flags for every command: --build DIR  --name NAME  --run DIR
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "up":
		err = up(args, false)
	case "serve": // the detached supervisor started by `up --detach`
		err = up(args, true)
	case "down":
		err = down(args)
	case "status":
		err = status(args)
	case "console":
		err = consoleCmd(args)
	case "exec":
		err = execCmd(args)
	case "kill", "restart", "hang", "resume":
		err = slotOp(cmd, args)
	case "cut", "mend":
		err = portOp(cmd, args)
	case "flash":
		err = flashCmd(args)
	case "upgrade":
		err = upgradeCmd(args)
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "shelf: unknown command %q\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil {
		var ec exitCode
		if errors.As(err, &ec) {
			os.Exit(int(ec))
		}
		fmt.Fprintln(os.Stderr, "shelf:", err)
		os.Exit(1)
	}
}

// exitCode ends the command with a status and no message.
type exitCode int

func (e exitCode) Error() string { return "exit " + strconv.Itoa(int(e)) }

type common struct {
	fs    *flag.FlagSet
	build string
	name  string
	run   string
}

func newFlags(name string) *common {
	c := &common{fs: flag.NewFlagSet(name, flag.ContinueOnError)}
	c.fs.StringVar(&c.build, "build", "", "build directory (default <repo>/build)")
	c.fs.StringVar(&c.name, "name", "", "shelf name (default: the only running shelf, else default)")
	c.fs.StringVar(&c.run, "run", "", "run directory (default <build>/shelf/<name>)")
	return c
}

func (c *common) buildDir() (string, error) {
	if c.build != "" {
		return filepath.Abs(c.build)
	}
	root, err := vm.RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "build"), nil
}

// runDir finds the run directory a command addresses.
func (c *common) runDir() (string, error) {
	if c.run != "" {
		return filepath.Abs(c.run)
	}
	b, err := c.buildDir()
	if err != nil {
		return "", err
	}
	if c.name != "" {
		return filepath.Join(b, "shelf", c.name), nil
	}
	socks, _ := filepath.Glob(filepath.Join(b, "shelf", "*", "control.sock"))
	var live []string
	for _, s := range socks {
		if _, err := (shelf.Client{RunDir: filepath.Dir(s)}).Call(ctxFor(2*time.Second), shelf.Request{Op: "status"}); err == nil {
			live = append(live, filepath.Dir(s))
		}
	}
	switch len(live) {
	case 1:
		return live[0], nil
	case 0:
		return filepath.Join(b, "shelf", "default"), nil
	}
	return "", fmt.Errorf("several shelves run (%s): pick one with --name", strings.Join(live, ", "))
}

func ctxFor(d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	time.AfterFunc(d, cancel) // these commands are short-lived; the context ends with its timeout
	return ctx
}

func slotArg(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > topology.MaxSlot {
		return 0, fmt.Errorf("bad slot %q: want 1..%d", s, topology.MaxSlot)
	}
	return n, nil
}

func up(args []string, daemon bool) error {
	c := newFlags("up")
	topoFile := c.fs.String("topology", "", "topology YAML file (default: the standard shelf)")
	keepFlash := c.fs.Bool("keep-flash", false, "keep the blades' flash from an earlier run (default: factory-flash build/images/<role>.img)")
	detach := c.fs.Bool("detach", false, "run the shelf in a background supervisor and return once it is up")
	timeout := c.fs.Duration("timeout", 3*time.Minute, "how long to wait for every prompt")
	if err := c.fs.Parse(args); err != nil {
		return exitCode(2)
	}
	topo := topology.Default()
	if *topoFile != "" {
		var err error
		if topo, err = topology.LoadFile(*topoFile); err != nil {
			return err
		}
	}
	build, err := c.buildDir()
	if err != nil {
		return err
	}
	run := c.run
	if run == "" {
		run = filepath.Join(build, "shelf", topo.Name)
	}
	if *detach {
		return startDetached(run, build, *topoFile, *timeout, *keepFlash)
	}
	art, err := vm.FindArtifacts(build)
	if err != nil {
		return err
	}
	var logw io.Writer = os.Stdout
	s, err := shelf.New(shelf.Options{Topology: topo, Artifacts: art, RunDir: run, Log: logw, KeepFlash: *keepFlash})
	if err != nil {
		return err
	}
	srv, err := shelf.Serve(s)
	if err != nil {
		s.Close()
		return err
	}
	stop := func() {
		srv.Close()
		s.Close()
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	quit := make(chan struct{})
	go func() {
		select {
		case sig := <-sigs:
			fmt.Fprintf(os.Stderr, "\nshelf: %v: stopping every blade\n", sig)
			restoreTerminal()
			stop()
			os.Exit(130)
		case <-srv.Down():
			fmt.Println("shelf: down requested: stopping every blade")
			stop()
			close(quit)
		}
	}()

	started := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		stop()
		return err
	}
	interactive := !daemon && term.IsTerminal(int(os.Stdin.Fd())) && term.IsTerminal(int(os.Stdout.Fd()))
	if err := watchBoot(ctx, s, interactive && !daemon); err != nil {
		fmt.Fprintln(os.Stderr, "shelf:", err)
		for slot, log := range s.Logs() {
			fmt.Fprintf(os.Stderr, "----- console log of slot %d (tail) -----\n%s\n", slot, tail(log, 1500))
		}
		stop()
		return exitCode(1)
	}
	fmt.Printf("shelf %s: all %d blades up in %.1fs; run dir %s\n", topo.Name, len(topo.Blades), time.Since(started).Seconds(), s.RunDir())
	if interactive {
		prompt(s)
		stop()
		return nil
	}
	if !daemon {
		fmt.Println("shelf: running; stop with Ctrl-C, SIGTERM or `shelf down`")
	}
	<-quit
	return nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// watchBoot shows the status until every blade is up: a live table on a
// terminal, state changes otherwise.
func watchBoot(ctx context.Context, s *shelf.Shelf, live bool) error {
	lines := 0
	last := map[int]vm.State{}
	for {
		st := s.Status(ctx)
		if live {
			var sb strings.Builder
			st.WriteTable(&sb)
			if lines > 0 {
				fmt.Printf("\x1b[%dA\x1b[J", lines)
			}
			fmt.Print(sb.String())
			lines = strings.Count(sb.String(), "\n")
		} else {
			for _, b := range st.Blades {
				if last[b.Slot] != b.State {
					fmt.Printf("slot %d %s: %s\n", b.Slot, b.Role, b.State)
					last[b.Slot] = b.State
				}
			}
		}
		if st.AllUp() {
			return nil
		}
		for _, b := range st.Blades {
			if b.State == vm.Down {
				return fmt.Errorf("slot %d (%s) went down while booting", b.Slot, b.Role)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not every blade reached its prompt: %w", ctx.Err())
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func startDetached(run, build, topoFile string, timeout time.Duration, keepFlash bool) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(run, 0o755); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(run, "supervisor.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	args := []string{"serve", "--build", build, "--run", run, "--timeout", timeout.String()}
	if topoFile != "" {
		args = append(args, "--topology", topoFile)
	}
	if keepFlash {
		args = append(args, "--keep-flash")
	}
	cmd := exec.Command(self, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	cl := shelf.Client{RunDir: run}
	deadline := time.Now().Add(timeout + 10*time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			b, _ := os.ReadFile(logf.Name())
			return fmt.Errorf("supervisor exited (%v):\n%s", err, b)
		case <-time.After(300 * time.Millisecond):
		}
		resp, err := cl.Call(ctxFor(10*time.Second), shelf.Request{Op: "status"})
		if err == nil && resp.Status.AllUp() {
			resp.Status.WriteTable(os.Stdout)
			fmt.Printf("shelf up (supervisor pid %d, log %s); stop with `shelf down`\n", cmd.Process.Pid, logf.Name())
			return nil
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	return fmt.Errorf("shelf did not come up within %v; see %s", timeout, logf.Name())
}

func down(args []string) error {
	c := newFlags("down")
	if err := c.fs.Parse(args); err != nil {
		return exitCode(2)
	}
	run, err := c.runDir()
	if err != nil {
		return err
	}
	pidb, _ := os.ReadFile(shelf.PidPath(run))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(pidb)))
	if _, err := (shelf.Client{RunDir: run}).Call(ctxFor(30*time.Second), shelf.Request{Op: "down"}); err != nil {
		if pid == 0 || syscall.Kill(pid, 0) != nil {
			fmt.Println("shelf: nothing running in", run)
			return nil
		}
		fmt.Fprintf(os.Stderr, "shelf: control socket does not answer (%v); terminating supervisor %d\n", err, pid)
		syscall.Kill(pid, syscall.SIGTERM)
	}
	if pid > 0 {
		// The supervisor stops its VMs, then exits; QEMU dies with it at worst.
		deadline := time.Now().Add(20 * time.Second)
		for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) && !zombie(pid) {
			time.Sleep(50 * time.Millisecond)
		}
		if syscall.Kill(pid, 0) == nil && !zombie(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	fmt.Println("shelf: down")
	return nil
}

func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] == "Z"
}

func status(args []string) error {
	c := newFlags("status")
	asJSON := c.fs.Bool("json", false, "print JSON")
	if err := c.fs.Parse(args); err != nil {
		return exitCode(2)
	}
	run, err := c.runDir()
	if err != nil {
		return err
	}
	resp, err := (shelf.Client{RunDir: run}).Call(ctxFor(30*time.Second), shelf.Request{Op: "status"})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(resp.Status)
	}
	resp.Status.WriteTable(os.Stdout)
	return nil
}

func execCmd(args []string) error {
	c := newFlags("exec")
	timeout := c.fs.Duration("timeout", 30*time.Second, "command timeout")
	if err := c.fs.Parse(args); err != nil {
		return exitCode(2)
	}
	if c.fs.NArg() < 2 {
		return errors.New("usage: shelf exec SLOT COMMAND...")
	}
	slot, err := slotArg(c.fs.Arg(0))
	if err != nil {
		return err
	}
	run, err := c.runDir()
	if err != nil {
		return err
	}
	line := strings.Join(c.fs.Args()[1:], " ")
	resp, err := (shelf.Client{RunDir: run}).Call(ctxFor(*timeout+5*time.Second),
		shelf.Request{Op: "exec", Slot: slot, Line: line, TimeoutMS: int(timeout.Milliseconds())})
	if err != nil {
		return err
	}
	if resp.Output != "" {
		fmt.Println(resp.Output)
	}
	if resp.CmdError {
		return exitCode(1)
	}
	return nil
}

func slotOp(op string, args []string) error {
	c := newFlags(op)
	if err := c.fs.Parse(args); err != nil {
		return exitCode(2)
	}
	if c.fs.NArg() != 1 {
		return fmt.Errorf("usage: shelf %s SLOT", op)
	}
	slot, err := slotArg(c.fs.Arg(0))
	if err != nil {
		return err
	}
	run, err := c.runDir()
	if err != nil {
		return err
	}
	_, err = (shelf.Client{RunDir: run}).Call(ctxFor(60*time.Second), shelf.Request{Op: op, Slot: slot})
	return err
}

func portOp(op string, args []string) error {
	c := newFlags(op)
	if err := c.fs.Parse(args); err != nil {
		return exitCode(2)
	}
	if c.fs.NArg() != 2 {
		return fmt.Errorf("usage: shelf %s SLOT PORT", op)
	}
	slot, err := slotArg(c.fs.Arg(0))
	if err != nil {
		return err
	}
	run, err := c.runDir()
	if err != nil {
		return err
	}
	_, err = (shelf.Client{RunDir: run}).Call(ctxFor(30*time.Second), shelf.Request{Op: op, Slot: slot, Port: c.fs.Arg(1)})
	return err
}

func consoleCmd(args []string) error {
	c := newFlags("console")
	if err := c.fs.Parse(args); err != nil {
		return exitCode(2)
	}
	if c.fs.NArg() != 1 {
		return errors.New("usage: shelf console SLOT")
	}
	slot, err := slotArg(c.fs.Arg(0))
	if err != nil {
		return err
	}
	run, err := c.runDir()
	if err != nil {
		return err
	}
	conn, err := (shelf.Client{RunDir: run}).Console(ctxFor(10*time.Second), slot)
	if err != nil {
		return err
	}
	defer conn.Close()
	return interact(slot, conn, conn)
}

// parseAnywhere parses flags that may come before, between or after the positional
// arguments (`flash 3 img --reboot`), returning the positional ones.
func parseAnywhere(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func flashCmd(args []string) error {
	c := newFlags("flash")
	force := c.fs.Bool("force", false, "flash an older version than the running one")
	reboot := c.fs.Bool("reboot", false, "reboot the blade so that the image boots (on trial)")
	pos, err := parseAnywhere(c.fs, args)
	if err != nil {
		return exitCode(2)
	}
	if len(pos) != 2 {
		return errors.New("usage: shelf flash SLOT FILE [--force] [--reboot]")
	}
	slot, err := slotArg(pos[0])
	if err != nil {
		return err
	}
	file, err := filepath.Abs(pos[1])
	if err != nil {
		return err
	}
	if _, err := os.Stat(file); err != nil {
		return err
	}
	return longOp(c, shelf.Request{Op: "flash", Slot: slot, File: file, Force: *force, Reboot: *reboot})
}

func upgradeCmd(args []string) error {
	c := newFlags("upgrade")
	pos, err := parseAnywhere(c.fs, args)
	if err != nil {
		return exitCode(2)
	}
	if len(pos) != 2 {
		return errors.New("usage: shelf upgrade ROLE FILE")
	}
	file, err := filepath.Abs(pos[1])
	if err != nil {
		return err
	}
	if _, err := os.Stat(file); err != nil {
		return err
	}
	return longOp(c, shelf.Request{Op: "upgrade", Role: pos[0], File: file})
}

// longOp sends a flash or upgrade request and prints what the supervisor reports.
func longOp(c *common, req shelf.Request) error {
	run, err := c.runDir()
	if err != nil {
		return err
	}
	resp, err := (shelf.Client{RunDir: run}).Call(ctxFor(shelf.LongOpTimeout+time.Minute), req)
	if resp.Output != "" {
		fmt.Print(resp.Output)
	}
	return err
}
