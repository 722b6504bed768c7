package shelf

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cgoa/cgoa/image"
	"github.com/cgoa/cgoa/image/bootrom"
	"github.com/cgoa/cgoa/image/flash"
	"github.com/cgoa/cgoa/qemu/farend"
	"github.com/cgoa/cgoa/qemu/topology"
	"github.com/cgoa/cgoa/qemu/vm"
)

// Options configure a shelf.
type Options struct {
	Topology  *topology.Shelf
	Artifacts vm.Artifacts // kernel and images
	RunDir    string       // default <build>/shelf/<name>
	QEMU      string       // qemu binary; PATH lookup when empty
	MemoryMiB int          // per blade; default 256
	Log       io.Writer    // events (kills, cuts...); nil = discard
	// HATimers are the blades' HA heartbeat interval and misses ("INTERVALxMISSES"). TCG
	// emulation of five blades on two cores delays timers by tens of milliseconds, so the
	// default is looser than on hardware: DefaultHATimers.
	HATimers string
	// TrialTimeout is the boot ROM's trial watchdog: a trial boot whose image has not
	// confirmed itself within it is reset, and the boot ROM falls back to the previous bank.
	// Default DefaultTrialTimeout.
	TrialTimeout time.Duration
	// KeepFlash keeps the flash files of an earlier run of the same run directory (the
	// blades boot what they were updated to); otherwise every blade is factory-flashed anew
	// with build/images/<role>.img.
	KeepFlash bool
	// STP is the hubs' spanning-tree mode at boot (cgoa.stp=): "protected", "independent" or
	// "off". Default "off": the hubs' uplinks end at separate host sinks, so the wiring has
	// no loop, and every uplink forwards from boot (tests that put kernel STP bridges behind
	// the uplinks ask for a mode).
	STP string
}

// DefaultTrialTimeout covers a blade's boot and HA join under TCG on a loaded host.
const DefaultTrialTimeout = 5 * time.Minute

// DefaultHATimers suit a TCG shelf on a small host: a failure is detected in 1 s. Measured on
// this project's 2-core host (go run ./qemu/cmd/bench failover -kills N -v -ha-timers T):
//   - 200msx5: outages 1.0-1.3 s (one of 8 2.6 s); the pulled blade's return unnoticed
//     (longest gap while it rejoined 67-229 ms, 8 of 8).
//   - 100msx4: outages 0.46-0.86 s (p50 0.68 s, 18 of 20), but while a blade boots the
//     emulated CPUs stall long enough for the active to miss 4 intervals: gaps of 1.7-6.0 s
//     in 7 of 17 rejoins.
//   - 50msx4: outages 0.26-0.41 s (5 of 6), rejoin gaps up to 2.5 s (the active's quorum
//     lease flaps: renewals miss their round trip).
//
// A standby's return must not interrupt the service, so the default is the slowest of them.
const DefaultHATimers = "200msx5"

// Shelf is a running shelf.
type Shelf struct {
	opts   Options
	topo   *topology.Shelf
	runDir string
	log    io.Writer

	opMu sync.Mutex // serialises faults so link state stays consistent

	mu      sync.Mutex
	blades  map[int]*blade
	farends map[string]farEnd
	cut     map[topology.Channel]bool
	closed  bool
	// key is the shelf key that authenticates HA traffic between the blades: made anew for
	// each shelf run and handed to each blade on its kernel command line, as a shelf manager
	// provisions blades it admits.
	key string
	rom bootrom.ROM
}

type farEnd interface {
	SetUp(bool)
	Close() error
}

type blade struct {
	b     topology.Blade
	vm    *vm.VM // nil while pulled, or between a reset and the next boot
	info  Info   // what the blade reported of itself, for the boot iboot
	iboot int
	// launches counts boots through the boot ROM since the blade was inserted; every boot
	// is a QEMU process of its own (a reset ends QEMU, see vm.Args).
	launches    int
	relaunching bool          // a reset ended QEMU and the boot ROM boots the blade again
	changed     chan struct{} // closed (and replaced) when vm or launches change
	boot        bootrom.Boot  // the boot ROM's last decision
	problem     string        // why the blade does not run, when the shelf knows
	craftPort   int           // host port on 127.0.0.1 forwarded to the craft port
}

