package crc32c

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

// useFold: the kernel needs AVX2 and the VEX-256 form of VPCLMULQDQ
// (CPUID leaf 7, ECX bit 10; x/sys/cpu reports it only with AVX-512).
var useFold = cpu.X86.HasAVX2 && cpu.X86.HasPCLMULQDQ && hasVPCLMULQDQ()

func hasVPCLMULQDQ() bool {
	_, _, ecx, _ := cpuid(7, 0)
	return ecx&(1<<10) != 0
}

// cpuid executes CPUID with the given leaf and sub-leaf.
//
//go:noescape
func cpuid(leaf, sub uint32) (eax, ebx, ecx, edx uint32)

// foldAVX2 folds n bytes of src (n a multiple of 128, at least 256) into
// 128 bits whose raw CRC equals the raw CRC of src started from s, and
// copies them to dst (streaming past the cache in modeStream). keys is foldKeys.
//
//go:noescape
func foldAVX2(dst, src *byte, n int, s uint32, keys *[12]uint64, mode int) (lo, hi uint64)

func fold(dst, src *byte, n int, s uint32, mode int) (lo, hi uint64) {
	return foldAVX2(dst, src, n, s, &foldKeys, mode)
}

func uintptrOf(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }

func hybridKernel(dst, src *byte, k, s int, crc uint32, keys *[12]uint64, shiftKey uint32, copy bool) uint32 {
	return hybridAVX2(dst, src, k, s, crc, keys, shiftKey, copy)
}

// hybridAVX2: see fold_amd64.s.
//
//go:noescape
func hybridAVX2(dst, src *byte, k, s int, crc uint32, keys *[12]uint64, shiftKey uint32, copy bool) uint32
