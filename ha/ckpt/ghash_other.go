//go:build !amd64

package ckpt

func ghashBlocks(y *[16]byte, htab *[16][16]byte, p *byte, n int) {
	panic("ckpt: no fast GHASH on this platform")
}

const fastGHASH = false
