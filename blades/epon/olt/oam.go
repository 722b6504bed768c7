package olt

import (
	"fmt"

	"github.com/cgoa/cgoa/netstack/oam"
)

// oamState is the active end's OAM discovery state (802.3 57.5.3).
type oamState int

const (
	oamOff oamState = iota
	oamSendLocal
	oamSendLocalRemote
	oamSendLocalRemoteOK
	oamSendAny
)

func (s oamState) String() string {
	return [...]string{"off", "active-send-local", "send-local-remote", "send-local-remote-ok", "send-any"}[s]
}

// OAM timers (802.3 57.3.1.2): an Information at least every second,
// the link lost after 5 s without any OAMPDU.
const (
	oamPDUPeriod = QuantaPerSecond
	oamLostLink  = 5 * QuantaPerSecond
)

// oamLink is the OLT's OAM sublayer towards one ONU (active mode).
type oamLink struct {
	state       oamState
	remote      oam.InfoTLV
	remoteFlags oam.Flags
	lastTx      int64
	lastRx      int64
	seq         uint16
	seqValid    bool
	// loopback: the ONU's Information says its parser loops back.
	loopback bool
	// Edge-triggered flag alarms: raised once while the flag stays set.
	gasp, fault, critical bool
}

func (l *oamLink) reset() { *l = oamLink{} }

func (o *OLT) oamLocal() *oam.InfoTLV {
	// Config: active mode (bit 0), link events (bit 3), variable
	// retrieval (bit 4).
	return &oam.InfoTLV{Version: 1, Config: 0x19, MaxPDUSize: 1518, OUI: o.cfg.OUI}
}

func (l *oamLink) flags() oam.Flags {
	var f oam.Flags
	switch l.state {
	case oamSendLocal, oamSendLocalRemote:
		f |= oam.FlagLocalEvaluating
	case oamSendLocalRemoteOK, oamSendAny:
		f |= oam.FlagLocalStable
	}
	if l.remoteFlags&oam.FlagLocalStable != 0 {
		f |= oam.FlagRemoteStable
	} else if l.remoteFlags&oam.FlagLocalEvaluating != 0 {
		f |= oam.FlagRemoteEvaluating
	}
	return f
}

func (o *OLT) sendOAM(u *onu, p oam.Payload, now int64) {
	pdu := oam.PDU{Destination: oam.SlowProtocolsAddr, Source: o.cfg.MAC, Flags: u.oam.flags(), Payload: p}
	b, err := pdu.MarshalBinary()
	if err != nil {
		o.stats.TxErrors++
		return
	}
	switch p.(type) {
	case *oam.Information:
		u.stats.OAM.InformationTx++
	case *oam.VariableRequest:
		u.stats.OAM.VariableRequestTx++
	case *oam.LoopbackControl:
		u.stats.OAM.LoopbackControlTx++
	}
	u.oam.lastTx = now
	o.wake(now + oamPDUPeriod)
	o.send(u.llid, false, b, u)
}

func (o *OLT) sendInfo(u *onu, now int64) {
	in := &oam.Information{Local: o.oamLocal()}
	if u.oam.state >= oamSendLocalRemote {
		r := u.oam.remote
		in.Remote = &r
	}
	o.sendOAM(u, in, now)
}

// oamStart begins OAM discovery on a newly registered ONU.
func (o *OLT) oamStart(u *onu, now int64) {
	u.oam.reset()
	u.oam.state = oamSendLocal
	u.oam.lastRx = now
	o.wake(now + oamLostLink)
	o.sendInfo(u, now)
}

// oamTick sends keep-alives and notices a lost OAM link; it returns when
// it next needs to run.
func (o *OLT) oamTick(u *onu, now int64) int64 {
	l := &u.oam
	if l.state == oamOff {
		return now + oamLostLink
	}
	if now-l.lastRx >= oamLostLink {
		if l.state == oamSendAny {
			o.raise(AlarmOAMLinkLost, u, "no OAMPDU for 5 s")
		}
		u.stats.OAM.LinkLost++
		l.state, l.remoteFlags = oamSendLocal, 0
		l.lastRx = now
		o.sendInfo(u, now)
	} else if now-l.lastTx >= oamPDUPeriod {
		o.sendInfo(u, now)
	}
	return min(l.lastTx+oamPDUPeriod, l.lastRx+oamLostLink)
}

