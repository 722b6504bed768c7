package ckpt

import "fmt"

func (s *Service) debug() string {
	out := fmt.Sprintf("self %d active %v gen %x seq %d rxN %d writer %d synced %v staging %v asm %v ring tail %d head %d\n", s.opt.Self, s.active, s.gen, s.seq, s.rxN, s.writer, s.synced, s.staging != nil, s.asm != nil, s.ring.tail, s.ring.head)
	for _, sl := range s.order {
		p := s.peers[sl]
		out += fmt.Sprintf("  peer %d known %v base %+v next %+v snap %v acked %d ackN %d synced %v\n", sl, p.known, p.base, p.next, p.snap != nil, p.acked, p.ackN, p.synced)
	}
	return out + fmt.Sprintf("  %+v\n", s.c)
}
