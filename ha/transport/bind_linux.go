package transport

import (
	"fmt"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// sockopts binds the socket to iface (if set); for a broadcast path it
// allows broadcasting and sharing the port with the other path's socket
// (each bound to its own interface). Every socket gets the filter of
// frameFilter(self, dsts).
func sockopts(fd uintptr, iface string, broadcast bool, self uint8, dsts [][4]byte) error {
	if broadcast {
		if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 1); err != nil {
			return err
		}
		if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return err
		}
	}
	if iface != "" {
		if err := unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, iface); err != nil {
			return err
		}
	}
	prog, err := frameFilter(self, dsts)
	if err != nil {
		return err
	}
	ins := make([]unix.SockFilter, len(prog))
	for i, r := range prog {
		ins[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	fp := unix.SockFprog{Len: uint16(len(ins)), Filter: (*unix.SockFilter)(unsafe.Pointer(&ins[0]))}
	if err := unix.SetsockoptSockFprog(int(fd), unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fp); err != nil {
		return fmt.Errorf("attach frame filter: %w", err)
	}
	return nil
}

// frameFilter is the classic BPF socket filter of a UDP path socket of
// slot self. On a broadcast path every member's frames reach every
// socket, including the sender's own (Linux loops broadcasts back) and
// frames for one other slot; the Endpoint would drop them after reading
// them, but each read costs a wake-up and a system call, which on an
// emulated blade is most of the receive path. The filter drops them in
// the kernel: a well-formed frame (magic, version, length, as peek checks)
// that names self as its sender or another single slot as its
// destination. If dsts is not empty, it first drops every datagram whose
// IPv4 destination is none of dsts (UDPPath.Destinations). Anything else,
// malformed datagrams included, reaches the Endpoint, which checks and
// counts it. Offsets are from the UDP header, where a UDP socket's filter
// starts; the IP header is reached through the kernel's network-header
// offset (SKF_NET_OFF).
func frameFilter(self uint8, dsts [][4]byte) ([]bpf.RawInstruction, error) {
	const udp = 8 // UDP header length: the frame starts here
	var prog []bpf.Instruction
	if len(dsts) > 0 {
		// Load the destination address; jump to the frame checks on a match, else
		// drop. The drop is the instruction right after the comparisons.
		prog = append(prog, bpf.LoadAbsolute{Off: netOff + 16, Size: 4})
		for i, d := range dsts {
			prog = append(prog, bpf.JumpIf{Cond: bpf.JumpEqual,
				Val: uint32(d[0])<<24 | uint32(d[1])<<16 | uint32(d[2])<<8 | uint32(d[3]), SkipTrue: uint8(len(dsts) - i)})
		}
		prog = append(prog, bpf.RetConstant{Val: 0})
	}
	const keep, drop = 14, 15 // the two return instructions, counted from the frame checks
	skip := func(from, to int) uint8 { return uint8(to - from - 1) }
	prog = append(prog,
		/* 0 */ bpf.LoadAbsolute{Off: udp, Size: 2},
		/* 1 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: uint32(magic[0])<<8 | uint32(magic[1]), SkipTrue: skip(1, keep)},
		/* 2 */ bpf.LoadAbsolute{Off: udp + 2, Size: 1},
		/* 3 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: Version, SkipTrue: skip(3, keep)},
		/* 4 */ bpf.LoadAbsolute{Off: udp + 24, Size: 2}, // payload length
		/* 5 */ bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: udp + HeaderLen + TagLen},
		/* 6 */ bpf.TAX{},
		/* 7 */ bpf.LoadExtension{Num: bpf.ExtLen},
		/* 8 */ bpf.JumpIfX{Cond: bpf.JumpNotEqual, SkipTrue: skip(8, keep)},
		/* 9 */ bpf.LoadAbsolute{Off: udp + 6, Size: 1}, // sender slot
		/* 10 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(self), SkipTrue: skip(10, drop)},
		/* 11 */ bpf.LoadAbsolute{Off: udp + 7, Size: 1}, // destination slot
		/* 12 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(self), SkipTrue: skip(12, keep)},
		/* 13 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: Broadcast, SkipFalse: skip(13, drop)},
		/* 14 */ bpf.RetConstant{Val: 1 << 16}, // keep
		/* 15 */ bpf.RetConstant{Val: 0}, // drop
	)
	return bpf.Assemble(prog)
}

// netOff is SKF_NET_OFF: a load at netOff+k reads byte k of the IP header.
const netOff = 0xfff00000
