// Block conversions between bfloat16 / float16 and float32 (see include/CHFRKernels.h).
//
// The package is compiled for baseline x86-64, so the vector variants are compiled per function
// with target attributes and picked once at load time with __builtin_cpu_supports.

#include "CHFRKernels.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HFR_X86 1
#else
#define HFR_X86 0
#endif

// MARK: - Scalar reference (the formulas of HFRKernels/HalfConversions.swift)

static inline float f32_from_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t bits_from_f32(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

static inline float scalar_bf16_to_f32(uint16_t h) { return f32_from_bits((uint32_t)h << 16); }

static inline uint16_t scalar_f32_to_bf16(float f) {
    uint32_t u = bits_from_f32(f);
    uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
    uint32_t quiet = (u >> 16) | 0x40u;
    return (uint16_t)(((u & 0x7FFFFFFFu) > 0x7F800000u) ? quiet : rounded);
}

static inline float scalar_f16_to_f32(uint16_t bits) {
    uint32_t em = bits & 0x7FFFu;
    uint32_t sign = ((uint32_t)bits & 0x8000u) << 16;
    uint32_t normal = bits_from_f32(f32_from_bits((em << 13) + 0x70000000u) * 0x1p-112f);
    uint32_t subnormal = bits_from_f32(f32_from_bits(em | 0x3F000000u) - 0.5f);
    return f32_from_bits((em < 0x400u ? subnormal : normal) | sign);
}

static inline uint16_t scalar_f32_to_f16(float value) {
    uint32_t u = bits_from_f32(value);
    uint32_t a = u & 0x7FFFFFFFu;
    uint32_t sign = (u >> 16) & 0x8000u;
    float scaled = (f32_from_bits(a) * 0x1p112f) * 0x1p-110f;
    uint32_t bias = a & 0x7F800000u;
    if (bias < 0x38800000u) bias = 0x38800000u;
    uint32_t sum = bits_from_f32(f32_from_bits(bias + 0x07800000u) + scaled);
    uint32_t nonsign = ((sum >> 13) & 0x7C00u) + (sum & 0x0FFFu);
    uint32_t magnitude = a > 0x7F800000u ? 0x7E00u : nonsign;
    return (uint16_t)(magnitude | sign);
}

static void c_bf16_to_f32(const uint16_t *s, float *d, size_t n) {
    for (size_t i = 0; i < n; i++) d[i] = scalar_bf16_to_f32(s[i]);
}
static void c_f32_to_bf16(const float *s, uint16_t *d, size_t n) {
    for (size_t i = 0; i < n; i++) d[i] = scalar_f32_to_bf16(s[i]);
}
static void c_f16_to_f32(const uint16_t *s, float *d, size_t n) {
    for (size_t i = 0; i < n; i++) d[i] = scalar_f16_to_f32(s[i]);
}
static void c_f32_to_f16(const float *s, uint16_t *d, size_t n) {
    for (size_t i = 0; i < n; i++) d[i] = scalar_f32_to_f16(s[i]);
}

#if HFR_X86

// MARK: - AVX2 + F16C

#define AVX2 __attribute__((target("avx2,f16c")))

AVX2 static void avx2_bf16_to_f32(const uint16_t *s, float *d, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(s + i)));
        _mm256_storeu_si256((__m256i *)(d + i), _mm256_slli_epi32(w, 16));
    }
    c_bf16_to_f32(s + i, d + i, n - i);
}

AVX2 static inline __m256i avx2_round_bf16(__m256i u) {
    const __m256i one = _mm256_set1_epi32(1);
    __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), one);
    __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7FFF)), lsb), 16);
    __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
    __m256i isnan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7FFFFFFF)),
                                       _mm256_set1_epi32(0x7F800000));
    return _mm256_blendv_epi8(rounded, quiet, isnan);
}

AVX2 static void avx2_f32_to_bf16(const float *s, uint16_t *d, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i r0 = avx2_round_bf16(_mm256_loadu_si256((const __m256i *)(s + i)));
        __m256i r1 = avx2_round_bf16(_mm256_loadu_si256((const __m256i *)(s + i + 8)));
        // Values are 0...0xFFFF, so the unsigned-saturating pack is exact; it interleaves 128-bit lanes.
        __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(r0, r1), 0xD8);
        _mm256_storeu_si256((__m256i *)(d + i), p);
    }
    c_f32_to_bf16(s + i, d + i, n - i);
}

AVX2 static void avx2_f16_to_f32(const uint16_t *s, float *d, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + i))));
    c_f16_to_f32(s + i, d + i, n - i);
}

/// vcvtps2ph keeps NaN payload bits; the scalar semantics make every NaN 0x7E00 | sign.
AVX2 static inline __m128i avx2_fix_f16_nan(__m128i h) {
    __m128i isnan = _mm_cmpgt_epi16(_mm_and_si128(h, _mm_set1_epi16(0x7FFF)), _mm_set1_epi16(0x7C00));
    __m128i qnan = _mm_or_si128(_mm_and_si128(h, _mm_set1_epi16((short)0x8000)), _mm_set1_epi16(0x7E00));
    return _mm_blendv_epi8(h, qnan, isnan);
}

