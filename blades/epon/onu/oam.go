package onu

import (
	"encoding/binary"

	"github.com/cgoa/cgoa/netstack/oam"
)

// oamState is the passive end's OAM discovery state (802.3 57.5.3).
type oamState int

const (
	oamPassiveWait oamState = iota
	oamSendLocalRemote
	oamSendLocalRemoteOK
	oamSendAny
)

func (s oamState) String() string {
	return [...]string{"passive-wait", "send-local-remote", "send-local-remote-ok", "send-any"}[s]
}

// Variable descriptors (802.3 clause 30 attributes, branch 7) the
// responder answers.
const (
	leafFramesTransmittedOK = 0x0002
	leafFramesReceivedOK    = 0x0005
	// indicationUnsupported is the variable indication for an attribute
	// not supported (802.3 table 57-17).
	indicationUnsupported = 0x21
)

// oamResponder is the ONU's OAM sublayer in passive mode: it waits for the
// OLT's Information, completes discovery, keeps the link alive, answers
// variable requests, and sends link events and the dying gasp.
type oamResponder struct {
	o           *ONU
	state       oamState
	remote      oam.InfoTLV
	remoteFlags oam.Flags
	lastTx      int64
	lastRx      int64
	seq         uint16
	// loopback: remote loopback is on (the OLT's Loopback Control):
	// the parser loops data frames back, the multiplexer discards ours.
	loopback bool
}

func (r *oamResponder) init(o *ONU) { r.o = o }

func (r *oamResponder) reset() {
	r.state = oamPassiveWait
	r.remoteFlags = 0
	r.loopback = false
}

// OAM Information State field (802.3 57.5.2.1): parser action in bits
// 1:0, multiplexer action in bit 2.
const (
	stateForward  = 0x00
	stateLoopback = 0x01 | 0x04 // parser loops back, multiplexer discards
)

func (r *oamResponder) registered(now int64) {
	r.reset()
	r.lastRx, r.lastTx = now, now
}

func (r *oamResponder) local() *oam.InfoTLV {
	st := uint8(stateForward)
	if r.loopback {
		st = stateLoopback
	}
	// Config: passive mode, remote loopback (bit 1), link events (bit
	// 3), variable retrieval (bit 4).
	return &oam.InfoTLV{Version: 1, State: st, Config: 0x1a, MaxPDUSize: 1518, OUI: r.o.cfg.VendorOUI}
}

// flags are the OAM flags this end sends now.
func (r *oamResponder) flags() oam.Flags {
	var f oam.Flags
	switch r.state {
	case oamSendLocalRemote:
		f |= oam.FlagLocalEvaluating
	case oamSendLocalRemoteOK, oamSendAny:
		f |= oam.FlagLocalStable
	}
	if r.remoteFlags&oam.FlagLocalStable != 0 {
		f |= oam.FlagRemoteStable
	} else if r.remoteFlags&oam.FlagLocalEvaluating != 0 {
		f |= oam.FlagRemoteEvaluating
	}
	return f
}

func (r *oamResponder) send(extra oam.Flags, p oam.Payload, front bool) {
	pdu := oam.PDU{Destination: oam.SlowProtocolsAddr, Source: r.o.cfg.MAC, Flags: r.flags() | extra, Payload: p}
	b, err := pdu.MarshalBinary()
	if err != nil {
		r.o.stats.TxErrors++ // cannot happen for the PDUs built here
		return
	}
	if front {
		lb := lineBytes(len(b))
		r.o.ctrl = append([]queued{{frame: b, line: lb}}, r.o.ctrl...)
		r.o.ctrlLine += lb
	} else {
		r.o.sendCtrl(b)
	}
	r.o.stats.OAMTx++
	r.lastTx = r.o.clock.Now()
}

func (r *oamResponder) sendInfo() {
	in := &oam.Information{Local: r.local()}
	if r.state != oamPassiveWait {
		rem := r.remote
		in.Remote = &rem
	}
	r.send(0, in, false)
}

