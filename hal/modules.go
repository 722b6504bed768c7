package hal

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/u-root/u-root/pkg/kmodule"
)

// ModuleDep is one line of modules.dep: a module file and the files it depends on.
type ModuleDep struct {
	Path string   // relative to the release's module directory
	Deps []string // relative paths, as modules.dep lists them
}

// Name is the module's name as the kernel knows it (file name without .ko, '-' as '_').
func (m ModuleDep) Name() string { return ModuleName(m.Path) }

// ModuleName turns a module file path into the module's name.
func ModuleName(path string) string {
	base := filepath.Base(path)
	for _, ext := range []string{".ko.xz", ".ko.gz", ".ko.zst", ".ko"} {
		if s, ok := strings.CutSuffix(base, ext); ok {
			base = s
			break
		}
	}
	return strings.ReplaceAll(base, "-", "_")
}

// ParseModulesDep reads a modules.dep file. A malformed line is an error naming the line.
func ParseModulesDep(r io.Reader) ([]ModuleDep, error) {
	var out []ModuleDep
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		mod, deps, ok := strings.Cut(line, ":")
		mod = strings.TrimSpace(mod)
		if !ok || mod == "" || !strings.Contains(mod, ".ko") {
			return nil, fmt.Errorf("hal: modules.dep line %d: %q is not \"module.ko: deps...\"", n, line)
		}
		out = append(out, ModuleDep{Path: mod, Deps: strings.Fields(deps)})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("hal: modules.dep: %w", err)
	}
	return out, nil
}

// DependencyOrder returns the closure of the named modules in an order where every module
// comes after all of its dependencies. Unknown names and dependency cycles are errors.
func DependencyOrder(all []ModuleDep, names []string) ([]ModuleDep, error) {
	byPath := map[string]ModuleDep{}
	byName := map[string]ModuleDep{}
	for _, m := range all {
		byPath[m.Path] = m
		byName[m.Name()] = m
	}
	const (
		unvisited = iota
		visiting
		done
	)
	state := map[string]int{}
	var order []ModuleDep
	var visit func(m ModuleDep, chain []string) error
	visit = func(m ModuleDep, chain []string) error {
		switch state[m.Path] {
		case done:
			return nil
		case visiting:
			return fmt.Errorf("hal: module dependency cycle: %s", strings.Join(append(chain, m.Name()), " -> "))
		}
		state[m.Path] = visiting
		for _, d := range m.Deps {
			dm, ok := byPath[d]
			if !ok {
				return fmt.Errorf("hal: module %s needs %s, which modules.dep does not list", m.Name(), d)
			}
			if err := visit(dm, append(chain, m.Name())); err != nil {
				return err
			}
		}
		state[m.Path] = done
		order = append(order, m)
		return nil
	}
	sorted := append([]string{}, names...)
	sort.Strings(sorted)
	for _, n := range sorted {
		m, ok := byName[strings.ReplaceAll(n, "-", "_")]
		if !ok {
			return nil, fmt.Errorf("hal: no module %q in modules.dep", n)
		}
		if err := visit(m, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// LoadModules loads every module the image carries under dir (/lib/modules/<release>), in
// dependency order, with finit_module. A module already loaded or built in is not an error.
// It returns the names loaded and one error per module that failed; it goes on past failures
// so that one bad driver does not cost the blade its console.
func LoadModules(dir string) (loaded []string, errs []error) {
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, []error{fmt.Errorf("hal: modules: %w", err)}
	}
	all, err := ParseModulesDep(f)
	f.Close()
	if err != nil {
		return nil, []error{err}
	}
	var names []string
	for _, m := range all {
		names = append(names, m.Name())
	}
	order, err := DependencyOrder(all, names)
	if err != nil {
		return nil, []error{err}
	}
	failed := map[string]bool{}
	for _, m := range order {
		for _, d := range m.Deps {
			if failed[d] {
				errs = append(errs, fmt.Errorf("hal: module %s: not loaded, dependency %s failed", m.Name(), ModuleName(d)))
				failed[m.Path] = true
			}
		}
		if failed[m.Path] {
			continue
		}
		if err := loadModuleFile(filepath.Join(dir, m.Path)); err != nil {
			errs = append(errs, fmt.Errorf("hal: module %s: %w", m.Name(), err))
			failed[m.Path] = true
			continue
		}
		loaded = append(loaded, m.Name())
	}
	return loaded, errs
}

func loadModuleFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := kmodule.FileInit(f, "", 0); err != nil && !isExist(err) {
		return err
	}
	return nil
}
