// Command mkimage builds a blade image: it stages the role's kernel modules (with their
// dependencies and a trimmed modules.dep) and, for the switch role, /sbin/bridge-stp, then has
// u-root write the initramfs with the firmware binary as /init.
//
//	go run ./image/cmd/mkimage -role switch -kernel build/kernel \
//		-firmware build/bin/firmware-switch -o build/images/switch.cpio
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/cgoa/cgoa/image"
)

func main() {
	role := flag.String("role", "", "blade role: "+strings.Join(image.Roles, ", "))
	kernel := flag.String("kernel", "build/kernel", "directory `make kernel` unpacked the kernel into")
	firmware := flag.String("firmware", "", "the role's static firmware binary")
	out := flag.String("o", "", "output initramfs (cpio)")
	flag.Parse()
	if err := run(*role, *kernel, *firmware, *out); err != nil {
		fmt.Fprintf(os.Stderr, "mkimage: %v\n", err)
		os.Exit(1)
	}
}

func run(role, kernel, firmware, out string) error {
	if role == "" || firmware == "" || out == "" {
		return fmt.Errorf("-role, -firmware and -o are required")
	}
	names, err := image.RoleModules(role)
	if err != nil {
		return err
	}
	rel, err := os.ReadFile(filepath.Join(kernel, "release"))
	if err != nil {
		return fmt.Errorf("kernel release: %w (run make kernel)", err)
	}
	release := strings.TrimSpace(string(rel))
	tree, err := image.OpenModuleTree(filepath.Join(kernel, "modules"))
	if err != nil {
		return err
	}
	mods, err := tree.Closure(names)
	if err != nil {
		return err
	}
	stage, err := os.MkdirTemp("", "cgoa-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	modDir := filepath.Join(stage, "lib", "modules", release)
	for _, m := range mods {
		if err := copyFile(filepath.Join(tree.Dir, m.Path), filepath.Join(modDir, m.Path)); err != nil {
			return err
		}
	}
	dep, err := os.Create(filepath.Join(modDir, "modules.dep"))
	if err != nil {
		return err
	}
	if err := image.WriteModulesDep(dep, mods); err != nil {
		dep.Close()
		return err
	}
	if err := dep.Close(); err != nil {
		return err
	}
	args := []string{"tool", "u-root", "-nocmd", "-o", out,
		"-initcmd=/bin/firmware", "-defaultsh=", "-uinitcmd=",
		"-files", firmware + ":bin/firmware",
		"-files", filepath.Join(stage, "lib") + ":lib"}
	if role == "switch" {
		// The kernel runs /sbin/bridge-stp when STP is enabled on a bridge; the firmware answers
		// under that name (it looks at argv[0]), so this is a link, not a second binary.
		sbin := filepath.Join(stage, "sbin")
		if err := os.MkdirAll(sbin, 0o755); err != nil {
			return err
		}
		if err := os.Symlink("../bin/firmware", filepath.Join(sbin, "bridge-stp")); err != nil {
			return err
		}
		args = append(args, "-files", sbin+":sbin")
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	cmd := exec.Command("go", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
	}
	fi, err := os.Stat(out)
	if err != nil {
		return err
	}
	fmt.Printf("image %s: %s, %d modules, %.1f MiB\n", role, out, len(mods), float64(fi.Size())/(1<<20))
	return nil
}

func copyFile(from, to string) error {
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}