func (r *oamResponder) receive(p *oam.PDU) {
	r.lastRx = r.o.clock.Now()
	switch pl := p.Payload.(type) {
	case *oam.Information:
		if pl.Local == nil {
			return
		}
		r.remote = *pl.Local
		r.remoteFlags = p.Flags
		old := r.state
		// Local satisfied: the OLT speaks OAM version 1 and can take our
		// PDUs (always, for this emulated ONU).
		satisfied := pl.Local.Version == 1 && pl.Local.MaxPDUSize >= 64
		switch {
		case !satisfied:
			r.state = oamSendLocalRemote
		case r.state < oamSendLocalRemoteOK:
			r.state = oamSendLocalRemoteOK
		}
		if r.state == oamSendLocalRemoteOK && p.Flags&oam.FlagLocalStable != 0 {
			r.state = oamSendAny
		}
		// Answer at once while discovery runs; once in send-any the
		// keep-alive timer paces Information.
		if old != r.state || r.state != oamSendAny {
			r.sendInfo()
		}
	case *oam.VariableRequest:
		if r.state != oamSendAny {
			return
		}
		resp := &oam.VariableResponse{}
		for _, d := range pl.Descriptors {
			c := oam.Container{Branch: d.Branch, Leaf: d.Leaf}
			switch {
			case d.Branch == oam.BranchAttribute && d.Leaf == leafFramesTransmittedOK:
				c.Value = binary.BigEndian.AppendUint32(nil, uint32(r.o.stats.TxFrames))
			case d.Branch == oam.BranchAttribute && d.Leaf == leafFramesReceivedOK:
				c.Value = binary.BigEndian.AppendUint32(nil, uint32(r.o.stats.RxFrames))
			default:
				c.Indication = indicationUnsupported
			}
			if c.Branch == 0 {
				continue
			}
			resp.Containers = append(resp.Containers, c)
		}
		r.send(0, resp, false)
	case *oam.LoopbackControl:
		if r.state != oamSendAny {
			return
		}
		// 57.2.11: the new state is acknowledged with an Information.
		r.loopback = pl.Command == oam.LoopbackEnable
		r.sendInfo()
	}
}

// tick sends the keep-alive and notices a lost link; it returns when it
// next needs to run (raw quanta).
func (r *oamResponder) tick(now int64) int64 {
	if r.state == oamPassiveWait {
		return now + 1<<40
	}
	if now-r.lastRx >= 5*OAMPeriod {
		// local_lost_link_timer: back to waiting for the OLT.
		r.reset()
		return now + 1<<40
	}
	if now-r.lastTx >= OAMPeriod {
		r.sendInfo()
	}
	return min(r.lastTx+OAMPeriod, r.lastRx+5*OAMPeriod)
}

// sent is told of each control frame that left; a dying gasp is the last
// thing a dying ONU sends.
func (r *oamResponder) sent(frame []byte) {
	if len(frame) >= 17 && binary.BigEndian.Uint16(frame[12:14]) == uint16(oam.EtherType) &&
		oam.Flags(binary.BigEndian.Uint16(frame[15:17]))&oam.FlagDyingGasp != 0 {
		r.o.PowerOff()
	}
}

// Loopback says remote loopback is on: data frames from the OLT are
// sent back upstream, none of the ONU's own.
func (o *ONU) Loopback() bool { return o.oam.loopback }

// DyingGasp makes the ONU send an OAMPDU with the dying gasp flag in its
// next grant, ahead of everything queued, and then power off, as an ONU
// does when it loses power. It returns false when the ONU is not
// registered (nobody to tell).
func (o *ONU) DyingGasp() bool {
	if o.state != Registered {
		return false
	}
	o.oam.send(oam.FlagDyingGasp, &oam.Information{Local: o.oam.local()}, true)
	return true
}

// LinkEvent sends an Event Notification with the event (an errored frame
// event, say) in the next grant. It returns false when the ONU is not
// registered or its OAM discovery has not completed.
func (o *ONU) LinkEvent(e oam.Event) bool {
	if o.state != Registered || o.oam.state != oamSendAny {
		return false
	}
	o.oam.seq++
	o.oam.send(0, &oam.EventNotification{Sequence: o.oam.seq, Events: []oam.Event{e}}, false)
	return true
}
