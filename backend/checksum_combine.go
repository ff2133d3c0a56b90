package backend

// CombineChecksum returns the CRC-32C of the concatenation a‖b given crcA, the
// CRC-32C of a, crcB, that of b, and lenB, the length of b. It lets a tier
// checksum the parts of an object in parallel (or in any order) and join the
// results, in about a microsecond.
func CombineChecksum(crcA, crcB uint32, lenB int64) uint32 {
	if lenB <= 0 {
		return crcA
	}
	// zlib's crc32_combine: crcA times x^(8·lenB) modulo the polynomial, plus crcB.
	return multModP(x2nModP(lenB, 3), crcA) ^ crcB
}

const castagnoliReflected = 0x82f63b78

// x2nTable[k] is x^(2^k) modulo the polynomial (bit-reflected).
var x2nTable = func() (t [32]uint32) {
	p := uint32(1) << 30 // x^1
	t[0] = p
	for n := 1; n < 32; n++ {
		p = multModP(p, p)
		t[n] = p
	}
	return t
}()

// multModP returns a·b modulo the polynomial (bit-reflected).
func multModP(a, b uint32) uint32 {
	m, p := uint32(1)<<31, uint32(0)
	for {
		if a&m != 0 {
			p ^= b
			if a&(m-1) == 0 {
				return p
			}
		}
		m >>= 1
		if b&1 != 0 {
			b = b>>1 ^ castagnoliReflected
		} else {
			b >>= 1
		}
	}
}

// x2nModP returns x^(n·2^k) modulo the polynomial.
func x2nModP(n int64, k uint) uint32 {
	p := uint32(1) << 31 // x^0
	for ; n != 0; n >>= 1 {
		if n&1 != 0 {
			p = multModP(x2nTable[k&31], p)
		}
		k++
	}
	return p
}
