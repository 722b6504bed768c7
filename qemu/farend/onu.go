package farend

import (
	"fmt"
	"net"
	"sync/atomic"

	"github.com/cgoa/cgoa/blades/epon/onu"
)

// DefaultONUs is how many ONUs the shelf puts behind each PON port by default: enough to
// exercise discovery collisions and ranging, few enough for a TCG shelf on two cores.
const DefaultONUs = 4

// ONU is the far end of a PON port: one host process running the ONUs of that PON (MPCP ONU
// state machines, REPORTs from their queues, upstream bursts only inside their grants, OAM
// responders, per-ONU fibre delays) over the unix-datagram PON link in ponlink framing.
type ONU struct {
	pon *Endpoint
	em  atomic.Pointer[onu.Emulator]
}

// ONUConfig places the emulated ONUs: n of them, the i-th at DistanceKm[i] (spread over
// 0..20 km when DistanceKm is short), with MACs 02:0e:<slot>:<pon>:00:<i+1>.
type ONUConfig struct {
	Slot, PON  int
	N          int
	DistanceKm []float64
}

// ListenONU binds the PON-side socket local (peer: the blade's pon socket) and starts the
// emulated ONUs, powered on.
func ListenONU(name, local, remote string, cfg ONUConfig) (*ONU, error) {
	if cfg.N <= 0 {
		cfg.N = DefaultONUs
	}
	if cfg.N > onu.MaxEmulated {
		return nil, fmt.Errorf("farend: %s: %d ONUs, at most %d on a PON", name, cfg.N, onu.MaxEmulated)
	}
	o := &ONU{}
	pon, err := Listen(name, local, remote, func(f []byte) {
		if em := o.em.Load(); em != nil {
			em.HandleDatagram(f) // not ponlink: counted by the emulator and dropped
		}
	})
	if err != nil {
		return nil, err
	}
	o.pon = pon
	var onus []onu.Emulated
	for i := 0; i < cfg.N; i++ {
		d := 20 * float64(i) / float64(max(1, cfg.N-1))
		if i < len(cfg.DistanceKm) {
			d = cfg.DistanceKm[i]
		}
		mac := net.HardwareAddr{0x02, 0x0e, byte(cfg.Slot), byte(cfg.PON), 0, byte(i + 1)}
		onus = append(onus, onu.Emulated{Config: onu.Config{MAC: mac, Seed: uint64(cfg.Slot<<16 | cfg.PON<<8 | i + 1)}, DistanceKm: d})
	}
	em, err := onu.NewEmulator(onus, func(b []byte) error { return pon.Send(b) })
	if err != nil {
		pon.Close()
		return nil, fmt.Errorf("farend: %s: %w", name, err)
	}
	em.Start()
	if err := em.PowerOnAll(); err != nil {
		em.Close()
		pon.Close()
		return nil, fmt.Errorf("farend: %s: %w", name, err)
	}
	o.em.Store(em)
	return o, nil
}

// PON is the endpoint facing the blade.
func (o *ONU) PON() *Endpoint { return o.pon }

// Emulator is the emulated ONUs (traffic, faults, counters: see blades/epon/onu).
func (o *ONU) Emulator() *onu.Emulator { return o.em.Load() }

// ONUTraffic is one emulated ONU's upstream test traffic so far.
type ONUTraffic struct {
	MAC string `json:"mac"`
	onu.TrafficStats
}

// SetTraffic makes every emulated ONU of the PON offer numbered upstream frames
// (blades/epon/onu.NumberedFrame, one sequence per ONU) of size bytes at rate bit/s of
// frame bytes, in its grants; rate 0 stops them. The OLT counts them per ONU (show onu:
// rx_test_frames, rx_data_lost), Traffic says how many were sent.
func (o *ONU) SetTraffic(rate int64, size int) error {
	em := o.em.Load()
	for i := 0; i < em.Len(); i++ {
		if err := em.SetTraffic(i, onu.Traffic{Rate: rate, Size: size}); err != nil {
			return fmt.Errorf("farend: %s: ONU %d: %w", o.pon.Name(), i, err)
		}
	}
	return nil
}

// Traffic returns each emulated ONU's test traffic counters, in ONU order.
func (o *ONU) Traffic() []ONUTraffic {
	em := o.em.Load()
	out := make([]ONUTraffic, em.Len())
	for i := range out {
		st, _ := em.Traffic(i)
		out[i] = ONUTraffic{MAC: em.MAC(i).String(), TrafficStats: st}
	}
	return out
}

// DyingGasp makes emulated ONU i send a dying gasp in its next grant and power off, as on
// a power cut; it reports whether the ONU was registered (had anyone to tell).
func (o *ONU) DyingGasp(i int) (bool, error) {
	var sent bool
	err := o.em.Load().Do(i, func(u *onu.ONU) { sent = u.DyingGasp() })
	return sent, err
}

// PowerOn powers emulated ONU i on (after a dying gasp, say); it registers again.
func (o *ONU) PowerOn(i int) error { return o.em.Load().Do(i, (*onu.ONU).PowerOn) }

// SetUp sets the PON fibre up or down: while it is down no frame crosses, so the OLT times the
// ONUs out and they register again once it is back.
func (o *ONU) SetUp(up bool) { o.pon.SetUp(up) }

// Close stops the ONUs and closes the socket.
func (o *ONU) Close() error {
	if em := o.em.Load(); em != nil {
		em.Close()
	}
	return o.pon.Close()
}
