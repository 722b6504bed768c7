package dba

// Window is one upstream transmission window as the OLT sees it.
type Window struct {
	ONU int
	// Start is the OLT time (quanta) the window's first bit reaches the
	// OLT; the GATE carries Start-RTT, the ONU's local start time.
	Start int64
	// Length in quanta: the data plus the REPORT at the window's end.
	Length int64
	// Data is the granted data bytes (FrameOverhead included).
	Data int
}

// End is the OLT time the window's last bit arrives.
func (w Window) End() int64 { return w.Start + w.Length }

// Poller is IPACT's interleaved polling: on each REPORT it places the
// reporting ONU's next window on the upstream channel right after the
// last window already granted (plus the guard time), or as soon as a GATE
// sent now can reach the ONU, whichever is later; the Algorithm sizes it.
// Windows therefore never overlap at the OLT. The Poller keeps no clock:
// the caller passes the OLT time in each Report.
type Poller struct {
	cfg   Config
	alg   Algorithm
	pacer Pacer // alg, when it paces ONUs
	// free is the OLT time the channel is free: the end of the last
	// window granted.
	free int64
	// Proc is the OLT's REPORT-to-GATE processing time in quanta.
	Proc int64
}

// NewPoller returns a Poller for cfg (validated by the caller, as New
// does) running alg.
func NewPoller(cfg Config, alg Algorithm) *Poller {
	pc, _ := alg.(Pacer)
	return &Poller{cfg: cfg, alg: alg, pacer: pc}
}

// Algorithm returns the DBA the Poller runs.
func (p *Poller) Algorithm() Algorithm { return p.alg }

// Next grants the ONU of r its next window; rtt is that ONU's round-trip
// time in quanta (from ranging).
func (p *Poller) Next(r Report, rtt int64) Window {
	start := max(p.free+p.cfg.Guard, r.Now+p.Proc+rtt)
	data := p.alg.Size(r, start)
	data = max(0, min(data, p.cfg.MaxGrantBytes()))
	w := Window{ONU: r.ONU, Start: start, Length: p.cfg.BytesToQuanta(data + ReportBytes), Data: data}
	p.free = w.End()
	return w
}

// Pacer is implemented by an Algorithm that rate-limits ONUs (CGOA's
// peak-rate buckets): NotBefore is the OLT time from which the ONU's
// next window is worth starting.
type Pacer interface {
	NotBefore(r Report) int64
}

// NotBefore is the OLT time from which the REPORT r (of an ONU whose
// round trip is rtt) should be answered with a GATE: r.Now unless the
// Algorithm paces the ONU and its next window, placed now, would start
// before the ONU may send again. The OLT defers the poll until then
// instead of granting a window the ONU cannot use.
func (p *Poller) NotBefore(r Report, rtt int64) int64 {
	if p.pacer == nil {
		return r.Now
	}
	return max(r.Now, p.pacer.NotBefore(r)-p.Proc-rtt)
}

// Reserve places a window of length quanta that no ONU's grant may
// overlap (the OLT's discovery window, where unregistered ONUs answer at
// random) on the channel: at earliest, or after the last window granted
// plus the guard time if that is later. It returns the window's start;
// later grants follow its end.
func (p *Poller) Reserve(earliest, length int64) int64 {
	start := max(p.free+p.cfg.Guard, earliest)
	p.free = start + max(0, length)
	return start
}
