package snmpagent

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"hash"

	"github.com/gosnmp/gosnmp"
)

// The v3 request path decrypts and frames the scoped PDU itself and hands gosnmp only the
// PDU (inside a v2c envelope): gosnmp's v3 decoder would parse the header and USM
// parameters again and build a new AES cipher per packet, which was a third of the v3 GET
// cost. Privacy protocols other than AES (DES) still go through gosnmp.

// aesKeyLen is the AES key length of a privacy protocol, 0 for non-AES ones.
func aesKeyLen(p gosnmp.SnmpV3PrivProtocol) int {
	switch p {
	case gosnmp.AES:
		return 16
	case gosnmp.AES192, gosnmp.AES192C:
		return 24
	case gosnmp.AES256, gosnmp.AES256C:
		return 32
	}
	return 0
}

// newPrivBlock makes the user's AES block (safe for concurrent use), or nil.
func newPrivBlock(p gosnmp.SnmpV3PrivProtocol, key []byte) (cipher.Block, error) {
	n := aesKeyLen(p)
	if n == 0 {
		return nil, nil
	}
	if len(key) < n {
		return nil, fmt.Errorf("privacy key of %d octets, want %d", len(key), n)
	}
	return aes.NewCipher(key[:n])
}

// cfbDecrypt decrypts AES-CFB128 (RFC 3826 3.1.4) in place.
func cfbDecrypt(b cipher.Block, iv *[16]byte, data []byte) {
	var ks [16]byte
	prev := iv[:]
	for off := 0; off < len(data); off += 16 {
		b.Encrypt(ks[:], prev)
		end := min(off+16, len(data))
		var c [16]byte
		copy(c[:], data[off:end]) // the next block's input is this ciphertext
		for i := off; i < end; i++ {
			data[i] ^= ks[i-off]
		}
		prev = c[:]
	}
}

// scopedPDU decodes msgData of a v3 request whose USM checks passed: decrypting it (AES, in
// place) when privPriv, then the scopedPDU. ok=false means the fast path does not apply
// (DES); err is a PDU that cannot be read.
func (a *Agent) scopedPDU(msg []byte, h *msgHeader, u *usmUser, priv bool) (pkt *gosnmp.SnmpPacket, ok bool, err error) {
	data := msg[h.data:]
	if priv {
		if u.privBlock == nil {
			return nil, false, nil
		}
		tag, s, e, err := tlv(data, 0)
		if err != nil || tag != 0x04 || e != len(data) {
			return nil, true, fmt.Errorf("%w: encrypted PDU is not one OCTET STRING", errBER)
		}
		var iv [16]byte
		binary.BigEndian.PutUint32(iv[0:], uint32(h.boots))
		binary.BigEndian.PutUint32(iv[4:], uint32(h.time))
		copy(iv[8:], h.privPar)
		data = data[s:e]
		cfbDecrypt(u.privBlock, &iv, data)
	}
	tag, s, e, err := tlv(data, 0)
	if err != nil || tag != 0x30 || (!priv && e != len(data)) {
		return nil, true, fmt.Errorf("%w: scopedPDU is not a SEQUENCE", errBER)
	}
	// A decrypted PDU may carry padding after the SEQUENCE; ignore it.
	var ctx [2][]byte
	for i := range ctx {
		t, fs, fe, err := tlv(data[:e], s)
		if err != nil || t != 0x04 {
			return nil, true, fmt.Errorf("%w: scopedPDU context field", errBER)
		}
		ctx[i], s = data[fs:fe], fe
	}
	if _, _, pe, err := tlv(data[:e], s); err != nil || pe != e {
		return nil, true, fmt.Errorf("%w: scopedPDU PDU", errBER)
	}
	pdu := data[s:e]
	// SEQUENCE { version 1 (v2c), community "", PDU }: gosnmp decodes the PDU alone.
	env := make([]byte, 0, len(pdu)+12)
	env = append(env, 0x30)
	env = appendBERLength(env, 5+len(pdu))
	env = append(env, 0x02, 0x01, 0x01, 0x04, 0x00)
	env = append(env, pdu...)
	dec := gosnmp.GoSNMP{Version: gosnmp.Version2c}
	pkt, err = dec.SnmpDecodePacket(env)
	if err != nil {
		return nil, true, err
	}
	pkt.Version = gosnmp.Version3
	pkt.Community = ""
	pkt.MsgID = uint32(h.msgID)
	pkt.MsgFlags = gosnmp.SnmpV3MsgFlags(h.flags)
	pkt.SecurityModel = gosnmp.UserSecurityModel
	pkt.ContextEngineID, pkt.ContextName = string(ctx[0]), string(ctx[1])
	return pkt, true, nil
}

func appendBERLength(b []byte, n int) []byte {
	switch {
	case n < 0x80:
		return append(b, byte(n))
	case n < 0x100:
		return append(b, 0x81, byte(n))
	case n < 0x10000:
		return append(b, 0x82, byte(n>>8), byte(n))
	}
	return append(b, 0x83, byte(n>>16), byte(n>>8), byte(n))
}

// cfbEncrypt encrypts AES-CFB128 (RFC 3826 3.1.3) in place.
func cfbEncrypt(b cipher.Block, iv *[16]byte, data []byte) {
	var ks [16]byte
	prev := iv[:]
	for off := 0; off < len(data); off += 16 {
		b.Encrypt(ks[:], prev)
		end := min(off+16, len(data))
		for i := off; i < end; i++ {
			data[i] ^= ks[i-off]
		}
		prev = data[off:end]
	}
}

