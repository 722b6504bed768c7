package vm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cgoa/cgoa/qemu/qmp"
)

// Port is one NIC of a blade: a virtio-net device at a fixed PCI slot whose
// netdev is a unix datagram socket pair (local bound here, remote the far
// end's socket).
type Port struct {
	Name      string // device id and port name: base0, node3, pon1...
	PCIDevice int    // device number on PCI bus 0
	MAC       string
	Local     string // our socket path
	Remote    string // the far end's socket path
}

// Config describes one blade VM.
type Config struct {
	QEMU      string // qemu-system-x86_64 binary; looked up in PATH when empty
	Kernel    string // PVH vmlinux
	Initrd    string // the role's cpio
	Role      string
	Shelf     int
	Slot      int
	RunDir    string // where sockets and logs live
	MemoryMiB int    // default 256
	Ports     []Port
	Append    string // extra kernel command line words
	// Flash is the blade's flash disk (a raw file), attached as a virtio-blk drive the
	// firmware sees as /dev/vda; empty for none.
	Flash string
	// Craft is the craft port: a user-mode NIC at PCI 0x07 (craft0) restricted to the host,
	// whose guest TCP port CraftGuestPort is forwarded from 127.0.0.1:Craft.HostPort.
	Craft *Craft
}

// Craft configures the craft port NIC.
type Craft struct {
	HostPort int    // TCP port on 127.0.0.1
	MAC      string // the NIC's MAC
}

// The craft port's fixed guest side: slirp's guest address and the update service's port.
const (
	CraftGuestAddr = "10.0.2.15"
	CraftGuestPort = 7070
	CraftPCIDevice = 0x07
	FlashPCIDevice = 0x06
)

// ConsolePath is the serial console socket.
func (c Config) ConsolePath() string {
	return filepath.Join(c.RunDir, fmt.Sprintf("slot%d.console", c.Slot))
}

// LogPath is QEMU's log of everything the console printed.
func (c Config) LogPath() string { return filepath.Join(c.RunDir, fmt.Sprintf("slot%d.log", c.Slot)) }

// QMPPath is the QMP socket.
func (c Config) QMPPath() string { return filepath.Join(c.RunDir, fmt.Sprintf("slot%d.qmp", c.Slot)) }

// StderrPath is where QEMU's own stderr goes.
func (c Config) StderrPath() string {
	return filepath.Join(c.RunDir, fmt.Sprintf("slot%d.qemu.log", c.Slot))
}

// Args returns the QEMU arguments (without the binary) for a blade. It is
// the single definition of the blade's virtual hardware.
func Args(c Config) []string {
	mem := c.MemoryMiB
	if mem == 0 {
		mem = 256
	}
	appendLine := fmt.Sprintf("console=ttyS0,115200 quiet loglevel=3 panic=-1 cgoa.shelf=%d cgoa.slot=%d", c.Shelf, c.Slot)
	if c.Append != "" {
		appendLine += " " + c.Append
	}
	args := []string{
		"-machine", "pc,accel=tcg", "-cpu", "max", "-smp", "1", "-m", strconv.Itoa(mem),
		"-nodefaults", "-no-user-config", "-display", "none",
		// A guest reset (reboot, panic, watchdog) ends QEMU instead of restarting the
		// guest in place, so that every boot goes through the shelf's boot ROM, which picks
		// the flash bank (and falls back after a failed trial).
		"-no-reboot",
		"-kernel", c.Kernel,
	}
	if c.Initrd != "" {
		args = append(args, "-initrd", c.Initrd)
	}
	args = append(args,
		"-append", appendLine,
		"-chardev", "socket,id=con0,path="+c.ConsolePath()+",server=on,wait=off,logfile="+c.LogPath(),
		"-serial", "chardev:con0",
		"-qmp", "unix:"+c.QMPPath()+",server=on,wait=off",
		"-device", "i6300esb,bus=pci.0,addr=0x5", "-action", "watchdog=reset",
		"-device", "ipmi-bmc-sim,id=bmc0", "-device", "isa-ipmi-kcs,bmc=bmc0",
	)
	if c.Flash != "" {
		args = append(args,
			"-drive", "file="+c.Flash+",format=raw,if=none,id=flash0,cache=writeback",
			"-device", fmt.Sprintf("virtio-blk-pci,drive=flash0,id=flash,bus=pci.0,addr=%#x", FlashPCIDevice))
	}
	if c.Craft != nil {
		// restrict=on: the guest reaches nothing but the forwarded port; the host side
		// listens on the loopback only.
		args = append(args,
			"-netdev", fmt.Sprintf("user,id=nd-craft0,restrict=on,hostfwd=tcp:127.0.0.1:%d-%s:%d", c.Craft.HostPort, CraftGuestAddr, CraftGuestPort),
			"-device", fmt.Sprintf("virtio-net-pci,netdev=nd-craft0,id=craft0,bus=pci.0,addr=%#x,mac=%s", CraftPCIDevice, c.Craft.MAC))
	}
	for _, p := range c.Ports {
		args = append(args,
			"-netdev", fmt.Sprintf("dgram,id=nd-%s,local.type=unix,local.path=%s,remote.type=unix,remote.path=%s", p.Name, p.Local, p.Remote),
			"-device", fmt.Sprintf("virtio-net-pci,netdev=nd-%s,id=%s,bus=pci.0,addr=%#x,mac=%s", p.Name, p.Name, p.PCIDevice, p.MAC),
		)
	}
	return args
}

