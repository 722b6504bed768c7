package mgmt

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// SealLabel is the HKDF info of the key that seals the SNMP checkpoint section: the section
// carries USM passphrases and communities, and the checkpoint stream crosses the backplane,
// where the transport authenticates frames but does not hide them.
const SealLabel = "cgoa mgmt snmp checkpoint aes-256-gcm v1"

// ErrCkptRefused wraps a checkpointed SNMP state that cannot be used: it fails to open (tampered,
// sealed under another shelf key, an unknown version) or to decode.
var ErrCkptRefused = errors.New("snmp: checkpointed state refused")

// Sealed section layout (version 1):
//
//	off len field
//	0   1   version (1)
//	1   32  salt: random per writer (per activation of the agent)
//	33  12  nonce: 4 zero octets, then a per-writer write counter (big endian)
//	45  n   AES-256-GCM ciphertext and 16-octet tag
//
// The AEAD key is HKDF-SHA256(shelf key, salt, SealLabel). A fresh salt per writer gives every
// writer its own key, so a counter nonce is unique under its key however many blades write and
// restart (random 96-bit nonces under one key would be bounded to about 2^32 writes; the
// agent commits per batch of responses, so that bound is days, not years). The header and the
// section's name are authenticated as additional data.
const (
	sealVersion = 1
	saltLen     = 32
	sealHdrLen  = 1 + saltLen + 12
	sealAD      = "mgmt/snmp"
)

// sealedCkpt seals what it saves into inner and opens what it loads.
type sealedCkpt struct {
	inner    Checkpoint
	shelfKey []byte

	mu    sync.Mutex
	salt  [saltLen]byte
	aead  cipher.AEAD // this writer's
	count uint64
	// the last key derived to open, cached for its salt
	openSalt [saltLen]byte
	openAEAD cipher.AEAD
	// legacy counts loads of an unsealed section (JSON, from firmware before sealing).
	legacy atomic.Uint64
}

// SealCheckpoint wraps ck so that the SNMP state is stored encrypted and authenticated under a
// key derived from the shelf key.
func SealCheckpoint(ck Checkpoint, shelfKey []byte) (Checkpoint, error) {
	if len(shelfKey) < 16 {
		return nil, fmt.Errorf("snmp: checkpoint seal: shelf key of %d bytes, want at least 16", len(shelfKey))
	}
	s := &sealedCkpt{inner: ck, shelfKey: bytes.Clone(shelfKey)}
	if _, err := rand.Read(s.salt[:]); err != nil {
		return nil, fmt.Errorf("snmp: checkpoint seal: salt: %w", err)
	}
	var err error
	if s.aead, err = s.derive(s.salt[:]); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *sealedCkpt) derive(salt []byte) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, s.shelfKey, salt, SealLabel, 32)
	if err != nil {
		return nil, fmt.Errorf("snmp: checkpoint seal: derive key: %w", err)
	}
	blk, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("snmp: checkpoint seal: %w", err)
	}
	return cipher.NewGCM(blk)
}

func (s *sealedCkpt) Save(ctx context.Context, data []byte) error {
	s.mu.Lock()
	s.count++
	out := make([]byte, sealHdrLen, sealHdrLen+len(data)+16)
	out[0] = sealVersion
	copy(out[1:], s.salt[:])
	binary.BigEndian.PutUint64(out[1+saltLen+4:], s.count)
	out = s.aead.Seal(out, out[1+saltLen:sealHdrLen], data, additional(out[:sealHdrLen]))
	s.mu.Unlock()
	return s.inner.Save(ctx, out)
}

func additional(hdr []byte) []byte { return append(bytes.Clone(hdr), sealAD...) }

func (s *sealedCkpt) Load() ([]byte, time.Time, error) {
	b, seen, err := s.inner.Load()
	if err != nil || b == nil {
		return b, seen, err
	}
	if len(b) > 0 && b[0] == '{' {
		// Written by a firmware that did not seal yet (a rolling upgrade takes over from
		// one): read it, so the engine carries on; the next save seals it. Accepting it gives
		// nothing away: the checkpoint stream itself is authenticated with the shelf key, so
		// only a shelf member could have written it.
		s.legacy.Add(1)
		return b, seen, nil
	}
	plain, err := s.open(b)
	if err != nil {
		return nil, seen, fmt.Errorf("%w: %v", ErrCkptRefused, err)
	}
	return plain, seen, nil
}

// open authenticates and decrypts a sealed section; it never panics on any input.
func (s *sealedCkpt) open(b []byte) ([]byte, error) {
	if len(b) < sealHdrLen+16 {
		return nil, fmt.Errorf("sealed section of %d octets is too short", len(b))
	}
	if b[0] != sealVersion {
		return nil, fmt.Errorf("sealed section version %d, want %d", b[0], sealVersion)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	salt := b[1 : 1+saltLen]
	if s.openAEAD == nil || !bytes.Equal(salt, s.openSalt[:]) {
		a, err := s.derive(salt)
		if err != nil {
			return nil, err
		}
		copy(s.openSalt[:], salt)
		s.openAEAD = a
	}
	plain, err := s.openAEAD.Open(nil, b[1+saltLen:sealHdrLen], b[sealHdrLen:], additional(b[:sealHdrLen]))
	if err != nil {
		return nil, errors.New("sealed section fails authentication (tampered, or another shelf key)")
	}
	return plain, nil
}
