// GHASH over whole 16-byte blocks with AVX-512 VPCLMULQDQ: 32 blocks
// per step, aggregated (one reduction per step), then 16, then 4, then 1.
// A step's products but the first do not wait for the state, so the
// longer the step the less the chain of one reduction after another
// bounds the rate (BenchmarkGMAC).
// Field elements are held byte-reversed (the bit-reflected integer form)
// and multiplied by H^k·y (Montgomery form, see gmac.go), so a product
// needs no shift and its reduction is two carry-less multiplications by
// the low part of the reflected modulus (0xC2 << 56).

#include "textflag.h"

// Reverses the bytes of each 128-bit lane (VPSHUFB control).
DATA ghBswap<>+0x00(SB)/8, $0x08090a0b0c0d0e0f
DATA ghBswap<>+0x08(SB)/8, $0x0001020304050607
DATA ghBswap<>+0x10(SB)/8, $0x08090a0b0c0d0e0f
DATA ghBswap<>+0x18(SB)/8, $0x0001020304050607
DATA ghBswap<>+0x20(SB)/8, $0x08090a0b0c0d0e0f
DATA ghBswap<>+0x28(SB)/8, $0x0001020304050607
DATA ghBswap<>+0x30(SB)/8, $0x08090a0b0c0d0e0f
DATA ghBswap<>+0x38(SB)/8, $0x0001020304050607
GLOBL ghBswap<>(SB), RODATA|NOPTR, $64

DATA ghPoly<>+0x00(SB)/8, $0xc200000000000000
DATA ghPoly<>+0x08(SB)/8, $0
GLOBL ghPoly<>(SB), RODATA|NOPTR, $16

// REDUCE folds the 256-bit product [hi:lo] (X regs) to 128 bits in
// hi; p holds the constant, t is scratch.
#define REDUCE(lo, hi, p, t) \
	VPCLMULQDQ $0x00, p, lo, t \
	VPSHUFD $0x4e, lo, lo \
	VPXOR t, lo, lo \
	VPCLMULQDQ $0x00, p, lo, t \
	VPSHUFD $0x4e, lo, lo \
	VPTERNLOGQ $0x96, t, lo, hi

// MULACC adds the carry-less product of the four blocks in x and the
// four powers in h to the lo (Z5), hi (Z6) and mid (Z7) sums; Z9-Z12
// are scratch.
#define MULACC(h, x) \
	VPCLMULQDQ $0x00, h, x, Z9 \
	VPCLMULQDQ $0x11, h, x, Z10 \
	VPCLMULQDQ $0x01, h, x, Z11 \
	VPCLMULQDQ $0x10, h, x, Z12 \
	VPXORQ Z9, Z5, Z5 \
	VPXORQ Z10, Z6, Z6 \
	VPTERNLOGQ $0x96, Z11, Z12, Z7

// FOLD sums the four lanes of lo, hi and mid, folds mid into [hi:lo]
// and reduces: the new state in X0.
#define FOLD \
	VEXTRACTI64X4 $1, Z5, Y9 \
	VEXTRACTI64X4 $1, Z6, Y10 \
	VEXTRACTI64X4 $1, Z7, Y11 \
	VPXOR Y9, Y5, Y5 \
	VPXOR Y10, Y6, Y6 \
	VPXOR Y11, Y7, Y7 \
	VEXTRACTI128 $1, Y5, X9 \
	VEXTRACTI128 $1, Y6, X10 \
	VEXTRACTI128 $1, Y7, X11 \
	VPXOR X9, X5, X5 \
	VPXOR X10, X6, X6 \
	VPXOR X11, X7, X7 \
	VPSLLDQ $8, X7, X9 \
	VPSRLDQ $8, X7, X7 \
	VPXOR X9, X5, X5 \
	VPXOR X7, X6, X6 \
	REDUCE(X5, X6, X30, X9) \
	VMOVDQA X6, X0

