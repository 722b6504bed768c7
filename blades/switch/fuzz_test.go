package switchblade

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cgoa/cgoa/stp"
)

// virtualClock is a fixed clock for restoring checkpoints in tests.
type virtualClock struct{ t time.Time }

func (c virtualClock) Now() time.Time { return c.t }

// validRecord is a checkpoint record of a one-port bridge, as the active hub writes it.
func validRecord(t testing.TB) []byte {
	t.Helper()
	clock := virtualClock{time.Unix(1000, 0)}
	b, err := stp.New(stp.Config{ID: ShelfBridgeID(stp.DefaultPriority, 1)}, clock, nopEnv{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.AddPort(stp.PortConfig{Number: 1, Name: "uplink0", Priority: stp.DefaultPortPriority, PathCost: 20000}); err != nil {
		t.Fatal(err)
	}
	if err := b.EnablePort(1); err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(checkpointRecord{Generation: b.Generation(), State: b.Export()})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// FuzzCheckpointRecord: whatever arrives as the replicated checkpoint section, decoding and
// restoring it gives a bridge or an error, never a panic.
func FuzzCheckpointRecord(f *testing.F) {
	f.Add(validRecord(f))
	f.Add([]byte(`{"generation":1,"state":{"version":1}}`))
	f.Add([]byte(`{"state":{"version":1,"ports":[{"number":0}]}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var rec checkpointRecord
		if json.Unmarshal(data, &rec) != nil {
			return
		}
		b, err := stp.Restore(rec.State.Aged(time.Second), virtualClock{time.Unix(2000, 0)}, nopEnv{})
		if err == nil {
			_ = b.Snapshot()
			b.Tick()
		}
	})
}

func TestCheckpointRecordRestores(t *testing.T) {
	var rec checkpointRecord
	if err := json.Unmarshal(validRecord(t), &rec); err != nil {
		t.Fatal(err)
	}
	b, err := stp.Restore(rec.State, virtualClock{time.Unix(5000, 0)}, nopEnv{})
	if err != nil {
		t.Fatalf("Restore(valid record) = %v", err)
	}
	if s := b.Snapshot(); s.ID != ShelfBridgeID(stp.DefaultPriority, 1) || len(s.Ports) != 1 || s.Ports[0].State != stp.Listening {
		t.Fatalf("restored snapshot %+v, want the shelf bridge with uplink0 listening", s)
	}
}

// FuzzCmdline: any kernel command line gives a mode, none, or an error.
func FuzzCmdline(f *testing.F) {
	f.Add("console=ttyS0 cgoa.stp=protected")
	f.Add("cgoa.stp=")
	f.Add("cgoa.stp=off cgoa.stp=independent")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, line string) {
		p := filepath.Join(dir, "cmdline")
		if err := os.WriteFile(p, []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
		m, ok, err := cmdlineMode(p)
		if ok && err == nil {
			if _, perr := ParseMode(string(m)); perr != nil {
				t.Fatalf("cmdlineMode(%q) = %q, a mode ParseMode refuses", line, m)
			}
		}
	})
}
