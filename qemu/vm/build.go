package vm

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// RepoRoot walks up from the working directory to the directory holding
// go.mod, so tests and commands find build/ wherever they run from.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("vm: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Artifacts are the build outputs a blade VM boots from.
type Artifacts struct {
	Build  string // the build/ directory
	Kernel string // build/kernel/vmlinux
}

// Image returns build/images/<role>.cpio.
func (a Artifacts) Image(role string) string {
	return filepath.Join(a.Build, "images", role+".cpio")
}

// SignedImage returns build/images/<role>.img, the signed image a blade's flash is
// factory-flashed with.
func (a Artifacts) SignedImage(role string) string {
	return filepath.Join(a.Build, "images", role+".img")
}

// PublicKey returns build/keys/dev.pub, the key the boot ROM trusts.
func (a Artifacts) PublicKey() string { return filepath.Join(a.Build, "keys", "dev.pub") }

// FindArtifacts locates build/ under the repository root (or buildDir when
// not empty, or $CGOA_BUILD when set) and checks that the kernel exists.
func FindArtifacts(buildDir string) (Artifacts, error) {
	if buildDir == "" {
		buildDir = os.Getenv("CGOA_BUILD")
	}
	if buildDir == "" {
		root, err := RepoRoot()
		if err != nil {
			return Artifacts{}, err
		}
		buildDir = filepath.Join(root, "build")
	}
	abs, err := filepath.Abs(buildDir)
	if err != nil {
		return Artifacts{}, err
	}
	a := Artifacts{Build: abs, Kernel: filepath.Join(abs, "kernel", "vmlinux")}
	if _, err := os.Stat(a.Kernel); err != nil {
		return a, fmt.Errorf("vm: kernel missing (run `make kernel`): %w", err)
	}
	return a, nil
}

// Need checks that QEMU, the kernel and the images of roles exist, for VM
// tests to skip (or fail under CGOA_REQUIRE_VM=1) with the reason.
func Need(roles ...string) (Artifacts, error) {
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		return Artifacts{}, errors.New("qemu-system-x86_64 not installed (apt-get install qemu-system-x86)")
	}
	a, err := FindArtifacts("")
	if err != nil {
		return a, err
	}
	for _, r := range roles {
		for _, f := range []string{a.Image(r), a.SignedImage(r)} {
			if _, err := os.Stat(f); err != nil {
				return a, fmt.Errorf("image missing (run `make image ROLE=%s`): %w", r, err)
			}
		}
	}
	if len(roles) > 0 {
		if _, err := os.Stat(a.PublicKey()); err != nil {
			return a, fmt.Errorf("image key missing (run `make keys`): %w", err)
		}
	}
	return a, nil
}
