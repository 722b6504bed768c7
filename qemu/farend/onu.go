package farend

import (
	"fmt"
	"sync/atomic"
)

// ONU emulates the optical network units behind one PON port. For now it
// counts frames in both directions and, when a subscriber socket is given,
// relays frames between the PON and that socket (downstream: OLT to
// subscriber; upstream: subscriber to OLT). MPCP/OAM come with the EPON work.
type ONU struct {
	// Each side's receive goroutine relays to the other side, which may
	// not exist yet while the first is being bound: hence atomics.
	pon  atomic.Pointer[Endpoint] // faces the EPON blade
	user atomic.Pointer[Endpoint] // faces the subscriber side; nil when not relaying
}

// ListenONU binds the PON-side socket local (peer: the blade's pon socket)
// and, when userLocal is not empty, a subscriber-side socket relaying to
// userRemote.
func ListenONU(name, local, remote, userLocal, userRemote string) (*ONU, error) {
	o := &ONU{}
	pon, err := Listen(name, local, remote, func(f []byte) {
		if u := o.user.Load(); u != nil && u.Up() {
			u.Send(f) // counted by the subscriber endpoint; a missing subscriber is not an error here
		}
	})
	if err != nil {
		return nil, err
	}
	o.pon.Store(pon)
	if userLocal != "" {
		u, err := Listen(name+"-user", userLocal, userRemote, func(f []byte) {
			if p := o.pon.Load(); p != nil {
				p.Send(f)
			}
		})
		if err != nil {
			pon.Close()
			return nil, fmt.Errorf("farend: %s: subscriber side: %w", name, err)
		}
		o.user.Store(u)
	}
	return o, nil
}

// PON is the endpoint facing the blade.
func (o *ONU) PON() *Endpoint { return o.pon.Load() }

// Subscriber is the subscriber-side endpoint, nil when not relaying.
func (o *ONU) Subscriber() *Endpoint { return o.user.Load() }

// SetUp sets the ONU's PON side up or down (a dead or unplugged fibre).
func (o *ONU) SetUp(up bool) { o.PON().SetUp(up) }

// Close closes both sides.
func (o *ONU) Close() error {
	err := o.PON().Close()
	if u := o.user.Load(); u != nil {
		if uerr := u.Close(); err == nil {
			err = uerr
		}
	}
	return err
}
