#include "textflag.h"

// func cpuid(leaf, sub uint32) (eax, ebx, ecx, edx uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL leaf+0(FP), AX
	MOVL sub+4(FP), CX
	CPUID
	MOVL AX, eax+8(FP)
	MOVL BX, ebx+12(FP)
	MOVL CX, ecx+16(FP)
	MOVL DX, edx+20(FP)
	RET

// FOLD moves the two 128-bit lanes of acc forward by the distance keys k
// stand for and adds data: acc = acc.lo*k.lo ^ acc.hi*k.hi ^ data.
#define FOLD(k, acc, t, data) \
	VPCLMULQDQ $0x00, k, acc, t; \
	VPCLMULQDQ $0x11, k, acc, acc; \
	VPXOR      data, t, t; \
	VPXOR      t, acc, acc

// LOAD4 reads 128 bytes at SI into Y5-Y8.
#define LOAD4 \
	VMOVDQU 0(SI), Y5; \
	VMOVDQU 32(SI), Y6; \
	VMOVDQU 64(SI), Y7; \
	VMOVDQU 96(SI), Y8

// KEYS loads the fold multipliers at R8 (foldKeys): for 1024-bit steps into
// Y4, 256-bit ones into Y10, 128-bit ones into X11.
#define KEYS \
	VMOVDQU 0(R8), Y4; \
	VMOVDQU 32(R8), Y10; \
	VMOVDQU 64(R8), X11

// ACC4 reads the first 128 bytes at SI into the accumulators Y0-Y3.
#define ACC4 \
	VMOVDQU 0(SI), Y0; \
	VMOVDQU 32(SI), Y1; \
	VMOVDQU 64(SI), Y2; \
	VMOVDQU 96(SI), Y3

// STORE4 and STREAM4 write four registers to the 128 bytes at DI, through
// the cache or past it (DI 32-byte aligned).
#define STORE4(a, b, c, d) \
	VMOVDQU a, 0(DI); \
	VMOVDQU b, 32(DI); \
	VMOVDQU c, 64(DI); \
	VMOVDQU d, 96(DI)

#define STREAM4(a, b, c, d) \
	VMOVNTDQ a, 0(DI); \
	VMOVNTDQ b, 32(DI); \
	VMOVNTDQ c, 64(DI); \
	VMOVNTDQ d, 96(DI)

#define FOLD4 \
	FOLD(Y4, Y0, Y9, Y5); \
	FOLD(Y4, Y1, Y12, Y6); \
	FOLD(Y4, Y2, Y13, Y7); \
	FOLD(Y4, Y3, Y14, Y8)

// func foldAVX2(dst, src *byte, n int, s uint32, keys *[12]uint64, mode int) (lo, hi uint64)
//
// Eight 128-bit accumulators (Y0-Y3, two lanes each) take the message's
// 16-byte blocks in turn; each round moves them 1024 bits forward and adds
// the next 128 bytes. At the end they are folded into one (256-bit steps,
// then 128) which is returned.
TEXT ·foldAVX2(SB), NOSPLIT, $0-64
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	MOVL s+24(FP), DX
	MOVQ keys+32(FP), R8
	MOVQ mode+40(FP), R9

	KEYS

	// First 128 bytes: the accumulators, with the starting CRC added to
	// the first 32 bits of the message (after the copy took them as they are).
	ACC4
	CMPQ R9, $2
	JEQ  first_stream
	STORE4(Y0, Y1, Y2, Y3)
	JMP  first_stored

first_stream:
	STREAM4(Y0, Y1, Y2, Y3)

first_stored:
	ADDQ $128, DI
	VMOVD DX, X9
	VPXOR Y9, Y0, Y0
	ADDQ  $128, SI
	SUBQ  $128, CX
	JZ    reduce
	CMPQ  R9, $2
	JEQ   loop_stream

loop_copy:
	LOAD4
	STORE4(Y5, Y6, Y7, Y8)
	FOLD4
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $128, CX
	JNZ  loop_copy
	JMP  reduce

loop_stream:
	PREFETCHNTA 0x1C0(SI)
	PREFETCHNTA 0x280(SI)
	LOAD4
	STREAM4(Y5, Y6, Y7, Y8)
	FOLD4
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $128, CX
	JNZ  loop_stream
	SFENCE

reduce:
	FOLD(Y10, Y0, Y9, Y1)
	FOLD(Y10, Y0, Y9, Y2)
	FOLD(Y10, Y0, Y9, Y3)
	VEXTRACTI128 $1, Y0, X14
	VPCLMULQDQ   $0x00, X11, X0, X5
	VPCLMULQDQ   $0x11, X11, X0, X6
	VPXOR        X5, X6, X6
	VPXOR        X14, X6, X6
	VMOVQ        X6, AX
	VPEXTRQ      $1, X6, BX
	MOVQ         AX, lo+48(FP)
	MOVQ         BX, hi+56(FP)
	VZEROUPPER
	RET

// STREAM_SUM adds the qword at off in each of the three streams (R10, R10+R11,
// R10+2*R11) to the stream CRCs AX, BX, DX.
#define STREAM_SUM(off) \
	CRC32Q off(R10), AX; \
	CRC32Q off(R10)(R11*1), BX; \
	CRC32Q off(R10)(R11*2), DX

// STREAM_COPY is STREAM_SUM that also copies the qwords to R12 (+R11, +2*R11).
#define STREAM_COPY(off) \
	MOVQ   off(R10), R8; \
	MOVQ   off(R10)(R11*1), R9; \
	MOVQ   off(R10)(R11*2), R13; \
	MOVQ   R8, off(R12); \
	MOVQ   R9, off(R12)(R11*1); \
	MOVQ   R13, off(R12)(R11*2); \
	CRC32Q R8, AX; \
	CRC32Q R9, BX; \
	CRC32Q R13, DX