// State is what a blade is doing.
type State string

// Blade states.
const (
	Booting State = "booting" // QEMU runs, the prompt of the current boot not seen yet
	Up      State = "up"      // prompt seen
	Hung    State = "hung"    // QEMU runs but the CPU is stopped (QMP stop, or a watchdog pause)
	Down    State = "down"    // QEMU is not running
)

// VM is a running blade.
type VM struct {
	cfg     Config
	cmd     *exec.Cmd
	started time.Time
	exited  chan struct{}
	exitErr error

	qmp     *qmp.Client
	console *Console

	stopOnce sync.Once

	evMu       sync.Mutex
	shutdown   string // reason of QEMU's SHUTDOWN event, "" until one came
	eventsDone chan struct{}
}

// ExitReason says why QEMU ended: the reason of its SHUTDOWN event ("guest-reset",
// "guest-shutdown", "host-qmp-quit", "host-qmp-system-reset", ...), or "killed" when it
// ended without one (SIGKILL, crash). It waits for QEMU to exit.
func (v *VM) ExitReason() string {
	<-v.exited
	if v.eventsDone != nil {
		select {
		case <-v.eventsDone:
		case <-time.After(2 * time.Second):
		}
	}
	v.evMu.Lock()
	defer v.evMu.Unlock()
	if v.shutdown == "" {
		return "killed"
	}
	return v.shutdown
}

// IsReset reports whether an exit reason is a reset of the machine (by the guest, its
// watchdog or a QMP system_reset): with -no-reboot QEMU ends instead of resetting, and the
// shelf boots the blade again through its boot ROM.
func IsReset(reason string) bool { return strings.HasSuffix(reason, "-reset") }

// watchEvents records the SHUTDOWN event's reason.
func (v *VM) watchEvents() {
	defer close(v.eventsDone)
	for ev := range v.qmp.Events() {
		if ev.Name != "SHUTDOWN" {
			continue
		}
		var d struct {
			Reason string `json:"reason"`
		}
		json.Unmarshal(ev.Data, &d)
		v.evMu.Lock()
		if v.shutdown == "" { // the first one is the cause
			v.shutdown = d.Reason
		}
		v.evMu.Unlock()
	}
}

// maxSocketPath is the sun_path limit less the terminating NUL.
const maxSocketPath = 107

// Start launches the VM and connects QMP and the console. It cleans stale
// sockets of an earlier run of the same slot and keeps the previous console
// log as slot<N>.log.1.
func Start(ctx context.Context, cfg Config) (*VM, error) {
	if cfg.QEMU == "" {
		p, err := exec.LookPath("qemu-system-x86_64")
		if err != nil {
			return nil, fmt.Errorf("vm: slot %d: qemu-system-x86_64 not found (apt-get install qemu-system-x86): %w", cfg.Slot, err)
		}
		cfg.QEMU = p
	}
	for _, f := range []string{cfg.Kernel, cfg.Initrd, cfg.Flash} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("vm: slot %d: %w", cfg.Slot, err)
		}
	}
	if err := os.MkdirAll(cfg.RunDir, 0o755); err != nil {
		return nil, fmt.Errorf("vm: slot %d: %w", cfg.Slot, err)
	}
	socks := []string{cfg.ConsolePath(), cfg.QMPPath()}
	for _, p := range cfg.Ports {
		socks = append(socks, p.Local)
		if len(p.Remote) > maxSocketPath {
			return nil, fmt.Errorf("vm: slot %d: socket path %s longer than %d bytes", cfg.Slot, p.Remote, maxSocketPath)
		}
	}
	for _, s := range socks {
		if len(s) > maxSocketPath {
			return nil, fmt.Errorf("vm: slot %d: socket path %s longer than %d bytes", cfg.Slot, s, maxSocketPath)
		}
		if err := os.Remove(s); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("vm: slot %d: removing stale socket: %w", cfg.Slot, err)
		}
	}
	if _, err := os.Stat(cfg.LogPath()); err == nil {
		os.Rename(cfg.LogPath(), cfg.LogPath()+".1")
	}
	stderr, err := os.Create(cfg.StderrPath())
	if err != nil {
		return nil, fmt.Errorf("vm: slot %d: %w", cfg.Slot, err)
	}
	defer stderr.Close()

	cmd := exec.Command(cfg.QEMU, Args(cfg)...)
	cmd.Stdout = stderr
	cmd.Stderr = stderr
	// Own process group: a Ctrl-C on the shelf's terminal reaches the shelf,
	// which stops the VMs in order. Pdeathsig: if the shelf dies anyway, the
	// kernel kills QEMU so nothing is left running.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("vm: slot %d: starting qemu: %w", cfg.Slot, err)
	}
	v := &VM{cfg: cfg, cmd: cmd, started: time.Now(), exited: make(chan struct{})}
	go func() {
		v.exitErr = cmd.Wait()
		close(v.exited)
	}()

	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	dctx, cancelExit := v.cancelOnExit(dctx)
	defer cancelExit()
	v.qmp, err = qmp.Dial(dctx, cfg.QMPPath())
	if err != nil {
		v.kill()
		return nil, fmt.Errorf("vm: slot %d: %w%s", cfg.Slot, err, v.stderrTail())
	}
	v.eventsDone = make(chan struct{})
	go v.watchEvents()
	v.console, err = DialConsole(dctx, cfg.ConsolePath())
	if err != nil {
		v.kill()
		return nil, fmt.Errorf("vm: slot %d: %w%s", cfg.Slot, err, v.stderrTail())
	}
	return v, nil
}

