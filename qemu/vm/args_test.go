package vm

import (
	"strings"
	"testing"
)

func TestArgs(t *testing.T) {
	cfg := Config{Kernel: "/b/vmlinux", Initrd: "/b/mgmt.cpio", Role: "mgmt", Shelf: 1, Slot: 3, RunDir: "/run/x",
		Flash: "/run/x/slot3.flash", Craft: &Craft{HostPort: 40123, MAC: "52:54:01:03:00:07"},
		Ports: []Port{{Name: "base0", PCIDevice: 8, MAC: "52:54:01:03:00:08", Local: "/run/x/s3-base0.sock", Remote: "/run/x/s1-node3.sock"}}}
	got := strings.Join(Args(cfg), " ")
	for _, want := range []string{
		"-machine pc,accel=tcg -cpu max -smp 1 -m 256 -nodefaults -no-user-config -display none",
		"-kernel /b/vmlinux -initrd /b/mgmt.cpio",
		"-append console=ttyS0,115200 quiet loglevel=3 panic=-1 cgoa.shelf=1 cgoa.slot=3",
		"-chardev socket,id=con0,path=/run/x/slot3.console,server=on,wait=off,logfile=/run/x/slot3.log -serial chardev:con0",
		"-qmp unix:/run/x/slot3.qmp,server=on,wait=off",
		"-device i6300esb,bus=pci.0,addr=0x5 -action watchdog=reset",
		"-device ipmi-bmc-sim,id=bmc0 -device isa-ipmi-kcs,bmc=bmc0",
		"-netdev dgram,id=nd-base0,local.type=unix,local.path=/run/x/s3-base0.sock,remote.type=unix,remote.path=/run/x/s1-node3.sock",
		"-device virtio-net-pci,netdev=nd-base0,id=base0,bus=pci.0,addr=0x8,mac=52:54:01:03:00:08",
		"-no-reboot",
		"-drive file=/run/x/slot3.flash,format=raw,if=none,id=flash0,cache=writeback -device virtio-blk-pci,drive=flash0,id=flash,bus=pci.0,addr=0x6",
		"-netdev user,id=nd-craft0,restrict=on,hostfwd=tcp:127.0.0.1:40123-10.0.2.15:7070",
		"-device virtio-net-pci,netdev=nd-craft0,id=craft0,bus=pci.0,addr=0x7,mac=52:54:01:03:00:07",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Args() = %s\nmissing %s", got, want)
		}
	}
	if strings.Contains(got, "kvm") {
		t.Errorf("Args() mentions kvm: %s", got)
	}
}
