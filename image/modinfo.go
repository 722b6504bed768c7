package image

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cgoa/cgoa/hal"
)

// ModInfo is what a module file says of itself in its .modinfo section.
type ModInfo struct {
	Name    string
	Depends []string
}

// ParseModInfo reads the key=value strings (NUL separated) of a .modinfo section.
func ParseModInfo(section []byte) (ModInfo, error) {
	var mi ModInfo
	for _, kv := range bytes.Split(section, []byte{0}) {
		k, v, ok := bytes.Cut(kv, []byte("="))
		if !ok {
			continue
		}
		switch string(k) {
		case "name":
			mi.Name = string(v)
		case "depends":
			for _, d := range strings.Split(string(v), ",") {
				if d = strings.TrimSpace(d); d != "" {
					mi.Depends = append(mi.Depends, d)
				}
			}
		}
	}
	return mi, nil
}

// ReadModInfo opens a kernel module (an ELF relocatable) and reads its .modinfo.
func ReadModInfo(r io.ReaderAt) (ModInfo, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		return ModInfo{}, fmt.Errorf("image: module is not ELF: %w", err)
	}
	defer f.Close()
	s := f.Section(".modinfo")
	if s == nil {
		return ModInfo{}, errors.New("image: module has no .modinfo section")
	}
	b, err := s.Data()
	if err != nil {
		return ModInfo{}, fmt.Errorf("image: read .modinfo: %w", err)
	}
	return ParseModInfo(b)
}

// ModuleTree is an unpacked lib/modules/<release> directory.
type ModuleTree struct {
	Dir     string
	files   map[string]string // module name -> path relative to Dir
	builtin map[string]bool
}

// OpenModuleTree indexes the module files under dir and its modules.builtin.
func OpenModuleTree(dir string) (*ModuleTree, error) {
	t := &ModuleTree{Dir: dir, files: map[string]string{}, builtin: map[string]bool{}}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".ko") {
			rel, _ := filepath.Rel(dir, p)
			t.files[hal.ModuleName(rel)] = rel
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("image: index modules in %s: %w", dir, err)
	}
	if len(t.files) == 0 {
		return nil, fmt.Errorf("image: no .ko files under %s (compressed modules are not supported)", dir)
	}
	if f, err := os.Open(filepath.Join(dir, "modules.builtin")); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			t.builtin[hal.ModuleName(strings.TrimSpace(sc.Text()))] = true
		}
		f.Close()
	}
	return t, nil
}

// Closure resolves names to the module files that must be carried: the named modules and
// everything they depend on, less what is built into the kernel. It returns modules.dep lines
// for exactly those files, with paths relative to the module directory.
func (t *ModuleTree) Closure(names []string) ([]hal.ModuleDep, error) {
	seen := map[string]bool{}
	var out []hal.ModuleDep
	var add func(name, from string) error
	add = func(name, from string) error {
		name = strings.ReplaceAll(name, "-", "_")
		if seen[name] || t.builtin[name] {
			return nil
		}
		rel, ok := t.files[name]
		if !ok {
			if from != "" {
				return fmt.Errorf("image: module %s needs %s, which is not in %s", from, name, t.Dir)
			}
			return fmt.Errorf("image: no module %s in %s and it is not built in", name, t.Dir)
		}
		seen[name] = true
		f, err := os.Open(filepath.Join(t.Dir, rel))
		if err != nil {
			return err
		}
		mi, err := ReadModInfo(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("image: %s: %w", rel, err)
		}
		md := hal.ModuleDep{Path: rel}
		for _, d := range mi.Depends {
			if err := add(d, name); err != nil {
				return err
			}
			if dp, ok := t.files[strings.ReplaceAll(d, "-", "_")]; ok && !t.builtin[strings.ReplaceAll(d, "-", "_")] {
				md.Deps = append(md.Deps, dp)
			}
		}
		out = append(out, md)
		return nil
	}
	for _, n := range names {
		if err := add(n, ""); err != nil {
			return nil, err
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// WriteModulesDep writes modules.dep lines in depmod's format.
func WriteModulesDep(w io.Writer, mods []hal.ModuleDep) error {
	for _, m := range mods {
		if _, err := fmt.Fprintf(w, "%s: %s\n", m.Path, strings.Join(m.Deps, " ")); err != nil {
			return err
		}
	}
	return nil
}
