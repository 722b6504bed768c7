package mgmt

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/gosnmp/gosnmp"
)

var (
	testShelfKey  = []byte("0123456789abcdef0123456789abcdef")
	otherShelfKey = []byte("fedcba9876543210fedcba9876543210")
)

func sealed(t testing.TB, ck Checkpoint, key []byte) Checkpoint {
	t.Helper()
	s, err := SealCheckpoint(ck, key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (m *memCkpt) raw() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return bytes.Clone(m.data)
}

func (m *memCkpt) set(b []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data = bytes.Clone(b)
}

// TestSealedCheckpointFailover: with the section sealed, what crosses the backplane holds no
// passphrase or community in the clear, and a standby with the same shelf key takes over
// the engine and the user.
func TestSealedCheckpointFailover(t *testing.T) {
	mem := &memCkpt{}
	addr := freeUDP(t)
	a := startBlade(t, sealed(t, mem, testShelfKey), addr, 3)
	a.s.SetActive(true)
	waitUp(t, a)
	if out := a.run(t, "snmp user add ops SHA-256 auth-secret-1 AES priv-secret-1"); !strings.HasPrefix(out, "user ops added") {
		t.Fatalf("snmp user add = %q", out)
	}
	raw := mem.raw()
	for _, secret := range []string{"auth-secret-1", "priv-secret-1", "public", "ops"} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("checkpointed section contains %q in the clear", secret)
		}
	}
	engineID := a.s.Agent().EngineID()
	a.kill()

	b := startBlade(t, sealed(t, mem, testShelfKey), addr, 4)
	b.s.SetActive(true)
	waitUp(t, b)
	if !bytes.Equal(b.s.Agent().EngineID(), engineID) || b.s.CkptRefused.Load() != 0 {
		t.Fatalf("takeover: engine %x refused %d, want engine %x refused 0", b.s.Agent().EngineID(), b.s.CkptRefused.Load(), engineID)
	}
	c := v3Client(addr)
	if err := c.Connect(); err != nil {
		t.Fatal(err)
	}
	defer c.Conn.Close()
	if pkt, err := c.Get([]string{oidEngineTime.String()}); err != nil || pkt.Error != gosnmp.NoError {
		t.Fatalf("v3 get after takeover: %v", err)
	}
	if v, err := b.s.View(); err != nil || !v.Service.Sealed {
		t.Errorf("show snmp sealed = %v, %v; want true", v.Service.Sealed, err)
	}
}

// TestSealedCheckpointRefusals: a tampered, foreign-key, unsealed, truncated or unknown-version
// section is refused with ErrCkptRefused, counted by the agent that meets it, which then
// starts as a new engine instead of failing.
func TestSealedCheckpointRefusals(t *testing.T) {
	mem := &memCkpt{}
	w := sealed(t, mem, testShelfKey)
	if err := w.Save(context.Background(), []byte(`{"agent":{}}`)); err != nil {
		t.Fatal(err)
	}
	good := mem.raw()
	flip := func(i int) []byte { b := bytes.Clone(good); b[i] ^= 1; return b }
	cases := []struct {
		name string
		data []byte
		key  []byte
	}{
		{"tampered ciphertext", flip(len(good) - 20), testShelfKey},
		{"tampered tag", flip(len(good) - 1), testShelfKey},
		{"tampered nonce", flip(sealHdrLen - 1), testShelfKey},
		{"tampered salt", flip(5), testShelfKey},
		{"other shelf key", good, otherShelfKey},
		{"not sealed, not JSON", []byte(`["agent"]`), testShelfKey},
		{"truncated", good[:sealHdrLen+3], testShelfKey},
		{"version 2", append([]byte{2}, good[1:]...), testShelfKey},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := &memCkpt{}
			m.set(c.data)
			r := sealed(t, m, c.key)
			if data, _, err := r.Load(); !errors.Is(err, ErrCkptRefused) || data != nil {
				t.Fatalf("Load() = %q, %v; want nil, ErrCkptRefused", data, err)
			}
			b := startBlade(t, r, freeUDP(t), 3)
			b.s.SetActive(true)
			waitUp(t, b)
			if n := b.s.CkptRefused.Load(); n != 1 {
				t.Errorf("refused = %d, want 1", n)
			}
			if b.s.Agent() == nil {
				t.Fatal("agent not running after a refused section")
			}
		})
	}
	// The untampered section opens.
	if data, _, err := sealed(t, mem, testShelfKey).Load(); err != nil || string(data) != `{"agent":{}}` {
		t.Errorf("Load(good) = %q, %v", data, err)
	}
}

// TestSealedCheckpointReadsLegacy: a section from a firmware that did not seal (JSON) is read
// and counted, so a rolling upgrade's first takeover keeps the engine; the next save seals.
func TestSealedCheckpointReadsLegacy(t *testing.T) {
	mem := &memCkpt{}
	old := startBlade(t, mem, freeUDP(t), 3) // writes JSON, as before sealing
	old.s.SetActive(true)
	waitUp(t, old)
	engineID := old.s.Agent().EngineID()
	old.kill()
	ck := sealed(t, mem, testShelfKey)
	b := startBlade(t, ck, freeUDP(t), 4)
	b.s.SetActive(true)
	waitUp(t, b)
	if !bytes.Equal(b.s.Agent().EngineID(), engineID) || b.s.CkptRefused.Load() != 0 {
		t.Errorf("takeover from an unsealed section: engine %x refused %d, want engine %x refused 0",
			b.s.Agent().EngineID(), b.s.CkptRefused.Load(), engineID)
	}
	if n := ck.(*sealedCkpt).legacy.Load(); n != 1 {
		t.Errorf("legacy reads = %d, want 1", n)
	}
	if raw := mem.raw(); len(raw) == 0 || raw[0] != sealVersion {
		t.Errorf("section after the takeover starts %q, want sealed (version %d)", raw[:min(len(raw), 8)], sealVersion)
	}
}

// TestSealNonces: every write has its own nonce, every writer its own salt (key).
func TestSealNonces(t *testing.T) {
	mem := &memCkpt{}
	seen := map[string]bool{}
	for w := 0; w < 3; w++ {
		s := sealed(t, mem, testShelfKey)
		for i := 0; i < 5; i++ {
			if err := s.Save(context.Background(), []byte("same state")); err != nil {
				t.Fatal(err)
			}
			hdr := string(mem.raw()[:sealHdrLen])
			if seen[hdr] {
				t.Fatalf("writer %d write %d reuses salt and nonce %x", w, i, hdr)
			}
			seen[hdr] = true
		}
	}
}

func FuzzOpenSealed(f *testing.F) {
	mem := &memCkpt{}
	s := sealed(f, mem, testShelfKey)
	if err := s.Save(context.Background(), []byte(`{"agent":{}}`)); err != nil {
		f.Fatal(err)
	}
	f.Add(mem.raw())
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add(append([]byte{1}, make([]byte, sealHdrLen+16)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		sc := s.(*sealedCkpt)
		plain, err := sc.open(b)
		if err == nil && string(plain) != `{"agent":{}}` {
			t.Fatalf("open(%x) = %q: forged section accepted", b, plain)
		}
	})
}
