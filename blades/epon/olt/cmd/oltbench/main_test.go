package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func TestMerge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dba.json")
	old := `{"bench":"dba","machine":"m","results":[{"metric":"delay.mean.0.9","unit":"us","value":1,"samples":2},{"metric":"cpu.2x4","value":99}]}`
	if err := os.WriteFile(path, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"-pons", "2", "-onus", "4", "-duration", "100ms", "-merge", path}); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Bench, Machine string
		Results        []map[string]any
	}
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Bench != "dba" || doc.Machine != "m" || len(doc.Results) != 2 {
		t.Fatalf("merged file = %s", b)
	}
	if doc.Results[0]["metric"] != "delay.mean.0.9" {
		t.Errorf("first result %v, want the old delay.mean.0.9 kept", doc.Results[0])
	}
	r := doc.Results[1]
	if r["metric"] != "cpu.2x4" || r["value"].(float64) <= 0 || r["value"].(float64) == 99 || r["unit"] != "% of one core" {
		t.Errorf("cpu result %v, want a fresh cpu.2x4", r)
	}
	// A missing file is created.
	p2 := filepath.Join(t.TempDir(), "x", "dba.json")
	if err := run([]string{"-pons", "1", "-onus", "2", "-duration", "10ms", "-merge", p2}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p2); err != nil {
		t.Error(err)
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-cycle", "0"}, {"-pons", "0"}, {"-onus", "100"}, {"-x"}} {
		if err := run(args); err == nil {
			t.Errorf("run(%q) = nil, want error", args)
		}
	}
}
