package bridge

import (
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// bpduMatch is a classic BPF program that matches a BPDU: an 802.3 frame
// (length field below 0x0600) to the Bridge Group Address 01:80:C2:00:00:00
// behind the LLC header 42-42-03. It returns match for a BPDU and miss for
// anything else. When skipOutgoing is set it first misses frames the host
// itself transmits (a packet socket bound with ETH_P_ALL sees those too).
//
// The same program serves two places: the per-port packet sockets (match =
// frame length to keep, miss = 0) and, in no-STP mode, the tc ingress guard
// that drops BPDUs before the bridge would flood them (match = TC_ACT_SHOT,
// miss = TC_ACT_UNSPEC).
func bpduMatch(skipOutgoing bool, match, miss uint32) ([]bpf.RawInstruction, error) {
	var prog []bpf.Instruction
	if skipOutgoing {
		prog = append(prog,
			bpf.LoadExtension{Num: bpf.ExtType},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.PACKET_OUTGOING, SkipTrue: 8},
		)
	}
	prog = append(prog,
		bpf.LoadAbsolute{Off: 0, Size: 4}, // destination, octets 0-3
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x0180c200, SkipFalse: 6},
		bpf.LoadAbsolute{Off: 4, Size: 2}, // destination, octets 4-5
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x0000, SkipFalse: 4},
		bpf.LoadAbsolute{Off: 12, Size: 2}, // 802.3 length, not an EtherType
		bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: 0x0600, SkipTrue: 2},
		bpf.LoadAbsolute{Off: 14, Size: 2}, // DSAP, SSAP
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x4242, SkipTrue: 1},
		bpf.RetConstant{Val: miss},
		bpf.LoadAbsolute{Off: 16, Size: 1}, // LLC control: UI
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x03, SkipFalse: 1},
		bpf.RetConstant{Val: match},
		bpf.RetConstant{Val: miss},
	)
	return bpf.Assemble(prog)
}