// notify wakes whoever waits for a change of bl (mu held).
func (bl *blade) notify() {
	close(bl.changed)
	bl.changed = make(chan struct{})
}

// Info is what a blade reports of itself (show slot/version json).
type Info struct {
	Version  string `json:"version,omitempty"`
	Revision string `json:"revision,omitempty"`
	Serial   string `json:"serial,omitempty"`
	Hostname string `json:"hostname,omitempty"`
}

// ErrNoSlot is returned for a slot the topology does not have.
var ErrNoSlot = errors.New("shelf: no such slot")

// ErrPulled is returned for operations on a pulled blade.
var ErrPulled = errors.New("shelf: blade is pulled (use restart)")

// New prepares the run directory and far ends; Start boots the blades.
func New(opts Options) (*Shelf, error) {
	if opts.Topology == nil {
		opts.Topology = topology.Default()
	}
	if opts.RunDir == "" {
		opts.RunDir = filepath.Join(opts.Artifacts.Build, "shelf", opts.Topology.Name)
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if opts.HATimers == "" {
		opts.HATimers = DefaultHATimers
	}
	if opts.STP == "" {
		opts.STP = "off"
	}
	run, err := filepath.Abs(opts.RunDir)
	if err != nil {
		return nil, err
	}
	if opts.TrialTimeout == 0 {
		opts.TrialTimeout = DefaultTrialTimeout
	}
	for _, b := range opts.Topology.Blades {
		img := opts.Artifacts.SignedImage(string(b.Role))
		if _, err := os.Stat(img); err != nil {
			return nil, fmt.Errorf("shelf: slot %d: image missing (run `make image ROLE=%s`): %w", b.Slot, b.Role, err)
		}
	}
	pub, err := image.LoadPublicKey(opts.Artifacts.PublicKey())
	if err != nil {
		return nil, fmt.Errorf("shelf: the boot ROM's key (run `make keys`): %w", err)
	}
	if err := os.MkdirAll(run, 0o755); err != nil {
		return nil, fmt.Errorf("shelf: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("shelf: key: %w", err)
	}
	s := &Shelf{
		opts: opts, topo: opts.Topology, runDir: run, log: opts.Log,
		blades: map[int]*blade{}, farends: map[string]farEnd{}, cut: map[topology.Channel]bool{},
		key: hex.EncodeToString(key),
		rom: bootrom.ROM{Trusted: []ed25519.PublicKey{pub}, BankSize: flash.DefaultBankSize,
			CacheDir: filepath.Join(run, "bootrom")},
	}
	s.rom.Log = func(format string, args ...any) { fmt.Fprintf(s.log, format+"\n", args...) }
	if err := os.WriteFile(filepath.Join(run, "topology.yaml"), []byte(toYAML(s.topo)), 0o644); err != nil {
		return nil, fmt.Errorf("shelf: %w", err)
	}
	for _, b := range s.topo.Blades {
		s.blades[b.Slot] = &blade{b: b, changed: make(chan struct{})}
		if err := s.factoryFlash(b); err != nil {
			return nil, err
		}
	}
	for _, c := range s.topo.HostEnds() {
		local := s.hostSock(c.B.Port)
		remote := s.portSock(c.A.Slot, c.A.Port)
		var fe farEnd
		var err error
		if c.Kind == topology.PON {
			fe, err = farend.ListenONU(c.B.Port, local, remote, farend.ONUConfig{Slot: c.A.Slot, PON: ponIndex(c.A.Port)})
		} else {
			fe, err = farend.Listen(c.B.Port, local, remote, nil)
		}
		if err != nil {
			s.closeFarEnds()
			return nil, fmt.Errorf("shelf: %w", err)
		}
		fe.SetUp(false) // up once its blade runs
		s.farends[c.B.Port] = fe
	}
	return s, nil
}

func toYAML(t *topology.Shelf) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "name: %s\nshelf: %d\nslots:\n", t.Name, t.Number)
	for _, b := range t.Blades {
		fmt.Fprintf(&sb, "  - slot: %d\n    role: %s\n", b.Slot, b.Role)
		if b.Role == topology.EPON {
			fmt.Fprintf(&sb, "    pon: %d\n", b.PON)
		}
		if b.Hub() && !b.Uplink {
			sb.WriteString("    uplink: false\n")
		}
	}
	return sb.String()
}