func appendBERUint(b []byte, v uint32) []byte {
	var tmp [5]byte
	n := 0
	for x := uint64(v); ; x >>= 8 {
		tmp[4-n] = byte(x)
		n++
		if x < 0x80 {
			break
		}
	}
	b = append(b, 0x02, byte(n))
	return append(b, tmp[5-n:]...)
}

func appendTLV(b []byte, tag byte, content []byte) []byte {
	b = append(b, tag)
	b = appendBERLength(b, len(content))
	return append(b, content...)
}

// marshalV3Response builds a v3 response around pdu (a BER-encoded PDU) itself: the USM
// header, AES encryption with the user's block and the HMAC from the user's pool, where
// gosnmp would build a cipher and an HMAC per packet and encode the PDU twice.
func (a *Agent) marshalV3Response(r *request, pdu []byte, engineID []byte, boots, now uint32) []byte {
	u := r.user
	scoped := make([]byte, 0, len(pdu)+len(engineID)+len(r.pkt.ContextName)+16)
	scoped = append(scoped, 0x30)
	scoped = appendBERLength(scoped, len(pdu)+berTLVLen(len(engineID))+berTLVLen(len(r.pkt.ContextName)))
	scoped = appendTLV(scoped, 0x04, engineID)
	scoped = appendTLV(scoped, 0x04, []byte(r.pkt.ContextName))
	scoped = append(scoped, pdu...)

	var salt [8]byte
	var privPar []byte
	if r.flags == gosnmp.AuthPriv {
		binary.BigEndian.PutUint64(salt[:], a.salt.Add(1))
		privPar = salt[:]
		var iv [16]byte
		binary.BigEndian.PutUint32(iv[0:], boots)
		binary.BigEndian.PutUint32(iv[4:], now)
		copy(iv[8:], salt[:])
		cfbEncrypt(u.privBlock, &iv, scoped)
	}
	macLen := 0
	if r.flags&gosnmp.AuthNoPriv != 0 {
		macLen = u.macLen
	}
	// msgSecurityParameters
	var zeros [48]byte
	usm := make([]byte, 0, 64+len(engineID)+len(u.Name))
	usm = appendTLV(usm, 0x04, engineID)
	usm = appendBERUint(usm, boots)
	usm = appendBERUint(usm, now)
	usm = appendTLV(usm, 0x04, []byte(u.Name))
	authInUSM := len(usm) + 2 // msgAuthenticationParameters' contents (macLen < 0x80)
	usm = appendTLV(usm, 0x04, zeros[:macLen])
	usm = appendTLV(usm, 0x04, privPar)
	usmSeq := appendTLV(make([]byte, 0, len(usm)+4), 0x30, usm)

	global := make([]byte, 0, 24)
	global = appendBERUint(global, r.pkt.MsgID)
	global = appendBERUint(global, uint32(a.maxMsg))
	global = append(global, 0x04, 0x01, byte(r.flags))
	global = appendBERUint(global, uint32(gosnmp.UserSecurityModel))

	body := make([]byte, 0, 3+berTLVLen(len(global))+berTLVLen(len(usmSeq))+berTLVLen(len(scoped)))
	body = append(body, 0x02, 0x01, 0x03)
	body = appendTLV(body, 0x30, global)
	// Where the digest goes in body: past the version, msgGlobalData, and the headers of the
	// OCTET STRING and the USM SEQUENCE.
	authInBody := len(body) + (berTLVLen(len(usmSeq)) - len(usmSeq)) + (len(usmSeq) - len(usm)) + authInUSM
	body = appendTLV(body, 0x04, usmSeq)
	if r.flags == gosnmp.AuthPriv {
		body = appendTLV(body, 0x04, scoped)
	} else {
		body = append(body, scoped...)
	}
	out := make([]byte, 0, len(body)+4)
	out = append(out, 0x30)
	out = appendBERLength(out, len(body))
	authAt := len(out) + authInBody
	out = append(out, body...)
	if macLen > 0 {
		mac := u.macs.Get().(hash.Hash)
		mac.Reset()
		mac.Write(out)
		var sum [64]byte
		copy(out[authAt:authAt+macLen], mac.Sum(sum[:0])[:macLen])
		u.macs.Put(mac)
	}
	return out
}

// berTLVLen is the encoded size of a TLV with n content octets.
func berTLVLen(n int) int {
	switch {
	case n < 0x80:
		return 2 + n
	case n < 0x100:
		return 3 + n
	case n < 0x10000:
		return 4 + n
	}
	return 5 + n
}

// v2cPDU returns the PDU of a v1/v2c message: SEQUENCE { version, community, PDU }.
func v2cPDU(msg []byte) ([]byte, error) {
	_, s, e, err := tlv(msg, 0)
	if err != nil {
		return nil, err
	}
	for i := 0; i < 2; i++ {
		if _, _, fe, err := tlv(msg[:e], s); err == nil {
			s = fe
		} else {
			return nil, err
		}
	}
	if _, _, pe, err := tlv(msg[:e], s); err != nil || pe != e {
		return nil, fmt.Errorf("%w: v2c message PDU", errBER)
	}
	return msg[s:e], nil
}
