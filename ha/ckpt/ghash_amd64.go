package ckpt

import "golang.org/x/sys/cpu"

// ghashBlocks folds n bytes at p (whole 16-byte blocks) into the GHASH
// state y (reflected form) under the key powers htab (ghash_amd64.s).
//
//go:noescape
func ghashBlocks(y *[16]byte, htab *[32][16]byte, p *byte, n int)

// fastGHASH: the CPU has what ghash_amd64.s needs (AVX-512 with
// VPCLMULQDQ); otherwise a Link uses the standard library's GCM.
var fastGHASH = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL && cpu.X86.HasAVX512VPCLMULQDQ && cpu.X86.HasPCLMULQDQ