// ponIndex is i of "pon<i>".
func ponIndex(port string) int {
	var i int
	fmt.Sscanf(port, "pon%d", &i)
	return i
}

// ShelfMap is the shelf map the blades get ("SLOT:ROLE,...", see blades/shelf).
func (s *Shelf) ShelfMap() string {
	var parts []string
	for _, b := range s.topo.Blades {
		parts = append(parts, fmt.Sprintf("%d:%s", b.Slot, b.Role))
	}
	return strings.Join(parts, ",")
}

// RunDir is the shelf's run directory.
func (s *Shelf) RunDir() string { return s.runDir }

// Topology is the shelf's topology.
func (s *Shelf) Topology() *topology.Shelf { return s.topo }

func (s *Shelf) portSock(slot int, port string) string {
	return filepath.Join(s.runDir, fmt.Sprintf("s%d-%s.sock", slot, port))
}

func (s *Shelf) hostSock(name string) string {
	return filepath.Join(s.runDir, "host-"+name+".sock")
}

// FlashPath is the flash disk file of a slot.
func (s *Shelf) FlashPath(slot int) string {
	return filepath.Join(s.runDir, fmt.Sprintf("slot%d.flash", slot))
}

// factoryFlash gives a blade its flash disk: bank A holds the role's signed image.
func (s *Shelf) factoryFlash(b topology.Blade) error {
	path := s.FlashPath(b.Slot)
	if !s.opts.KeepFlash {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("shelf: %w", err)
		}
	}
	raw, err := os.ReadFile(s.opts.Artifacts.SignedImage(string(b.Role)))
	if err != nil {
		return fmt.Errorf("shelf: slot %d: %w", b.Slot, err)
	}
	flashed, err := bootrom.FactoryFlash(path, s.rom.BankSize, raw, s.rom.Trusted)
	if err != nil {
		return fmt.Errorf("shelf: slot %d: factory flash: %w", b.Slot, err)
	}
	if flashed {
		fmt.Fprintf(s.log, "slot %d: flash factory-flashed with %s\n", b.Slot, s.opts.Artifacts.SignedImage(string(b.Role)))
	}
	return nil
}

// config is the VM configuration of a slot, booting what the boot ROM chose.
func (s *Shelf) config(b topology.Blade, boot bootrom.Boot, craftPort int) (vm.Config, error) {
	craftMAC, _ := topology.MAC(s.topo.Number, b.Slot, "craft0")
	cfg := vm.Config{
		QEMU: s.opts.QEMU, Kernel: boot.Kernel, Initrd: boot.Initrd,
		Role: string(b.Role), Shelf: s.topo.Number, Slot: b.Slot, RunDir: s.runDir, MemoryMiB: s.opts.MemoryMiB,
		Append: fmt.Sprintf("cgoa.shelfmap=%s cgoa.key=%s cgoa.ha=%s cgoa.stp=%s", s.ShelfMap(), s.key, s.opts.HATimers, s.opts.STP),
		Flash:  s.FlashPath(b.Slot),
		Craft:  &vm.Craft{HostPort: craftPort, MAC: craftMAC},
	}
	for _, port := range s.topo.Ports(b.Slot) {
		peer, _, _ := s.topo.Peer(b.Slot, port)
		dev, err := topology.PCIDevice(port)
		if err != nil {
			return cfg, err
		}
		mac, _ := topology.MAC(s.topo.Number, b.Slot, port)
		remote := s.hostSock(peer.Port)
		if !peer.Host() {
			remote = s.portSock(peer.Slot, peer.Port)
		}
		cfg.Ports = append(cfg.Ports, vm.Port{Name: port, PCIDevice: dev, MAC: mac, Local: s.portSock(b.Slot, port), Remote: remote})
	}
	return cfg, nil
}

// Start boots every blade in parallel. It returns once every QEMU runs
// (use WaitUp for the prompts).
func (s *Shelf) Start(ctx context.Context) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, len(s.topo.Blades))
	for i, b := range s.topo.Blades {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.insert(ctx, b.Slot)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	s.applyAll(ctx)
	return nil
}

