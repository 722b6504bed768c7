package farend

import (
	"fmt"
)

// ONU emulates the optical network units behind one PON port. For now it
// counts frames in both directions and, when a subscriber socket is given,
// relays frames between the PON and that socket (downstream: OLT to
// subscriber; upstream: subscriber to OLT). MPCP/OAM come with the EPON work.
type ONU struct {
	pon  *Endpoint // faces the EPON blade
	user *Endpoint // faces the subscriber side; nil when not relaying
}

// ListenONU binds the PON-side socket local (peer: the blade's pon socket)
// and, when userLocal is not empty, a subscriber-side socket relaying to
// userRemote.
func ListenONU(name, local, remote, userLocal, userRemote string) (*ONU, error) {
	o := &ONU{}
	var err error
	o.pon, err = Listen(name, local, remote, func(f []byte) {
		if o.user != nil && o.user.Up() {
			o.user.Send(f) // counted by the user endpoint; a missing subscriber is not an error here
		}
	})
	if err != nil {
		return nil, err
	}
	if userLocal != "" {
		u, err := Listen(name+"-user", userLocal, userRemote, func(f []byte) {
			o.pon.Send(f)
		})
		if err != nil {
			o.pon.Close()
			return nil, fmt.Errorf("farend: %s: subscriber side: %w", name, err)
		}
		o.user = u
	}
	return o, nil
}

// PON is the endpoint facing the blade.
func (o *ONU) PON() *Endpoint { return o.pon }

// Subscriber is the subscriber-side endpoint, nil when not relaying.
func (o *ONU) Subscriber() *Endpoint { return o.user }

// SetUp sets the ONU's PON side up or down (a dead or unplugged fibre).
func (o *ONU) SetUp(up bool) { o.pon.SetUp(up) }

// Close closes both sides.
func (o *ONU) Close() error {
	err := o.pon.Close()
	if o.user != nil {
		if uerr := o.user.Close(); err == nil {
			err = uerr
		}
	}
	return err
}
