package ckpt

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestStatus(t *testing.T) {
	w := New(Options{Self: 3, Ring: 1 << 16, Send: func(uint8, []byte) {}})
	w.Promote(0)
	w.Open(0, "sessions", time.Minute)
	w.SetReplicas(0, []uint8{4})
	w.Write(0, "sessions", "a", make([]byte, 3000), false)
	w.Write(0, "sessions", "b", make([]byte, 10), false)
	s := w.Status()
	if s.Role != "writer" || len(s.Checkpoints) != 1 || s.Checkpoints[0].Sections != 2 || s.Checkpoints[0].Bytes != 3010 ||
		len(s.Replicas) != 1 || s.Replicas[0].Lag != 3 || s.Ring.Records != 3 || s.Ring.Used == 0 {
		t.Fatalf("Status() = %+v, want writer, 1 checkpoint of 2 sections/3010 bytes, replica 4 lagging 3, 3 ring records", s)
	}
	var buf bytes.Buffer
	if err := WriteStatus(&buf, s); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"writer", "sessions", "3010", "resyncing", "3 records"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("WriteStatus() = %q, want it to contain %q", buf.String(), want)
		}
	}
	j, err := json.Marshal(s)
	if err != nil || !strings.Contains(string(j), `"ring":{"size":65536`) {
		t.Errorf("json.Marshal(Status) = %s, %v", j, err)
	}
}