// insert inserts a blade: it powers on and boots through the boot ROM (opMu held).
func (s *Shelf) insert(ctx context.Context, slot int) error {
	s.mu.Lock()
	bl := s.blades[slot]
	bl.launches, bl.relaunching, bl.problem = 0, false, ""
	s.mu.Unlock()
	fmt.Fprintf(s.log, "slot %d: %s inserted\n", slot, bl.b.Role)
	return s.launch(ctx, slot)
}

// launch is one boot of a blade: the boot ROM picks and checks the image, then QEMU starts
// it (opMu held).
func (s *Shelf) launch(ctx context.Context, slot int) error {
	s.mu.Lock()
	bl := s.blades[slot]
	port := bl.craftPort
	s.mu.Unlock()
	fail := func(err error) error {
		s.mu.Lock()
		bl.problem = err.Error()
		bl.notify()
		s.mu.Unlock()
		fmt.Fprintf(s.log, "slot %d: %v\n", slot, err)
		return err
	}
	boot, err := s.rom.Boot(s.FlashPath(slot), string(bl.b.Role))
	if err != nil {
		return fail(fmt.Errorf("shelf: slot %d: %w", slot, err))
	}
	if port == 0 {
		if port, err = freePort(); err != nil {
			return fail(fmt.Errorf("shelf: slot %d: craft port: %w", slot, err))
		}
	}
	cfg, err := s.config(bl.b, boot, port)
	if err != nil {
		return fail(fmt.Errorf("shelf: slot %d: %w", slot, err))
	}
	v, err := vm.Start(ctx, cfg)
	if err != nil {
		return fail(fmt.Errorf("shelf: %w", err))
	}
	s.mu.Lock()
	bl.vm, bl.boot, bl.craftPort, bl.problem = v, boot, port, ""
	bl.launches++
	bl.info, bl.iboot = Info{}, 0
	bl.notify()
	s.mu.Unlock()
	fmt.Fprintf(s.log, "slot %d: boot %d from bank %v (%s %s%s), qemu pid %d, craft port 127.0.0.1:%d\n", slot, boot.Count,
		boot.Bank, boot.Header.Role, boot.Header.Version, map[bool]string{true: ", trial"}[boot.Trial], v.Pid(), port)
	go s.watch(slot, v)
	if boot.Trial {
		go s.trialWatchdog(slot, v, boot.Bank)
	}
	return nil
}

// freePort picks a free TCP port on the loopback for a craft port forward.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// watch notices a blade whose QEMU ended by itself. A reset (reboot, panic, watchdog)
// boots it again through the boot ROM; anything else (poweroff, a power cut, a crash) drops
// the carrier of its channels, as a pulled blade does.
func (s *Shelf) watch(slot int, v *vm.VM) {
	<-v.Exited()
	reason := v.ExitReason()
	reset := vm.IsReset(reason)
	s.mu.Lock()
	bl := s.blades[slot]
	mine := !s.closed && bl.vm == v
	if mine {
		bl.vm = nil
		bl.relaunching = reset
		bl.notify()
	}
	s.mu.Unlock()
	if !mine {
		return // pulled or restarted on purpose; that path set the links
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The links drop while the blade resets, as a real NIC's do.
	s.applySlot(ctx, slot)
	v.Stop(ctx) // release QMP and console
	if !reset {
		fmt.Fprintf(s.log, "slot %d: qemu exited by itself (%s); its links are down\n", slot, reason)
		return
	}
	fmt.Fprintf(s.log, "slot %d: reset (%s): booting again through the boot ROM\n", slot, reason)
	s.opMu.Lock()
	defer s.opMu.Unlock()
	s.mu.Lock()
	again := bl.relaunching && !s.closed && bl.vm == nil
	bl.relaunching = false
	s.mu.Unlock()
	if !again {
		return // pulled, restarted or closed meanwhile
	}
	if err := s.launch(ctx, slot); err != nil {
		return // logged; the blade stays down
	}
	s.applySlot(ctx, slot)
}

// trialWatchdog is the boot ROM's watchdog for a trial boot (as a BMC's boot watchdog): if
// the image has not confirmed itself within the trial timeout (the boot-control block still
// says the trial is booting), the blade is reset and the boot ROM falls back.
func (s *Shelf) trialWatchdog(slot int, v *vm.VM, bank flash.Bank) {
	s.mu.Lock()
	timeout := s.opts.TrialTimeout
	s.mu.Unlock()
	deadline := time.Now().Add(timeout)
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-v.Exited():
			return
		case <-t.C:
		}
		// A copy the firmware is writing right now fails its CRC and the older one is
		// read: the check is only ever late, never wrong.
		if c, err := s.ReadBCB(slot); err == nil && c.State != flash.TrialBooting {
			fmt.Fprintf(s.log, "slot %d: trial of bank %v ended: active bank %v\n", slot, bank, c.Active)
			return
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(s.log, "slot %d: trial of bank %v not confirmed within %v: the trial watchdog resets the blade\n", slot, bank, timeout)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := v.Reset(ctx); err != nil && v.Running() {
				fmt.Fprintf(s.log, "slot %d: trial watchdog: reset: %v\n", slot, err)
			}
			return
		}
	}
}

