package shelf

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

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
}

// DefaultHATimers suit a TCG shelf on a small host.
const DefaultHATimers = "100msx5"

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
}

type farEnd interface {
	SetUp(bool)
	Close() error
}

type blade struct {
	b     topology.Blade
	vm    *vm.VM // nil while pulled
	info  Info   // what the blade reported of itself, for the boot infoBoot
	iboot int
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
	run, err := filepath.Abs(opts.RunDir)
	if err != nil {
		return nil, err
	}
	for _, b := range opts.Topology.Blades {
		img := opts.Artifacts.Image(string(b.Role))
		if _, err := os.Stat(img); err != nil {
			return nil, fmt.Errorf("shelf: slot %d: image missing (run `make image ROLE=%s`): %w", b.Slot, b.Role, err)
		}
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
	}
	if err := os.WriteFile(filepath.Join(run, "topology.yaml"), []byte(toYAML(s.topo)), 0o644); err != nil {
		return nil, fmt.Errorf("shelf: %w", err)
	}
	for _, b := range s.topo.Blades {
		s.blades[b.Slot] = &blade{b: b}
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

// config is the VM configuration of a slot.
func (s *Shelf) config(b topology.Blade) (vm.Config, error) {
	cfg := vm.Config{
		QEMU: s.opts.QEMU, Kernel: s.opts.Artifacts.Kernel, Initrd: s.opts.Artifacts.Image(string(b.Role)),
		Role: string(b.Role), Shelf: s.topo.Number, Slot: b.Slot, RunDir: s.runDir, MemoryMiB: s.opts.MemoryMiB,
		Append: fmt.Sprintf("cgoa.shelfmap=%s cgoa.key=%s cgoa.ha=%s", s.ShelfMap(), s.key, s.opts.HATimers),
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

// insert starts the VM of a slot (opMu held).
func (s *Shelf) insert(ctx context.Context, slot int) error {
	s.mu.Lock()
	bl := s.blades[slot]
	s.mu.Unlock()
	cfg, err := s.config(bl.b)
	if err != nil {
		return fmt.Errorf("shelf: slot %d: %w", slot, err)
	}
	v, err := vm.Start(ctx, cfg)
	if err != nil {
		return fmt.Errorf("shelf: %w", err)
	}
	s.mu.Lock()
	bl.vm = v
	bl.info, bl.iboot = Info{}, 0
	s.mu.Unlock()
	fmt.Fprintf(s.log, "slot %d: %s inserted (qemu pid %d)\n", slot, bl.b.Role, v.Pid())
	go s.watch(slot, v)
	return nil
}

// watch notices a blade whose QEMU ended by itself (poweroff, crash) and
// drops the carrier of its channels, as a pulled blade does.
func (s *Shelf) watch(slot int, v *vm.VM) {
	<-v.Exited()
	s.mu.Lock()
	bl := s.blades[slot]
	mine := !s.closed && bl.vm == v
	if mine {
		bl.vm = nil
	}
	s.mu.Unlock()
	if !mine {
		return // pulled or restarted on purpose; that path set the links
	}
	fmt.Fprintf(s.log, "slot %d: qemu exited by itself; its links are down\n", slot)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.applySlot(ctx, slot)
	v.Stop(ctx) // release QMP and console
}

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
	var errs []error
	for _, c := range s.topo.Channels {
		if c.A.Slot == slot || c.B.Slot == slot {
			errs = append(errs, s.apply(ctx, c))
		}
	}
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
		v, err := s.vmOf(b.Slot)
		if err != nil {
			continue
		}
		if err := v.WaitBoot(ctx, max(1, v.Console().Boots())); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
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
	v, err := s.vmOf(slot)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.blades[slot].vm = nil
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