// cancelOnExit returns a context that also ends when QEMU exits.
func (v *VM) cancelOnExit(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-v.exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

func (v *VM) stderrTail() string {
	b, _ := os.ReadFile(v.cfg.StderrPath())
	if len(b) == 0 {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "; qemu said: " + string(b)
}

// Config returns the VM's configuration.
func (v *VM) Config() Config { return v.cfg }

// Console returns the console client.
func (v *VM) Console() *Console { return v.console }

// QMP returns the QMP client.
func (v *VM) QMP() *qmp.Client { return v.qmp }

// Pid is QEMU's process id.
func (v *VM) Pid() int { return v.cmd.Process.Pid }

// Started is when QEMU was started.
func (v *VM) Started() time.Time { return v.started }

// Exited is closed when QEMU has exited.
func (v *VM) Exited() <-chan struct{} { return v.exited }

// Running reports whether QEMU is still running.
func (v *VM) Running() bool {
	select {
	case <-v.exited:
		return false
	default:
		return true
	}
}

// WaitBoot waits until boot number n (1 for the first boot, 2 after one
// reset...) has printed its banner and prompt.
func (v *VM) WaitBoot(ctx context.Context, n int) error {
	ctx, cancel := v.cancelOnExit(ctx)
	defer cancel()
	if err := v.console.WaitBoot(ctx, n); err != nil {
		if !v.Running() {
			return fmt.Errorf("vm: slot %d: qemu exited (%v) before boot %d reached the prompt%s", v.cfg.Slot, v.exitErr, n, v.stderrTail())
		}
		return fmt.Errorf("vm: slot %d: boot %d: %w", v.cfg.Slot, n, err)
	}
	return nil
}

// State asks QEMU (QMP query-status) and the console what the blade does.
func (v *VM) State(ctx context.Context) State {
	if !v.Running() {
		return Down
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := v.qmp.Status(ctx)
	if err != nil {
		if !v.Running() {
			return Down
		}
		return Hung // QMP does not answer: QEMU itself is stuck
	}
	if !st.Running {
		return Hung
	}
	if v.console.Up() {
		return Up
	}
	return Booting
}

// Hang stops the VM's CPU (QMP stop): the blade hangs, links stay up.
func (v *VM) Hang(ctx context.Context) error { return v.qmp.Execute(ctx, "stop", nil, nil) }

// Reset resets the machine (QMP system_reset). With -no-reboot QEMU then exits with the
// reason "host-qmp-system-reset", as a board whose reset line was pulled.
func (v *VM) Reset(ctx context.Context) error { return v.qmp.Execute(ctx, "system_reset", nil, nil) }

// Resume continues a hung VM.
func (v *VM) Resume(ctx context.Context) error { return v.qmp.Execute(ctx, "cont", nil, nil) }

// SetLink sets a port's link state (QMP set_link on the device).
func (v *VM) SetLink(ctx context.Context, port string, up bool) error {
	return v.qmp.SetLink(ctx, port, up)
}

// Stop ends the VM: QMP quit, then SIGKILL if QEMU has not exited within a
// few seconds. It is safe to call more than once.
func (v *VM) Stop(ctx context.Context) error {
	v.stopOnce.Do(func() {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		v.qmp.Execute(qctx, "quit", nil, nil) // error expected: QEMU closes the socket
		cancel()
		select {
		case <-v.exited:
		case <-time.After(3 * time.Second):
			v.kill()
		}
		v.qmp.Close()
		v.console.Close()
	})
	<-v.exited
	return nil
}

// kill SIGKILLs QEMU and its process group.
func (v *VM) kill() {
	pid := v.cmd.Process.Pid
	syscall.Kill(-pid, syscall.SIGKILL)
	v.cmd.Process.Kill()
	<-v.exited
}

// Kill SIGKILLs QEMU at once (no QMP).
func (v *VM) Kill() {
	v.stopOnce.Do(func() {
		v.kill()
		if v.qmp != nil {
			v.qmp.Close()
		}
		if v.console != nil {
			v.console.Close()
		}
	})
}

// Log returns the console log so far (QEMU's logfile).
func (v *VM) Log() string {
	b, _ := os.ReadFile(v.cfg.LogPath())
	return string(b)
}