// SetTrialTimeout changes the trial watchdog's timeout for the trials booted from now on.
func (s *Shelf) SetTrialTimeout(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.TrialTimeout = d
}

// ReadBCB reads a blade's boot-control block from its flash file.
func (s *Shelf) ReadBCB(slot int) (flash.BCB, error) {
	f, err := os.Open(s.FlashPath(slot))
	if err != nil {
		return flash.BCB{}, err
	}
	defer f.Close()
	c, _, err := flash.Open(readOnly{f}, s.rom.BankSize).ReadBCB()
	return c, err
}

// readOnly lets a read-only file serve as a flash device for reading.
type readOnly struct{ *os.File }

func (readOnly) WriteAt([]byte, int64) (int, error) { return 0, errors.New("read only") }

func (s *Shelf) present(e topology.End) bool {
	if e.Host() {
		return true
	}
	bl := s.blades[e.Slot]
	return bl != nil && bl.vm != nil && bl.vm.Running()
}

// apply sets both ends of a channel to its state: up unless cut or an end
// is pulled. mu must not be held.
func (s *Shelf) apply(ctx context.Context, c topology.Channel) error {
	s.mu.Lock()
	up := !s.cut[c] && s.present(c.A) && s.present(c.B)
	type target struct {
		v    *vm.VM
		port string
	}
	var ts []target
	var fe farEnd
	for _, e := range []topology.End{c.A, c.B} {
		if e.Host() {
			fe = s.farends[e.Port]
			continue
		}
		if bl := s.blades[e.Slot]; bl.vm != nil && bl.vm.Running() {
			ts = append(ts, target{bl.vm, e.Port})
		}
	}
	s.mu.Unlock()
	var errs []error
	for _, t := range ts {
		if err := t.v.SetLink(ctx, t.port, up); err != nil && t.v.Running() {
			errs = append(errs, fmt.Errorf("shelf: slot %d set_link %s: %w", t.v.Config().Slot, t.port, err))
		}
	}
	if fe != nil {
		fe.SetUp(up)
	}
	return errors.Join(errs...)
}

func (s *Shelf) applyAll(ctx context.Context) error {
	var errs []error
	for _, c := range s.topo.Channels {
		errs = append(errs, s.apply(ctx, c))
	}
	return errors.Join(errs...)
}

