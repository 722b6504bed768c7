package dba

import (
	"errors"
	"fmt"
	"time"
)

// Quantum is the EPON time quantum every DBA time is counted in.
const Quantum = 16 * time.Nanosecond

// Per-frame and per-window overheads in bytes of line time.
const (
	// FrameOverhead is the preamble/SFD (8) and minimum inter-packet gap
	// (12) every Ethernet frame costs on the line; ONUs count it in the
	// queue lengths they report (802.3 64.3.2.4).
	FrameOverhead = 20
	// ReportBytes is the REPORT MPCPDU (64) plus its FrameOverhead, which
	// every window carries at its end.
	ReportBytes = 64 + FrameOverhead
)

// Config describes one PON's upstream channel and the DBA limits.
type Config struct {
	// ONUs is the number of registered ONUs the cycle is shared by.
	ONUs int
	// LineRate in bit/s (1e9 for 1G-EPON).
	LineRate int64
	// Guard is the idle time between two bursts (laser on/off, AGC and
	// CDR lock), in quanta.
	Guard int64
	// MaxCycle bounds the polling cycle, in quanta.
	MaxCycle int64
	// MaxWindow is the most data bytes (frames with their overhead, the
	// REPORT not included) one window may carry under limited service;
	// 0 derives it from MaxCycle: the cycle minus N guards and reports,
	// shared equally.
	MaxWindow int
}

// Validate checks the configuration and fills MaxWindow when zero.
func (c *Config) Validate() error {
	switch {
	case c.ONUs < 1 || c.ONUs > 32767:
		return fmt.Errorf("dba: %d ONUs, want 1..32767", c.ONUs)
	case c.LineRate < 1e6:
		return fmt.Errorf("dba: line rate %d bit/s, want >= 1e6", c.LineRate)
	case c.Guard < 0:
		return fmt.Errorf("dba: negative guard time %d", c.Guard)
	case c.MaxCycle <= 0:
		return fmt.Errorf("dba: max cycle %d quanta, want > 0", c.MaxCycle)
	case c.MaxWindow < 0:
		return fmt.Errorf("dba: negative max window %d", c.MaxWindow)
	}
	if c.MaxWindow == 0 {
		per := c.MaxCycle/int64(c.ONUs) - c.Guard - c.BytesToQuanta(ReportBytes)
		c.MaxWindow = c.QuantaToBytes(per)
	}
	if c.MaxWindow < ReportBytes {
		return fmt.Errorf("dba: max window %d bytes leaves no room for data", c.MaxWindow)
	}
	// A GATE's length field is 16 bits of quanta.
	if c.BytesToQuanta(c.MaxWindow+ReportBytes) > 0xffff {
		return fmt.Errorf("dba: max window %d bytes exceeds a GATE's 65535 quanta", c.MaxWindow)
	}
	return nil
}

// BytesToQuanta is the line time of n bytes, rounded up to whole quanta.
func (c *Config) BytesToQuanta(n int) int64 {
	bitsPerQ := c.LineRate * int64(Quantum) // bits per quantum * 1e9
	return (int64(n)*8*int64(time.Second) + bitsPerQ - 1) / bitsPerQ
}

// QuantaToBytes is how many whole bytes fit in q quanta of line time.
func (c *Config) QuantaToBytes(q int64) int {
	if q <= 0 {
		return 0
	}
	return int(q * c.LineRate * int64(Quantum) / (8 * int64(time.Second)))
}

// MaxGrantBytes is the most data bytes one GATE can grant (its 16-bit
// length in quanta, less the REPORT).
func (c *Config) MaxGrantBytes() int {
	return c.QuantaToBytes(0xffff) - ReportBytes
}

// Report is what the OLT learnt from an ONU's burst: the REPORT it
// carried and the data the OLT received in it.
type Report struct {
	ONU int
	// Now is the OLT time (quanta) the REPORT arrived: the end of the
	// burst that carried it.
	Now int64
	// Queued is the ONU's queue occupancy in bytes (frames and their
	// FrameOverhead) when it built the REPORT.
	Queued int
	// Aligned, when not zero, is the second queue set: the bytes of
	// whole frames at the head of the queue up to the threshold the OLT
	// configured (the ONU's MaxWindow), so a capped grant can be filled
	// exactly.
	Aligned int
	// Received is the data bytes (with FrameOverhead) the OLT received in
	// the burst; Granted is what that burst's window allowed.
	Received int
	Granted  int
}

// Algorithm sizes an ONU's next window. The same code runs in the OLT
// (on REPORTs off the wire) and in the simulator.
type Algorithm interface {
	// Name is the short name used on the command line and in results.
	Name() string
	// Size returns the data bytes (FrameOverhead included, REPORT not) to
	// grant the ONU in a window whose first bit reaches the OLT at start
	// (quanta).
	Size(r Report, start int64) int
}

// ErrUnknownAlgorithm is returned by New for a name it does not know.
var ErrUnknownAlgorithm = errors.New("unknown DBA algorithm")

// Names lists the algorithms New knows.
var Names = []string{"fixed", "gated", "limited", "cgoa"}

// New returns the algorithm called name for cfg (validated first).
func New(name string, cfg Config) (Algorithm, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch name {
	case "fixed":
		return &Fixed{cfg: cfg}, nil
	case "gated":
		return &Gated{cfg: cfg}, nil
	case "limited":
		return &Limited{cfg: cfg}, nil
	case "cgoa":
		return NewCGOA(cfg), nil
	}
	return nil, fmt.Errorf("dba: %q (want one of %v): %w", name, Names, ErrUnknownAlgorithm)
}

// Fixed is IPACT fixed service: every window is MaxWindow whatever the
// ONU reports (a TDMA baseline with a constant cycle).
type Fixed struct{ cfg Config }

// Name implements Algorithm.
func (*Fixed) Name() string { return "fixed" }

// Size implements Algorithm.
func (f *Fixed) Size(Report, int64) int { return f.cfg.MaxWindow }

// Gated is IPACT gated service: grant what was reported, bounded only by
// the GATE's length field. Lowest delay, but one ONU can stretch the cycle.
type Gated struct{ cfg Config }

// Name implements Algorithm.
func (*Gated) Name() string { return "gated" }

// Size implements Algorithm.
func (g *Gated) Size(r Report, _ int64) int { return min(r.Queued, g.cfg.MaxGrantBytes()) }

// Limited is IPACT limited service (Kramer, Mukherjee, Pesavento 2002):
// grant what was reported, at most MaxWindow, so the cycle never exceeds
// MaxCycle. The reference DBA.
type Limited struct{ cfg Config }

// Name implements Algorithm.
func (*Limited) Name() string { return "limited" }

// Size implements Algorithm.
func (l *Limited) Size(r Report, _ int64) int { return min(r.Queued, l.cfg.MaxWindow) }
