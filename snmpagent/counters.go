package snmpagent

import "sync/atomic"

// Counters are the agent's statistics: the snmp group (RFC 3418), the
// message processing stats (RFC 3412), usmStats (RFC 3414) and
// snmpUnknownContexts (RFC 3415). All only ever increase.
type Counters struct {
	InPkts, OutPkts                                      uint64
	InBadVersions, InBadCommunityNames                   uint64
	InBadCommunityUses, InASNParseErrs                   uint64
	SilentDrops, ProxyDrops                              uint64
	UnknownSecurityModels, InvalidMsgs                   uint64
	UnknownPDUHandlers, UnknownContexts                  uint64
	UsmUnsupportedSecLevels, UsmNotInTimeWindows         uint64
	UsmUnknownUserNames, UsmUnknownEngineIDs             uint64
	UsmWrongDigests, UsmDecryptionErrors                 uint64
	InGetRequests, InGetNexts, InGetBulks, InSetRequests uint64
	OutTraps, OutInforms, InformTimeouts                 uint64
	// Responses sent (RFC 3418 snmpOutGetResponses) and by error-status.
	OutGetResponses, OutTooBigs, OutNoSuchNames uint64
	OutBadValues, OutGenErrs                    uint64
}

// counters is the live, atomically updated form of Counters.
type counters struct {
	InPkts, OutPkts                                      atomic.Uint64
	InBadVersions, InBadCommunityNames                   atomic.Uint64
	InBadCommunityUses, InASNParseErrs                   atomic.Uint64
	SilentDrops, ProxyDrops                              atomic.Uint64
	UnknownSecurityModels, InvalidMsgs                   atomic.Uint64
	UnknownPDUHandlers, UnknownContexts                  atomic.Uint64
	UsmUnsupportedSecLevels, UsmNotInTimeWindows         atomic.Uint64
	UsmUnknownUserNames, UsmUnknownEngineIDs             atomic.Uint64
	UsmWrongDigests, UsmDecryptionErrors                 atomic.Uint64
	InGetRequests, InGetNexts, InGetBulks, InSetRequests atomic.Uint64
	OutTraps, OutInforms, InformTimeouts                 atomic.Uint64
	OutGetResponses, OutTooBigs, OutNoSuchNames          atomic.Uint64
	OutBadValues, OutGenErrs                             atomic.Uint64
}

func (c *counters) pairs(s *Counters) []struct {
	live *atomic.Uint64
	snap *uint64
} {
	return []struct {
		live *atomic.Uint64
		snap *uint64
	}{
		{&c.InPkts, &s.InPkts}, {&c.OutPkts, &s.OutPkts},
		{&c.InBadVersions, &s.InBadVersions}, {&c.InBadCommunityNames, &s.InBadCommunityNames},
		{&c.InBadCommunityUses, &s.InBadCommunityUses}, {&c.InASNParseErrs, &s.InASNParseErrs},
		{&c.SilentDrops, &s.SilentDrops}, {&c.ProxyDrops, &s.ProxyDrops},
		{&c.UnknownSecurityModels, &s.UnknownSecurityModels}, {&c.InvalidMsgs, &s.InvalidMsgs},
		{&c.UnknownPDUHandlers, &s.UnknownPDUHandlers}, {&c.UnknownContexts, &s.UnknownContexts},
		{&c.UsmUnsupportedSecLevels, &s.UsmUnsupportedSecLevels}, {&c.UsmNotInTimeWindows, &s.UsmNotInTimeWindows},
		{&c.UsmUnknownUserNames, &s.UsmUnknownUserNames}, {&c.UsmUnknownEngineIDs, &s.UsmUnknownEngineIDs},
		{&c.UsmWrongDigests, &s.UsmWrongDigests}, {&c.UsmDecryptionErrors, &s.UsmDecryptionErrors},
		{&c.InGetRequests, &s.InGetRequests}, {&c.InGetNexts, &s.InGetNexts},
		{&c.InGetBulks, &s.InGetBulks}, {&c.InSetRequests, &s.InSetRequests},
		{&c.OutTraps, &s.OutTraps}, {&c.OutInforms, &s.OutInforms}, {&c.InformTimeouts, &s.InformTimeouts},
		{&c.OutGetResponses, &s.OutGetResponses}, {&c.OutTooBigs, &s.OutTooBigs},
		{&c.OutNoSuchNames, &s.OutNoSuchNames}, {&c.OutBadValues, &s.OutBadValues}, {&c.OutGenErrs, &s.OutGenErrs},
	}
}

func (c *counters) snapshot() Counters {
	var s Counters
	for _, p := range c.pairs(&s) {
		*p.snap = p.live.Load()
	}
	return s
}

// raise sets every counter to at least the imported value, so that no
// counter goes backward across a failover.
func (c *counters) raise(in Counters) {
	for _, p := range c.pairs(&in) {
		for {
			cur := p.live.Load()
			if cur >= *p.snap || p.live.CompareAndSwap(cur, *p.snap) {
				break
			}
		}
	}
}