// func ghashBlocks(y *[16]byte, htab *[32][16]byte, p *byte, n int)
TEXT ·ghashBlocks(SB), NOSPLIT, $0-32
	MOVQ y+0(FP), DI
	MOVQ htab+8(FP), SI
	MOVQ p+16(FP), DX
	MOVQ n+24(FP), CX

	VMOVDQU64 ghBswap<>(SB), Z31
	VMOVDQU64 ghPoly<>(SB), X30
	VMOVDQU (DI), X0 // y, reflected

	CMPQ CX, $512
	JB   sixteenStart
	VMOVDQU64 0(SI), Z24   // H^32..H^29
	VMOVDQU64 64(SI), Z25  // H^28..H^25
	VMOVDQU64 128(SI), Z26 // H^24..H^21
	VMOVDQU64 192(SI), Z27 // H^20..H^17
	VMOVDQU64 256(SI), Z20 // H^16..H^13
	VMOVDQU64 320(SI), Z21 // H^12..H^9
	VMOVDQU64 384(SI), Z22 // H^8..H^5
	VMOVDQU64 448(SI), Z23 // H^4..H^1

thirtytwo:
	VMOVDQU64 0(DX), Z1
	VMOVDQU64 64(DX), Z2
	VMOVDQU64 128(DX), Z3
	VMOVDQU64 192(DX), Z4
	VMOVDQU64 256(DX), Z13
	VMOVDQU64 320(DX), Z14
	VMOVDQU64 384(DX), Z15
	VMOVDQU64 448(DX), Z16
	VPSHUFB Z31, Z1, Z1
	VPSHUFB Z31, Z2, Z2
	VPSHUFB Z31, Z3, Z3
	VPSHUFB Z31, Z4, Z4
	VPSHUFB Z31, Z13, Z13
	VPSHUFB Z31, Z14, Z14
	VPSHUFB Z31, Z15, Z15
	VPSHUFB Z31, Z16, Z16
	// The last 28 blocks first: they do not wait for the state.
	VPCLMULQDQ $0x00, Z25, Z2, Z5 // lo
	VPCLMULQDQ $0x11, Z25, Z2, Z6 // hi
	VPCLMULQDQ $0x01, Z25, Z2, Z7 // mid
	VPCLMULQDQ $0x10, Z25, Z2, Z8
	VPXORQ Z8, Z7, Z7
	MULACC(Z26, Z3)
	MULACC(Z27, Z4)
	MULACC(Z20, Z13)
	MULACC(Z21, Z14)
	MULACC(Z22, Z15)
	MULACC(Z23, Z16)
	VPXORQ Z0, Z1, Z1 // y into the first block (X0's upper lanes are zero)
	MULACC(Z24, Z1)
	FOLD

	ADDQ $512, DX
	SUBQ $512, CX
	CMPQ CX, $512
	JAE  thirtytwo

sixteenStart:
	CMPQ CX, $256
	JB   four
	VMOVDQU64 256(SI), Z20 // H^16..H^13
	VMOVDQU64 320(SI), Z21 // H^12..H^9
	VMOVDQU64 384(SI), Z22 // H^8..H^5
	VMOVDQU64 448(SI), Z23 // H^4..H^1

