//go:build !amd64

package ckpt

// ghashBlocks has no implementation here: fastGHASH is false, and a
// Link uses crypto/cipher's GCM.
func ghashBlocks(y *[16]byte, htab *[32][16]byte, p *byte, n int) {
	panic("ckpt: no fast GHASH on this platform")
}

var fastGHASH = false
