package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cgoa/cgoa/qemu/vm"
)

// procShelf is a three-blade shelf of firmware processes on a namespace backplane: mgmt in
// slots 3 and 4, EPON in slot 5 (the third voter), and a prober namespace on hub 1 standing
// for the core network (169.254.3.250/24, following gratuitous ARP at once).
type procShelf struct {
	bp    *backplane
	dir   string
	procs map[int]*fwProc
}

type fwProc struct {
	cmd  *exec.Cmd
	con  *vm.Console
	done chan struct{}
}

// newProcShelf builds the mgmt and epon firmware, wires the backplane and boots the three
// blades; show runs on every blade's console when the test fails.
func newProcShelf(ctx context.Context, t *testing.T, show ...string) *procShelf {
	t.Helper()
	bp := newBackplane(t)
	s := &procShelf{bp: bp, dir: t.TempDir(), procs: map[int]*fwProc{}}
	mgmtBin := buildFirmware(t)
	eponBin := filepath.Join(s.dir, "firmware-epon")
	if out, err := exec.Command("go", "build", "-tags", "epon", "-o", eponBin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build epon: %v\n%s", err, out)
	}
	for _, n := range []string{"s3", "s4", "s5"} {
		bp.attach(n, "base0", "hub1")
		bp.attach(n, "base1", "hub2")
	}
	bp.attach("prober", "core0", "hub1")
	netns(bp.ns("prober")).ip(t, "addr", "add", "169.254.3.250/24", "dev", "core0")
	// Follow a gratuitous ARP at once, as routers in front of a protected address are set to.
	run(t, "ip", "netns", "exec", bp.ns("prober"), "sh", "-c", "echo 0 > /proc/sys/net/ipv4/neigh/core0/locktime")
	keyb := make([]byte, 32)
	rand.Read(keyb)
	key := hex.EncodeToString(keyb)
	s.start(ctx, t, 3, mgmtBin, key)
	s.start(ctx, t, 4, mgmtBin, key)
	s.start(ctx, t, 5, eponBin, key)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for slot, p := range s.procs {
			for _, cmd := range show {
				cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				out, err := p.con.Exec(cctx, cmd)
				cancel()
				t.Logf("slot %d %s (%v):\n%s", slot, cmd, err, out)
			}
		}
	})
	return s
}

func (s *procShelf) start(ctx context.Context, t *testing.T, slot int, bin, key string) {
	t.Helper()
	sock := filepath.Join(s.dir, fmt.Sprintf("s%d.sock", slot))
	state := filepath.Join(s.dir, fmt.Sprintf("state%d", slot))
	cmd := exec.Command("ip", "netns", "exec", s.bp.ns(fmt.Sprintf("s%d", slot)), bin, "-slot", fmt.Sprint(slot),
		"-console", "unix:"+sock, "-shelfmap", "3:mgmt,4:mgmt,5:epon", "-shelfkey", key, "-ha-timers", "20msx5",
		"-state", state)
	cmd.SysProcAttr = &unix.SysProcAttr{Pdeathsig: unix.SIGKILL}
	errPath := filepath.Join(s.dir, fmt.Sprintf("s%d.stderr", slot))
	ef, err := os.Create(errPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = ef, ef
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ef.Close()
		if t.Failed() {
			b, _ := os.ReadFile(errPath)
			l, _ := os.ReadFile(filepath.Join(state, "firmware.log"))
			t.Logf("slot %d exit %v stderr:\n%s\nfirmware.log:\n%s", slot, cmd.ProcessState, b, l)
		}
	})
	p := &fwProc{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-p.done })
	con, err := vm.DialConsole(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { con.Close() })
	if err := con.WaitBoot(ctx, 1); err != nil {
		t.Fatal(err)
	}
	p.con = con
	s.procs[slot] = p
}

// pull kills a blade's firmware with SIGKILL and takes its namespace away, as the blade's
// kernel goes with a pulled blade (otherwise the dead process's namespace would go on
// answering ARP for the management address it held).
func (s *procShelf) pull(t *testing.T, slot int) {
	t.Helper()
	p := s.procs[slot]
	p.cmd.Process.Signal(unix.SIGKILL)
	<-p.done
	run(t, "ip", "netns", "del", s.bp.ns(fmt.Sprintf("s%d", slot)))
}
