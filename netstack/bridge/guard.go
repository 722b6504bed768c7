package bridge

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The BPDU guard is a tc classic-BPF filter in direct-action mode on a
// port's clsact ingress hook. It exists for no-STP mode only: with the
// bridge's STP off the kernel floods received BPDUs to the other ports like
// data (br_handle_frame "must forward to keep loop detection"), which would
// leak one neighbour's BPDUs to another and distort the tree. tc ingress
// runs after the packet taps (our ETH_P_ALL sockets still see the BPDU) and
// before the bridge's rx handler, so dropping there hides BPDUs from the
// bridge only. rtnetlink has no tc support, so the messages are encoded
// here.

// tc constants from linux/pkt_sched.h and linux/pkt_cls.h (not in x/sys/unix).
const (
	tcHClsact       = 0xfffffff1 // TC_H_CLSACT
	tcHMinIngress   = 0xfff2     // TC_H_MIN_INGRESS
	tcaBPFOpsLen    = 4          // TCA_BPF_OPS_LEN
	tcaBPFOps       = 5          // TCA_BPF_OPS
	tcaBPFName      = 7          // TCA_BPF_NAME
	tcaBPFFlags     = 8          // TCA_BPF_FLAGS
	tcaBPFActDirect = 1          // TCA_BPF_FLAG_ACT_DIRECT
	tcActShot       = 2          // TC_ACT_SHOT
	tcActUnspec     = 0xffffffff // TC_ACT_UNSPEC (-1)
	guardPrio       = 0xc000     // tc's default first preference
	guardHandle     = 1          // filter handle within the preference
	guardParent     = tcHClsact&0xffff0000 | tcHMinIngress
	guardName       = "cgoa-bpdu-guard"
)

// tcmsg encodes struct tcmsg (family, pad, ifindex, handle, parent, info).
func tcmsg(ifindex uint32, handle, parent, info uint32) []byte {
	b := make([]byte, 20)
	b[0] = unix.AF_UNSPEC
	binary.NativeEndian.PutUint32(b[4:], ifindex)
	binary.NativeEndian.PutUint32(b[8:], handle)
	binary.NativeEndian.PutUint32(b[12:], parent)
	binary.NativeEndian.PutUint32(b[16:], info)
	return b
}

// guardInfo is tcm_info for a filter: preference in the high half,
// protocol (network byte order) in the low half; ETH_P_ALL sees 802.3 frames.
func guardInfo() uint32 {
	return guardPrio<<16 | uint32(htons(unix.ETH_P_ALL))
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// installGuard adds the clsact qdisc (if absent) and the BPDU drop filter
// on the port with the given interface index.
func installGuard(c *netlink.Conn, ifindex uint32) error {
	ae := netlink.NewAttributeEncoder()
	ae.String(unix.TCA_KIND, "clsact")
	attrs, err := ae.Encode()
	if err != nil {
		return err
	}
	_, err = c.Execute(netlink.Message{
		Header: netlink.Header{
			Type:  unix.RTM_NEWQDISC,
			Flags: netlink.Request | netlink.Acknowledge | netlink.Create | netlink.Excl,
		},
		Data: append(tcmsg(ifindex, tcHClsact&0xffff0000, tcHClsact, 0), attrs...),
	})
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("add clsact qdisc: %w", err)
	}

	prog, err := bpduMatch(false, tcActShot, tcActUnspec)
	if err != nil {
		return err
	}
	ops := make([]byte, 0, 8*len(prog))
	for _, ins := range prog {
		ops = binary.NativeEndian.AppendUint16(ops, ins.Op)
		ops = append(ops, ins.Jt, ins.Jf)
		ops = binary.NativeEndian.AppendUint32(ops, ins.K)
	}
	ae = netlink.NewAttributeEncoder()
	ae.String(unix.TCA_KIND, "bpf")
	ae.Nested(unix.TCA_OPTIONS, func(nae *netlink.AttributeEncoder) error {
		nae.Uint16(tcaBPFOpsLen, uint16(len(prog)))
		nae.Bytes(tcaBPFOps, ops)
		nae.String(tcaBPFName, guardName)
		nae.Uint32(tcaBPFFlags, tcaBPFActDirect)
		return nil
	})
	attrs, err = ae.Encode()
	if err != nil {
		return err
	}
	_, err = c.Execute(netlink.Message{
		Header: netlink.Header{
			Type:  unix.RTM_NEWTFILTER,
			Flags: netlink.Request | netlink.Acknowledge | netlink.Create | netlink.Replace,
		},
		Data: append(tcmsg(ifindex, guardHandle, guardParent, guardInfo()), attrs...),
	})
	if err != nil {
		return fmt.Errorf("add BPDU guard filter: %w", err)
	}
	return nil
}

// removeGuard deletes the BPDU drop filter (the clsact qdisc stays: other
// filters may hang on it).
func removeGuard(c *netlink.Conn, ifindex uint32) error {
	ae := netlink.NewAttributeEncoder()
	ae.String(unix.TCA_KIND, "bpf")
	attrs, err := ae.Encode()
	if err != nil {
		return err
	}
	_, err = c.Execute(netlink.Message{
		Header: netlink.Header{
			Type:  unix.RTM_DELTFILTER,
			Flags: netlink.Request | netlink.Acknowledge,
		},
		Data: append(tcmsg(ifindex, guardHandle, guardParent, guardInfo()), attrs...),
	})
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete BPDU guard filter: %w", err)
	}
	return nil
}
