package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-loads", "0.1,x"},
		{"-distances", "a"},
		{"-dba", "nope", "-loads", "0.1", "-duration", "20ms", "-warmup", "1ms"},
		{"-rate", "0"},
		{"-bench", "x.json", "-seeds", "0"},
		{"-weights", "1,2"},
	} {
		if err := run(args); err == nil {
			t.Errorf("run(%q) = nil, want error", args)
		}
	}
}

func TestBenchJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dba.json")
	if err := run([]string{"-bench", path, "-seeds", "1", "-duration", "60ms"}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f benchFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("bench output is not JSON: %v", err)
	}
	got := map[string]benchResult{}
	for _, r := range f.Results {
		got[r.Metric] = r
	}
	for _, m := range []string{"delay.mean.0.9", "delay.p99.0.9", "utilisation.0.9", "jain.0.9"} {
		r, ok := got[m]
		if !ok || r.Peer == nil || r.Value <= 0 || r.Peer.Value <= 0 || r.Samples <= 0 {
			t.Errorf("metric %s = %+v, want a positive value with a peer", m, r)
		}
	}
	if f.Bench != "dba" || f.Machine == "" {
		t.Errorf("bench %q machine %q", f.Bench, f.Machine)
	}
}