AVX2 static void avx2_f32_to_f16(const float *s, uint16_t *d, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128((__m128i *)(d + i), avx2_fix_f16_nan(h));
    }
    c_f32_to_f16(s + i, d + i, n - i);
}

// MARK: - AVX-512 (F, BW, VL)

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,f16c")))

AVX512 static void avx512_bf16_to_f32(const uint16_t *s, float *d, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(s + i)));
        _mm512_storeu_si512((void *)(d + i), _mm512_slli_epi32(w, 16));
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        __m512i w = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, s + i));
        _mm512_mask_storeu_epi32((void *)(d + i), m, _mm512_slli_epi32(w, 16));
    }
}

AVX512 static inline __m512i avx512_round_bf16(__m512i u) {
    __m512i hi = _mm512_srli_epi32(u, 16);
    __m512i lsb = _mm512_and_si512(hi, _mm512_set1_epi32(1));
    __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7FFF)), lsb), 16);
    __mmask16 isnan = _mm512_cmpgt_epi32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7FFFFFFF)),
                                              _mm512_set1_epi32(0x7F800000));
    return _mm512_mask_or_epi32(rounded, isnan, hi, _mm512_set1_epi32(0x40));
}

AVX512 static void avx512_f32_to_bf16(const float *s, uint16_t *d, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i r = avx512_round_bf16(_mm512_loadu_si512((const void *)(s + i)));
        _mm256_storeu_si256((__m256i *)(d + i), _mm512_cvtepi32_epi16(r));
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        __m512i r = avx512_round_bf16(_mm512_maskz_loadu_epi32(m, (const void *)(s + i)));
        _mm512_mask_cvtepi32_storeu_epi16((void *)(d + i), m, r);
    }
}

AVX512 static void avx512_f16_to_f32(const uint16_t *s, float *d, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(d + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(s + i))));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(d + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, s + i)));
    }
}

AVX512 static inline __m256i avx512_cvt_f16(__m512 x) {
    __m256i h = _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __mmask16 isnan = _mm256_cmpgt_epi16_mask(_mm256_and_si256(h, _mm256_set1_epi16(0x7FFF)), _mm256_set1_epi16(0x7C00));
    __m256i qnan = _mm256_or_si256(_mm256_and_si256(h, _mm256_set1_epi16((short)0x8000)), _mm256_set1_epi16(0x7E00));
    return _mm256_mask_mov_epi16(h, isnan, qnan);
}

AVX512 static void avx512_f32_to_f16(const float *s, uint16_t *d, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(d + i), avx512_cvt_f16(_mm512_loadu_ps(s + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm256_mask_storeu_epi16(d + i, m, avx512_cvt_f16(_mm512_maskz_loadu_ps(m, s + i)));
    }
}

#endif // HFR_X86

// MARK: - Dispatch

typedef void (*to_f32_fn)(const uint16_t *, float *, size_t);
typedef void (*from_f32_fn)(const float *, uint16_t *, size_t);

static struct {
    int isa;
    to_f32_fn bf16_to_f32, f16_to_f32;
    from_f32_fn f32_to_bf16, f32_to_f16;
} impl = { 0, c_bf16_to_f32, c_f16_to_f32, c_f32_to_bf16, c_f32_to_f16 };

static int best_isa(void) {
#if HFR_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c"))
        return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c")) return 1;
#endif
    return 0;
}

static void install(int isa) {
    impl.isa = 0;
    impl.bf16_to_f32 = c_bf16_to_f32; impl.f16_to_f32 = c_f16_to_f32;
    impl.f32_to_bf16 = c_f32_to_bf16; impl.f32_to_f16 = c_f32_to_f16;
#if HFR_X86
    if (isa >= 2) {
        impl.isa = 2;
        impl.bf16_to_f32 = avx512_bf16_to_f32; impl.f16_to_f32 = avx512_f16_to_f32;
        impl.f32_to_bf16 = avx512_f32_to_bf16; impl.f32_to_f16 = avx512_f32_to_f16;
    } else if (isa == 1) {
        impl.isa = 1;
        impl.bf16_to_f32 = avx2_bf16_to_f32; impl.f16_to_f32 = avx2_f16_to_f32;
        impl.f32_to_bf16 = avx2_f32_to_bf16; impl.f32_to_f16 = avx2_f32_to_f16;
    }
#else
    (void)isa;
#endif
}

__attribute__((constructor)) static void hfr_kernels_init(void) { install(best_isa()); }

int hfr_kernels_isa(void) { return impl.isa; }

int hfr_kernels_set_isa(int isa) {
    int best = best_isa();
    install(isa < 0 ? best : (isa > best ? best : isa));
    return impl.isa;
}

void hfr_bf16_to_f32(const uint16_t *src, float *dst, size_t n) { impl.bf16_to_f32(src, dst, n); }
void hfr_f32_to_bf16(const float *src, uint16_t *dst, size_t n) { impl.f32_to_bf16(src, dst, n); }
void hfr_f16_to_f32(const uint16_t *src, float *dst, size_t n) { impl.f16_to_f32(src, dst, n); }
void hfr_f32_to_f16(const float *src, uint16_t *dst, size_t n) { impl.f32_to_f16(src, dst, n); }
