package snmpagent

import (
	"crypto/cipher"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"sync"

	"github.com/gosnmp/gosnmp"
)

// User is a USM user. Passphrases are localized to the agent's engine ID
// with gosnmp's key localization (RFC 3414 A.2, RFC 7860, RFC 3826).
type User struct {
	Name           string
	Auth           gosnmp.SnmpV3AuthProtocol // 0 or NoAuth: none
	AuthPassphrase string
	Priv           gosnmp.SnmpV3PrivProtocol // 0 or NoPriv: none
	PrivPassphrase string
	// Group, if set, makes the user a member of this VACM group for the
	// USM security model.
	Group string
}

type usmUser struct {
	User
	authKey, privKey []byte
	newHash          func() hash.Hash
	macLen           int
	// Per-user crypto state made once, not per packet: the AES block (nil for DES) and
	// keyed HMACs (reset between uses).
	privBlock cipher.Block
	macs      sync.Pool
}

func (u *usmUser) hasAuth() bool { return u.Auth > gosnmp.NoAuth }
func (u *usmUser) hasPriv() bool { return u.Priv > gosnmp.NoPriv }

func macFor(p gosnmp.SnmpV3AuthProtocol) (func() hash.Hash, int, error) {
	switch p {
	case gosnmp.MD5:
		return md5.New, 12, nil
	case gosnmp.SHA:
		return sha1.New, 12, nil
	case gosnmp.SHA224:
		return sha256.New224, 16, nil
	case gosnmp.SHA256:
		return sha256.New, 24, nil
	case gosnmp.SHA384:
		return sha512.New384, 32, nil
	case gosnmp.SHA512:
		return sha512.New, 48, nil
	}
	return nil, 0, fmt.Errorf("unknown authentication protocol %v", p)
}

// localize checks u and derives its keys for engineID.
func localize(u User, engineID []byte) (*usmUser, error) {
	if u.Name == "" || len(u.Name) > 32 {
		return nil, fmt.Errorf("snmpagent: user %q: name must be 1..32 octets", u.Name)
	}
	uu := &usmUser{User: u}
	if u.Auth == 0 {
		uu.Auth = gosnmp.NoAuth
	}
	if u.Priv == 0 {
		uu.Priv = gosnmp.NoPriv
	}
	if uu.hasPriv() && !uu.hasAuth() {
		return nil, fmt.Errorf("snmpagent: user %q: privacy needs authentication", u.Name)
	}
	if !uu.hasAuth() {
		return uu, nil
	}
	var err error
	if uu.newHash, uu.macLen, err = macFor(uu.Auth); err != nil {
		return nil, fmt.Errorf("snmpagent: user %q: %w", u.Name, err)
	}
	// gosnmp silently yields an empty key for an empty passphrase; RFC 3414
	// 11.2 asks for at least 8 octets anyway.
	if len(u.AuthPassphrase) < 8 || (uu.hasPriv() && len(u.PrivPassphrase) < 8) {
		return nil, fmt.Errorf("snmpagent: user %q: passphrases must be at least 8 octets", u.Name)
	}
	switch uu.Priv {
	case gosnmp.NoPriv, gosnmp.DES, gosnmp.AES, gosnmp.AES192, gosnmp.AES256, gosnmp.AES192C, gosnmp.AES256C:
	default:
		return nil, fmt.Errorf("snmpagent: user %q: unknown privacy protocol %v", u.Name, uu.Priv)
	}
	sp := &gosnmp.UsmSecurityParameters{
		AuthoritativeEngineID:    string(engineID),
		UserName:                 u.Name,
		AuthenticationProtocol:   uu.Auth,
		AuthenticationPassphrase: u.AuthPassphrase,
		PrivacyProtocol:          uu.Priv,
		PrivacyPassphrase:        u.PrivPassphrase,
	}
	if err := sp.InitSecurityKeys(); err != nil {
		return nil, fmt.Errorf("snmpagent: user %q: localize keys: %w", u.Name, err)
	}
	uu.authKey, uu.privKey = sp.SecretKey, sp.PrivacyKey
	if len(uu.authKey) == 0 || (uu.hasPriv() && len(uu.privKey) == 0) {
		return nil, fmt.Errorf("snmpagent: user %q: key localization gave no key", u.Name)
	}
	if uu.hasPriv() {
		if uu.privBlock, err = newPrivBlock(uu.Priv, uu.privKey); err != nil {
			return nil, fmt.Errorf("snmpagent: user %q: %w", u.Name, err)
		}
	}
	nh, key := uu.newHash, uu.authKey
	uu.macs.New = func() any { return hmac.New(nh, key) }
	return uu, nil
}

// params returns gosnmp security parameters carrying u's localized keys,
// for the codec to decrypt or to authenticate and encrypt a message.
func (u *usmUser) params(engineID []byte, boots, time uint32) *gosnmp.UsmSecurityParameters {
	return &gosnmp.UsmSecurityParameters{
		AuthoritativeEngineID:    string(engineID),
		AuthoritativeEngineBoots: boots,
		AuthoritativeEngineTime:  time,
		UserName:                 u.Name,
		AuthenticationProtocol:   u.Auth,
		PrivacyProtocol:          u.Priv,
		SecretKey:                u.authKey,
		PrivacyKey:               u.privKey,
	}
}

// verifyDigest checks msg's HMAC (RFC 3414 6.3.2, RFC 7860 4.2.2) in
// constant time. It zeroes the authentication parameters inside msg, as
// the digest is computed over the message with that field zeroed.
func (u *usmUser) verifyDigest(msg []byte, h *msgHeader) bool {
	if len(h.authPar) != u.macLen {
		return false
	}
	var got [48]byte
	copy(got[:], h.authPar)
	clear(msg[h.authOff : h.authOff+u.macLen])
	mac := u.macs.Get().(hash.Hash)
	mac.Reset()
	mac.Write(msg)
	var sum [64]byte
	want := mac.Sum(sum[:0])[:u.macLen]
	u.macs.Put(mac)
	return hmac.Equal(want, got[:u.macLen])
}