func (s *Shelf) applySlot(ctx context.Context, slot int) error {
	// All channels at once, as a blade leaving its connector breaks them at once: one after
	// the other, a pulled hub's fourth channel would drop tens of milliseconds after its first
	// (a QMP round trip each, under load), and the peers' fencing waits for the last.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, c := range s.topo.Channels {
		if c.A.Slot == slot || c.B.Slot == slot {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.apply(ctx, c); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (s *Shelf) vmOf(slot int) (*vm.VM, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	bl, ok := s.blades[slot]
	if !ok {
		return nil, fmt.Errorf("%w: %d", ErrNoSlot, slot)
	}
	if bl.vm == nil || !bl.vm.Running() {
		return nil, fmt.Errorf("slot %d: %w", slot, ErrPulled)
	}
	return bl.vm, nil
}

// VM returns the running VM of a slot.
func (s *Shelf) VM(slot int) (*vm.VM, error) { return s.vmOf(slot) }

// WaitUp waits until every present blade has reached the prompt of its
// current boot.
func (s *Shelf) WaitUp(ctx context.Context) error {
	var errs []error
	for _, b := range s.topo.Blades {
		s.mu.Lock()
		bl := s.blades[b.Slot]
		present, n := bl.vm != nil || bl.relaunching, bl.launches
		s.mu.Unlock()
		if !present {
			continue
		}
		if err := s.WaitBoot(ctx, b.Slot, max(1, n)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Boots is how many times a blade has booted through the boot ROM since it was inserted.
func (s *Shelf) Boots(slot int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if bl, ok := s.blades[slot]; ok {
		return bl.launches
	}
	return 0
}

// LastBoot is the boot ROM's last decision for a blade.
func (s *Shelf) LastBoot(slot int) bootrom.Boot {
	s.mu.Lock()
	defer s.mu.Unlock()
	if bl, ok := s.blades[slot]; ok {
		return bl.boot
	}
	return bootrom.Boot{}
}

// WaitBoot waits until boot n of a blade (counted through the boot ROM since the blade
// was inserted, from 1) has reached its prompt, or a later boot has started.
func (s *Shelf) WaitBoot(ctx context.Context, slot, n int) error {
	for {
		s.mu.Lock()
		bl, ok := s.blades[slot]
		if !ok {
			s.mu.Unlock()
			return fmt.Errorf("%w: %d", ErrNoSlot, slot)
		}
		v, launches, changed, relaunching, problem := bl.vm, bl.launches, bl.changed, bl.relaunching, bl.problem
		s.mu.Unlock()
		if launches > n {
			return nil
		}
		if launches == n && v != nil && v.Running() {
			wctx, cancel := context.WithCancel(ctx)
			go func() {
				select {
				case <-changed:
					cancel()
				case <-wctx.Done():
				}
			}()
			err := v.WaitBoot(wctx, 1)
			cancel()
			if err == nil {
				return nil
			}
			if ctx.Err() != nil {
				return fmt.Errorf("slot %d: boot %d: %w", slot, n, err)
			}
			continue // QEMU ended or was replaced: look again
		}
		if v == nil && !relaunching {
			if problem != "" {
				return fmt.Errorf("slot %d: down waiting for boot %d: %s", slot, n, problem)
			}
			return fmt.Errorf("slot %d: waiting for boot %d: %w", slot, n, ErrPulled)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("slot %d: waiting for boot %d (at boot %d): %w", slot, n, launches, ctx.Err())
		}
	}
}

// Exec runs a console command on a blade.
func (s *Shelf) Exec(ctx context.Context, slot int, line string) (string, error) {
	v, err := s.vmOf(slot)
	if err != nil {
		return "", err
	}
	return v.Console().Exec(ctx, line)
}

// Kill pulls a blade: its channels lose carrier on both ends, then QEMU quits.
func (s *Shelf) Kill(ctx context.Context, slot int) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	return s.kill(ctx, slot)
}

func (s *Shelf) kill(ctx context.Context, slot int) error {
	s.mu.Lock()
	if bl, ok := s.blades[slot]; ok && bl.vm == nil && bl.relaunching {
		// Pulled between a reset and its next boot: it simply does not boot again.
		bl.relaunching = false
		bl.notify()
		s.mu.Unlock()
		fmt.Fprintf(s.log, "slot %d: pulled while resetting\n", slot)
		return nil
	}
	s.mu.Unlock()
	v, err := s.vmOf(slot)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.blades[slot].vm = nil
	s.blades[slot].notify()
	s.mu.Unlock()
	// Peers first: the carrier drops the moment the blade leaves its connector.
	err = s.applySlot(ctx, slot)
	v.Stop(ctx)
	fmt.Fprintf(s.log, "slot %d: pulled\n", slot)
	return err
}

// Restart reinserts a blade (pulling it first if it runs) and boots it.
func (s *Shelf) Restart(ctx context.Context, slot int) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if _, ok := s.blades[slot]; !ok {
		return fmt.Errorf("%w: %d", ErrNoSlot, slot)
	}
	if _, err := s.vmOf(slot); err == nil {
		if err := s.kill(ctx, slot); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.blades[slot].relaunching = false // a pending reboot is superseded by the reinsertion
	s.mu.Unlock()
	if err := s.insert(ctx, slot); err != nil {
		return err
	}
	return s.applySlot(ctx, slot)
}

// Hang stops a blade's CPU (it stays inserted, links stay up).
func (s *Shelf) Hang(ctx context.Context, slot int) error {
	v, err := s.vmOf(slot)
	if err != nil {
		return err
	}
	fmt.Fprintf(s.log, "slot %d: hung\n", slot)
	return v.Hang(ctx)
}

// Resume continues a hung blade.
func (s *Shelf) Resume(ctx context.Context, slot int) error {
	v, err := s.vmOf(slot)
	if err != nil {
		return err
	}
	fmt.Fprintf(s.log, "slot %d: resumed\n", slot)
	return v.Resume(ctx)
}

func (s *Shelf) channel(slot int, port string) (topology.Channel, error) {
	if _, ok := s.blades[slot]; !ok {
		return topology.Channel{}, fmt.Errorf("%w: %d", ErrNoSlot, slot)
	}
	_, c, ok := s.topo.Peer(slot, port)
	if !ok {
		return c, fmt.Errorf("shelf: slot %d has no port %q (ports: %s)", slot, port, strings.Join(s.topo.Ports(slot), ", "))
	}
	return c, nil
}

// Cut cuts the channel at (slot, port): both ends lose carrier.
func (s *Shelf) Cut(ctx context.Context, slot int, port string) error {
	return s.setCut(ctx, slot, port, true)
}

// Mend repairs a cut channel.
func (s *Shelf) Mend(ctx context.Context, slot int, port string) error {
	return s.setCut(ctx, slot, port, false)
}

func (s *Shelf) setCut(ctx context.Context, slot int, port string, cut bool) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	c, err := s.channel(slot, port)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.cut[c] = cut
	s.mu.Unlock()
	verb := map[bool]string{true: "cut", false: "mended"}[cut]
	fmt.Fprintf(s.log, "channel %s <-> %s %s\n", c.A, c.B, verb)
	return s.apply(ctx, c)
}

// Close stops every VM (in parallel) and the far ends. Nothing of the shelf
// runs afterwards.
func (s *Shelf) Close() error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	var vms []*vm.VM
	for _, bl := range s.blades {
		if bl.vm != nil {
			vms = append(vms, bl.vm)
			bl.vm = nil
		}
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, v := range vms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			v.Stop(ctx)
		}()
	}
	wg.Wait()
	s.closeFarEnds()
	socks, _ := filepath.Glob(filepath.Join(s.runDir, "*.sock"))
	for _, f := range socks {
		if filepath.Base(f) != "control.sock" {
			os.Remove(f)
		}
	}
	return nil
}

func (s *Shelf) closeFarEnds() {
	for _, fe := range s.farends {
		fe.Close()
	}
}

// Uplink returns the host sink at the far end of a hub's uplink0
// ("uplink-s1"), to count what the shelf sends out and to send into it.
func (s *Shelf) Uplink(name string) (*farend.Endpoint, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.farends[name].(*farend.Endpoint)
	return e, ok
}

// ONU returns the ONU emulator at the far end of a PON port ("onu-s5-pon0").
func (s *Shelf) ONU(name string) (*farend.ONU, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.farends[name].(*farend.ONU)
	return o, ok
}

// Logs returns every blade's console log, for test failure output.
func (s *Shelf) Logs() map[int]string {
	logs := map[int]string{}
	for _, b := range s.topo.Blades {
		cfg := vm.Config{RunDir: s.runDir, Slot: b.Slot}
		var sb strings.Builder
		if prev, err := os.ReadFile(cfg.LogPath() + ".1"); err == nil {
			sb.Write(prev)
			sb.WriteString("\n----- (restarted) -----\n")
		}
		cur, _ := os.ReadFile(cfg.LogPath())
		sb.Write(cur)
		if q, _ := os.ReadFile(cfg.StderrPath()); len(q) > 0 {
			sb.WriteString("\n----- qemu stderr -----\n")
			sb.Write(q)
		}
		logs[b.Slot] = sb.String()
	}
	return logs
}

// Pids returns the QEMU pids of the running blades by slot.
func (s *Shelf) Pids() map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	pids := map[int]int{}
	for slot, bl := range s.blades {
		if bl.vm != nil && bl.vm.Running() {
			pids[slot] = bl.vm.Pid()
		}
	}
	return pids
}

func sortedSlots(m map[int]*blade) []int {
	var slots []int
	for s := range m {
		slots = append(slots, s)
	}
	sort.Ints(slots)
	return slots
}