// SHIFT_ADD sets t (CX) to t*x^(8*S) + c: a carry-less multiply by
// x^(8*S-33) (in X1), reduced by the CRC32 instruction.
#define SHIFT_ADD(c) \
	VMOVQ      CX, X0; \
	VPCLMULQDQ $0x00, X1, X0, X0; \
	VMOVQ      X0, R8; \
	XORL       CX, CX; \
	CRC32Q     R8, CX; \
	XORL       c, CX

// func hybridAVX2(dst, src *byte, k, s int, crc uint32, keys *[12]uint64, shiftKey uint32, copy bool) uint32
//
// The CRC unit and the carry-less multiplier work side by side: the first
// 128*k bytes are folded as in foldAVX2 (with crc, the raw starting state,
// added), while three CRC32 streams take the next three runs of s bytes.
// The fold is reduced to a CRC, and the streams are appended to it by
// shifting (t = t*x^(8s) + c, shiftKey being x^(8s-33) mod P). It returns
// the raw CRC of the 128*k+3*s bytes; with copy, they are copied to dst.
TEXT ·hybridAVX2(SB), NOSPLIT, $0-60
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ k+16(FP), CX
	MOVQ s+24(FP), R11
	MOVQ keys+40(FP), R8

	KEYS

	// Stream pointers: they start after the folded part.
	MOVQ CX, R8
	SHLQ $7, R8
	LEAQ (SI)(R8*1), R10
	LEAQ (DI)(R8*1), R12
	XORL AX, AX
	XORL BX, BX
	XORL DX, DX

	ACC4
	MOVB copy+52(FP), R9
	CMPB R9, $0
	JEQ  h_first_done
	STORE4(Y0, Y1, Y2, Y3)
	ADDQ $128, DI

h_first_done:
	MOVL  crc+32(FP), R8
	VMOVD R8, X9
	VPXOR Y9, Y0, Y0
	ADDQ  $128, SI

	// The streams' qwords left after the joint loop, which gives each
	// 48 bytes per round.
	MOVQ R11, R13
	SHRQ $3, R13
	DECQ CX
	LEAQ (CX)(CX*2), R8
	SHLQ $1, R8
	SUBQ R8, R13
	MOVQ R13, s+24(FP) // reused as the count of the streams' own rounds
	CMPQ CX, $0
	JEQ  h_joint_done
	CMPB R9, $0
	JEQ  h_loop_sum

h_loop_copy:
	LOAD4
	STORE4(Y5, Y6, Y7, Y8)
	FOLD(Y4, Y0, Y9, Y5)
	STREAM_COPY(0)
	FOLD(Y4, Y1, Y12, Y6)
	STREAM_COPY(8)
	STREAM_COPY(16)
	FOLD(Y4, Y2, Y13, Y7)
	STREAM_COPY(24)
	STREAM_COPY(32)
	FOLD(Y4, Y3, Y14, Y8)
	STREAM_COPY(40)
	ADDQ $128, SI
	ADDQ $128, DI
	ADDQ $48, R10
	ADDQ $48, R12
	DECQ CX
	JNZ  h_loop_copy
	JMP  h_joint_done

h_loop_sum:
	LOAD4
	FOLD(Y4, Y0, Y9, Y5)
	STREAM_SUM(0)
	FOLD(Y4, Y1, Y12, Y6)
	STREAM_SUM(8)
	STREAM_SUM(16)
	FOLD(Y4, Y2, Y13, Y7)
	STREAM_SUM(24)
	STREAM_SUM(32)
	FOLD(Y4, Y3, Y14, Y8)
	STREAM_SUM(40)
	ADDQ $128, SI
	ADDQ $48, R10
	DECQ CX
	JNZ  h_loop_sum

h_joint_done:
	MOVQ s+24(FP), CX
	CMPQ CX, $0
	JEQ  h_streams_done
	CMPB copy+52(FP), $0 // not R9: STREAM_COPY uses it
	JEQ  h_tail_sum

h_tail_copy:
	STREAM_COPY(0)
	ADDQ $8, R10
	ADDQ $8, R12
	DECQ CX
	JNZ  h_tail_copy
	JMP  h_streams_done

h_tail_sum:
	STREAM_SUM(0)
	ADDQ $8, R10
	DECQ CX
	JNZ  h_tail_sum

h_streams_done:
	// Fold the accumulators into one 128-bit value, and reduce it to the
	// raw CRC of the folded part with two CRC32 instructions.
	FOLD(Y10, Y0, Y9, Y1)
	FOLD(Y10, Y0, Y9, Y2)
	FOLD(Y10, Y0, Y9, Y3)
	VEXTRACTI128 $1, Y0, X14
	VPCLMULQDQ   $0x00, X11, X0, X5
	VPCLMULQDQ   $0x11, X11, X0, X6
	VPXOR        X5, X6, X6
	VPXOR        X14, X6, X6
	VMOVQ        X6, R8
	VPEXTRQ      $1, X6, R9
	XORL         CX, CX
	CRC32Q       R8, CX
	CRC32Q       R9, CX

	// Append the streams.
	MOVL  shiftKey+48(FP), R8
	VMOVQ R8, X1
	SHIFT_ADD(AX)
	SHIFT_ADD(BX)
	SHIFT_ADD(DX)
	MOVL  CX, ret+56(FP)
	VZEROUPPER
	RET