sixteen:
	VMOVDQU64 0(DX), Z1
	VMOVDQU64 64(DX), Z2
	VMOVDQU64 128(DX), Z3
	VMOVDQU64 192(DX), Z4
	VPSHUFB Z31, Z1, Z1
	VPSHUFB Z31, Z2, Z2
	VPSHUFB Z31, Z3, Z3
	VPSHUFB Z31, Z4, Z4
	VPXORQ Z0, Z1, Z1 // y into the first block (X0's upper lanes are zero)

	VPCLMULQDQ $0x00, Z20, Z1, Z5 // lo
	VPCLMULQDQ $0x11, Z20, Z1, Z6 // hi
	VPCLMULQDQ $0x01, Z20, Z1, Z7 // mid
	VPCLMULQDQ $0x10, Z20, Z1, Z8
	VPCLMULQDQ $0x00, Z21, Z2, Z9
	VPCLMULQDQ $0x11, Z21, Z2, Z10
	VPCLMULQDQ $0x01, Z21, Z2, Z11
	VPCLMULQDQ $0x10, Z21, Z2, Z12
	VPXORQ Z9, Z5, Z5
	VPXORQ Z10, Z6, Z6
	VPTERNLOGQ $0x96, Z11, Z8, Z7 // Z7 ^= Z8 ^ Z11 (the destination is a source)
	VPXORQ Z12, Z7, Z7
	VPCLMULQDQ $0x00, Z22, Z3, Z9
	VPCLMULQDQ $0x11, Z22, Z3, Z10
	VPCLMULQDQ $0x01, Z22, Z3, Z11
	VPCLMULQDQ $0x10, Z22, Z3, Z12
	VPXORQ Z9, Z5, Z5
	VPXORQ Z10, Z6, Z6
	VPTERNLOGQ $0x96, Z11, Z12, Z7
	VPCLMULQDQ $0x00, Z23, Z4, Z9
	VPCLMULQDQ $0x11, Z23, Z4, Z10
	VPCLMULQDQ $0x01, Z23, Z4, Z11
	VPCLMULQDQ $0x10, Z23, Z4, Z12
	VPXORQ Z9, Z5, Z5
	VPXORQ Z10, Z6, Z6
	VPTERNLOGQ $0x96, Z11, Z12, Z7

	// Sum the four lanes of lo, hi, mid.
	VEXTRACTI64X4 $1, Z5, Y9
	VEXTRACTI64X4 $1, Z6, Y10
	VEXTRACTI64X4 $1, Z7, Y11
	VPXOR Y9, Y5, Y5
	VPXOR Y10, Y6, Y6
	VPXOR Y11, Y7, Y7
	VEXTRACTI128 $1, Y5, X9
	VEXTRACTI128 $1, Y6, X10
	VEXTRACTI128 $1, Y7, X11
	VPXOR X9, X5, X5
	VPXOR X10, X6, X6
	VPXOR X11, X7, X7
	// mid into [hi:lo].
	VPSLLDQ $8, X7, X9
	VPSRLDQ $8, X7, X7
	VPXOR X9, X5, X5
	VPXOR X7, X6, X6
	REDUCE(X5, X6, X30, X9)
	VMOVDQA X6, X0

	ADDQ $256, DX
	SUBQ $256, CX
	CMPQ CX, $256
	JAE  sixteen

four:
	CMPQ CX, $64
	JB   one
	VMOVDQU64 448(SI), Z23 // H^4..H^1

fourLoop:
	VMOVDQU64 0(DX), Z1
	VPSHUFB Z31, Z1, Z1
	VPXORQ Z0, Z1, Z1
	VPCLMULQDQ $0x00, Z23, Z1, Z5
	VPCLMULQDQ $0x11, Z23, Z1, Z6
	VPCLMULQDQ $0x01, Z23, Z1, Z7
	VPCLMULQDQ $0x10, Z23, Z1, Z8
	VPXORQ Z8, Z7, Z7
	VEXTRACTI64X4 $1, Z5, Y9
	VEXTRACTI64X4 $1, Z6, Y10
	VEXTRACTI64X4 $1, Z7, Y11
	VPXOR Y9, Y5, Y5
	VPXOR Y10, Y6, Y6
	VPXOR Y11, Y7, Y7
	VEXTRACTI128 $1, Y5, X9
	VEXTRACTI128 $1, Y6, X10
	VEXTRACTI128 $1, Y7, X11
	VPXOR X9, X5, X5
	VPXOR X10, X6, X6
	VPXOR X11, X7, X7
	VPSLLDQ $8, X7, X9
	VPSRLDQ $8, X7, X7
	VPXOR X9, X5, X5
	VPXOR X7, X6, X6
	REDUCE(X5, X6, X30, X9)
	VMOVDQA X6, X0
	ADDQ $64, DX
	SUBQ $64, CX
	CMPQ CX, $64
	JAE  fourLoop

one:
	CMPQ CX, $16
	JB   done
	VMOVDQU64 496(SI), X23 // H^1

oneLoop:
	VMOVDQU (DX), X1
	VPSHUFB X31, X1, X1
	VPXOR X0, X1, X1
	VPCLMULQDQ $0x00, X23, X1, X5
	VPCLMULQDQ $0x11, X23, X1, X6
	VPCLMULQDQ $0x01, X23, X1, X7
	VPCLMULQDQ $0x10, X23, X1, X8
	VPXOR X8, X7, X7
	VPSLLDQ $8, X7, X9
	VPSRLDQ $8, X7, X7
	VPXOR X9, X5, X5
	VPXOR X7, X6, X6
	REDUCE(X5, X6, X30, X9)
	VMOVDQA X6, X0
	ADDQ $16, DX
	SUBQ $16, CX
	CMPQ CX, $16
	JAE  oneLoop

done:
	VMOVDQU X0, (DI)
	VZEROUPPER
	RET
