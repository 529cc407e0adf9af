//! The SIMD kernels of the record walker ([`crate::records`]): a 64-byte block's structural
//! bytes (quote, delimiter, LF, CR, NUL) as one bit mask each, and the bit operations the fast
//! path uses on them, on AVX-512 BW, AVX2 or the baseline (SSE2 on x86_64, plain code
//! elsewhere), chosen once from what the CPU offers ([`Simd::detect`]).

/// The fast path works on blocks of this many bytes, one bit per byte.
pub(crate) const BLOCK: usize = 64;

/// One bit per byte of a 64-byte block for each structural byte.
pub(crate) struct Masks {
    pub(crate) quote: u64,
    pub(crate) delim: u64,
    pub(crate) lf: u64,
    pub(crate) cr: u64,
    /// Non-zero when the block holds a NUL byte (its bits need not say where).
    pub(crate) nul: u64,
}

/// How a block's masks are computed: chosen once per walker from what the CPU offers.
pub(crate) trait Classify {
    fn masks(block: &[u8], delimiter: u8) -> Masks;

    /// Bit i is the XOR of bits 0..=i.
    #[inline(always)]
    fn prefix_xor(x: u64) -> u64 {
        prefix_xor(x)
    }

    /// Position of the `k`-th (0-based) set bit of `x`, which has more than `k` set bits.
    #[inline(always)]
    fn select(mut x: u64, k: u32) -> u32 {
        for _ in 0..k {
            x &= x - 1;
        }
        x.trailing_zeros()
    }

    /// The `n` (at most 64) lowest bits of `x`.
    #[inline(always)]
    fn low_bits(x: u64, n: u32) -> u64 {
        if n < 64 {
            x & ((1u64 << n) - 1)
        } else {
            x
        }
    }
}

/// The baseline every target has (SSE2 on x86_64, plain code elsewhere).
pub(crate) struct Baseline;

impl Classify for Baseline {
    #[inline(always)]
    fn masks(block: &[u8], delimiter: u8) -> Masks {
        masks(block, delimiter)
    }
}

/// AVX2: two 32-byte compares per byte value instead of four 16-byte ones.
#[cfg(target_arch = "x86_64")]
pub(crate) struct Avx2;

#[cfg(target_arch = "x86_64")]
impl Classify for Avx2 {
    #[inline(always)]
    fn masks(block: &[u8], delimiter: u8) -> Masks {
        // SAFETY: `Avx2` is only used after `Simd::detect` found AVX2.
        unsafe { masks_avx2(block, delimiter) }
    }

    /// A carry-less multiply by all ones is the prefix XOR, in one instruction.
    #[inline(always)]
    fn prefix_xor(x: u64) -> u64 {
        use std::arch::x86_64::*;
        // SAFETY: as above; PCLMULQDQ is detected with AVX2 (`Simd::detect`).
        unsafe {
            let product = _mm_clmulepi64_si128(_mm_set_epi64x(0, x as i64), _mm_set1_epi8(-1), 0);
            _mm_cvtsi128_si64(product) as u64
        }
    }

    #[inline(always)]
    fn select(x: u64, k: u32) -> u32 {
        // SAFETY: as above; BMI2 is detected with AVX2 (`Simd::detect`).
        unsafe { std::arch::x86_64::_pdep_u64(1u64 << k, x).trailing_zeros() }
    }

    #[inline(always)]
    fn low_bits(x: u64, n: u32) -> u64 {
        // SAFETY: as above.
        unsafe { std::arch::x86_64::_bzhi_u64(x, n) }
    }
}

/// AVX-512 BW: one 64-byte load, and one compare straight into a mask register per byte value.
#[cfg(target_arch = "x86_64")]
pub(crate) struct Avx512;

#[cfg(target_arch = "x86_64")]
impl Classify for Avx512 {
    #[inline(always)]
    fn masks(block: &[u8], delimiter: u8) -> Masks {
        // SAFETY: `Avx512` is only used after `Simd::detect` found AVX-512 F and BW.
        unsafe { masks_avx512(block, delimiter) }
    }

    #[inline(always)]
    fn prefix_xor(x: u64) -> u64 {
        <Avx2 as Classify>::prefix_xor(x)
    }

    #[inline(always)]
    fn select(x: u64, k: u32) -> u32 {
        <Avx2 as Classify>::select(x, k)
    }

