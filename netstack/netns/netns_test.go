package netns

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
)

func TestDo(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for ip netns")
	}
	name := fmt.Sprintf("cgoa-nstest-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	if out, err := exec.Command("ip", "-n", name, "link", "add", "nstest0", "type", "veth", "peer", "name", "nstest1").CombinedOutput(); err != nil {
		t.Fatalf("ip link add: %v %s", err, out)
	}
	seen := func() error {
		_, err := net.InterfaceByName("nstest0")
		return err
	}
	if err := Do(Named(name), seen); err != nil {
		t.Errorf("Do(%s, look up its link) = %v, want nil", name, err)
	}
	// The caller's namespace is untouched, before and after.
	if err := seen(); err == nil {
		t.Error("the namespace's link is visible outside it")
	}
	if err := Do("", seen); err == nil {
		t.Error(`Do("") ran in the namespace, want the caller's`)
	}
	want := errors.New("f failed")
	if err := Do(Named(name), func() error { return want }); !errors.Is(err, want) {
		t.Errorf("Do(f failing) = %v, want %v", err, want)
	}
	if err := Do(Named("cgoa-no-such-ns"), seen); err == nil {
		t.Error("Do(a namespace that does not exist) = nil, want an error")
	}
}