func (o *OLT) receiveOAM(u *onu, frame []byte) {
	var p oam.PDU
	if err := p.UnmarshalBinary(frame); err != nil {
		o.stats.RxErrors++
		u.stats.OAM.RxErrors++
		return
	}
	now := o.clock.Now()
	l := &u.oam
	l.lastRx = now
	o.oamFlags(u, p.Flags)
	switch pl := p.Payload.(type) {
	case *oam.Information:
		u.stats.OAM.InformationRx++
		if pl.Local == nil {
			return
		}
		l.remote, l.remoteFlags = *pl.Local, p.Flags
		if lb := pl.Local.State&0x03 == 0x01; lb != l.loopback {
			l.loopback = lb
			what := "remote loopback off"
			if lb {
				what = "remote loopback on"
			}
			o.raise(AlarmLoopback, u, what)
		}
		old := l.state
		satisfied := pl.Local.Version == 1 && pl.Local.MaxPDUSize >= 64
		switch {
		case !satisfied:
			l.state = oamSendLocalRemote
		case l.state < oamSendLocalRemoteOK:
			l.state = oamSendLocalRemoteOK
		}
		if l.state == oamSendLocalRemoteOK && p.Flags&oam.FlagLocalStable != 0 {
			l.state = oamSendAny
		}
		if l.state != old {
			if l.state == oamSendAny {
				o.raise(AlarmOAMUp, u, "OAM discovery complete")
			}
			o.sendInfo(u, now)
		}
	case *oam.EventNotification:
		if l.seqValid && pl.Sequence == l.seq {
			u.stats.OAM.DuplicateEventNotificationRx++
			return
		}
		l.seq, l.seqValid = pl.Sequence, true
		u.stats.OAM.UniqueEventNotificationRx++
		for _, e := range pl.Events {
			u.stats.OAM.LinkEvents++
			o.raise(AlarmLinkEvent, u, eventText(e))
		}
	case *oam.VariableResponse:
		u.stats.OAM.VariableResponseRx++
	case *oam.VariableRequest:
		u.stats.OAM.VariableRequestRx++
	case *oam.LoopbackControl:
		u.stats.OAM.LoopbackControlRx++
	case *oam.OrganizationSpecific:
		u.stats.OAM.OrgSpecificRx++
	default:
		u.stats.OAM.UnsupportedCodesRx++
	}
}

// oamFlags raises the alarms the flags of any OAMPDU carry.
func (o *OLT) oamFlags(u *onu, f oam.Flags) {
	l := &u.oam
	edge := func(set bool, was *bool, kind AlarmKind, text string) {
		if set && !*was {
			o.raise(kind, u, text)
		}
		*was = set
	}
	if f&oam.FlagDyingGasp != 0 {
		u.stats.OAM.DyingGasps++
	}
	edge(f&oam.FlagDyingGasp != 0, &l.gasp, AlarmDyingGasp, "dying gasp")
	edge(f&oam.FlagLinkFault != 0, &l.fault, AlarmLinkFault, "link fault")
	edge(f&oam.FlagCriticalEvent != 0, &l.critical, AlarmCriticalEvent, "critical event")
}

func eventText(e oam.Event) string {
	switch e.Type {
	case oam.EventErroredSymbolPeriod:
		return fmt.Sprintf("errored symbol period: %d errors in %d symbols (threshold %d)", e.Errors, e.Window, e.Threshold)
	case oam.EventErroredFrame:
		return fmt.Sprintf("errored frame: %d errors in %d00 ms (threshold %d)", e.Errors, e.Window, e.Threshold)
	case oam.EventErroredFramePeriod:
		return fmt.Sprintf("errored frame period: %d errors in %d frames (threshold %d)", e.Errors, e.Window, e.Threshold)
	case oam.EventErroredFrameSecondsSummary:
		return fmt.Sprintf("errored frame seconds: %d in %d00 ms (threshold %d)", e.Errors, e.Window, e.Threshold)
	}
	return fmt.Sprintf("link event type %#x", uint8(e.Type))
}

// RequestVariables sends an OAM Variable Request to the ONU with llid
// (its OAM discovery must have completed).
func (o *OLT) RequestVariables(llid uint16, d []oam.Descriptor) error {
	o.mu.Lock()
	defer o.unlock()
	u := o.byLLID(llid)
	if u == nil || u.state != registered {
		return fmt.Errorf("olt: %s: LLID %d: %w", o.cfg.Name, llid, ErrNoONU)
	}
	if u.oam.state != oamSendAny {
		return fmt.Errorf("olt: %s: LLID %d: OAM discovery not complete (%v)", o.cfg.Name, llid, u.oam.state)
	}
	o.sendOAM(u, &oam.VariableRequest{Descriptors: d}, o.clock.Now())
	return nil
}

// SetLoopback sends an OAM Loopback Control to the ONU with llid, putting
// it in remote loopback (on) or taking it out; ShowONUs reports the
// state once the ONU's Information confirms it.
func (o *OLT) SetLoopback(llid uint16, on bool) error {
	o.mu.Lock()
	defer o.unlock()
	u := o.byLLID(llid)
	if u == nil || u.state != registered {
		return fmt.Errorf("olt: %s: LLID %d: %w", o.cfg.Name, llid, ErrNoONU)
	}
	if u.oam.state != oamSendAny {
		return fmt.Errorf("olt: %s: LLID %d: OAM discovery not complete (%v)", o.cfg.Name, llid, u.oam.state)
	}
	cmd := oam.LoopbackDisable
	if on {
		cmd = oam.LoopbackEnable
	}
	o.sendOAM(u, &oam.LoopbackControl{Command: cmd}, o.clock.Now())
	return nil
}