    #[inline(always)]
    fn low_bits(x: u64, n: u32) -> u64 {
        <Avx2 as Classify>::low_bits(x, n)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
unsafe fn masks_avx512(block: &[u8], delimiter: u8) -> Masks {
    use std::arch::x86_64::*;
    assert!(block.len() >= BLOCK);
    // SAFETY: one unaligned 64-byte load inside `block`, checked to be at least 64 bytes.
    let v = unsafe { _mm512_loadu_epi8(block.as_ptr() as *const i8) };
    let find = |byte: u8| _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(byte as i8));
    Masks {
        quote: find(b'"'),
        delim: find(delimiter),
        lf: find(b'\n'),
        cr: find(b'\r'),
        nul: _mm512_testn_epi8_mask(v, v),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn masks_avx2(block: &[u8], delimiter: u8) -> Masks {
    use std::arch::x86_64::*;
    assert!(block.len() >= BLOCK);
    let p = block.as_ptr() as *const __m256i;
    // SAFETY: two unaligned 32-byte loads inside `block`, checked to be at least 64 bytes.
    let (lo, hi) = unsafe { (_mm256_loadu_si256(p), _mm256_loadu_si256(p.add(1))) };
    let find = |byte: u8| -> u64 {
        let needle = _mm256_set1_epi8(byte as i8);
        let a = _mm256_movemask_epi8(_mm256_cmpeq_epi8(lo, needle)) as u32 as u64;
        let b = _mm256_movemask_epi8(_mm256_cmpeq_epi8(hi, needle)) as u32 as u64;
        a | (b << 32)
    };
    let lf = find(b'\n');
    let delim = find(delimiter);
    let cr = find(b'\r');
    // A NUL is rare: whether the block has one at all is enough (the byte-at-a-time walker
    // then finds it), and costs one compare of the two halves' minimum.
    let zero = _mm256_setzero_si256();
    let nul = _mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_min_epu8(lo, hi), zero)) as u32 as u64;
    Masks {
        quote: find(b'"'),
        delim,
        lf,
        cr,
        nul,
    }
}

#[cfg(target_arch = "x86_64")]
fn masks(block: &[u8], delimiter: u8) -> Masks {
    use std::arch::x86_64::*;
    debug_assert!(block.len() >= BLOCK);
    // SAFETY: SSE2 is part of the x86_64 baseline; the loads read 4 x 16 bytes inside `block`,
    // which is at least 64 bytes long; unaligned loads have no alignment requirement.
    unsafe {
        let p = block.as_ptr() as *const __m128i;
        let v = [
            _mm_loadu_si128(p),
            _mm_loadu_si128(p.add(1)),
            _mm_loadu_si128(p.add(2)),
            _mm_loadu_si128(p.add(3)),
        ];
        let find = |byte: u8| -> u64 {
            let needle = _mm_set1_epi8(byte as i8);
            let mut m = 0u64;
            for (k, lane) in v.iter().enumerate() {
                let bits = _mm_movemask_epi8(_mm_cmpeq_epi8(*lane, needle)) as u16 as u64;
                m |= bits << (16 * k);
            }
            m
        };
        Masks {
            quote: find(b'"'),
            delim: find(delimiter),
            lf: find(b'\n'),
            cr: find(b'\r'),
            nul: find(0),
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn masks(block: &[u8], delimiter: u8) -> Masks {
    let mut m = Masks {
        quote: 0,
        delim: 0,
        lf: 0,
        cr: 0,
        nul: 0,
    };
    for (i, &b) in block[..BLOCK].iter().enumerate() {
        let bit = 1u64 << i;
        match b {
            b'"' => m.quote |= bit,
            b'\n' => m.lf |= bit,
            b'\r' => m.cr |= bit,
            0 => m.nul |= bit,
            _ => {}
        }
        if b == delimiter {
            m.delim |= bit;
        }
    }
    m
}

/// Bits `from..to` of a block (`from` < 64, `to` <= 64).
#[inline(always)]
pub(crate) fn bit_range(from: u32, to: u32) -> u64 {
    let below_to = (!0u64).checked_shr(64 - to).unwrap_or(0);
    below_to & (!0u64 << from)
}

/// Bit i is the XOR of bits 0..=i: inside-quotes marks from quote positions.
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

/// The vector instructions a walk uses, from the least to the most: chosen once from what the
/// CPU offers. `WDIV_NO_AVX2=1` keeps a walk to the baseline (SSE2 on x86_64), and
/// `WDIV_NO_AVX512=1` to AVX2, to compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Simd {
    /// SSE2 on x86_64, plain code elsewhere.
    Baseline,
    /// AVX2 with POPCNT, BMI1, BMI2 and PCLMULQDQ.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// AVX2's set, and AVX-512 F and BW.
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Simd {
    /// The most the CPU offers, less what `WDIV_NO_AVX2` or `WDIV_NO_AVX512` turn off; read once.
    pub fn detect() -> Simd {
        static DETECTED: std::sync::OnceLock<Simd> = std::sync::OnceLock::new();
        *DETECTED.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            {
                let avx2 = std::env::var_os("WDIV_NO_AVX2").is_none()
                    && is_x86_feature_detected!("avx2")
                    && is_x86_feature_detected!("popcnt")
                    && is_x86_feature_detected!("bmi1")
                    && is_x86_feature_detected!("bmi2")
                    && is_x86_feature_detected!("pclmulqdq");
                let avx512 = avx2
                    && std::env::var_os("WDIV_NO_AVX512").is_none()
                    && is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw");
                if avx512 {
                    return Simd::Avx512;
                }
                if avx2 {
                    return Simd::Avx2;
                }
            }
            Simd::Baseline
        })
    }
}
