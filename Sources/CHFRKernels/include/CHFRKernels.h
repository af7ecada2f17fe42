#ifndef CHFRKERNELS_H
#define CHFRKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Block conversions between 16-bit float formats and float32, used by the float16 / bfloat16
/// reduction kernels of HFRKernels. Bit-for-bit the scalar semantics of HFRKernels'
/// `HalfConversions`: widening is exact (float16 signalling NaNs come out quiet, bfloat16 keeps
/// the bits); narrowing rounds to nearest, ties to even, keeps subnormals, overflows to infinity;
/// NaN -> quiet NaN (bfloat16: top bits kept with the quiet bit set; float16: 0x7E00 | sign).
/// Pointers need only 2-byte / 4-byte alignment; `src` and `dst` must not overlap.
/// The implementation (AVX-512, AVX2+F16C or plain C) is chosen once at load time.
void hfr_bf16_to_f32(const uint16_t *src, float *dst, size_t n);
void hfr_f32_to_bf16(const float *src, uint16_t *dst, size_t n);
void hfr_f16_to_f32(const uint16_t *src, float *dst, size_t n);
void hfr_f32_to_f16(const float *src, uint16_t *dst, size_t n);

/// Fused one-pass kernels for the vector ISAs: `dst[i] = narrow(op(widen(a[i]), widen(b[i])))` with
/// `format` 0 = float16, 1 = bfloat16 and `op` a ReduceOp raw value (0 sum, 1 prod, 2 max, 3 min,
/// 4 avg = sum), in float32 exactly as HFRKernels' float loops (max/min: `(a > b || a != a) ? a : b`,
/// `(a < b || a != a) ? a : b`; sum and prod with a NaN `a` give `a` quieted, as x86 `a + b` does).
/// `dst` may be exactly `a` or `b`. Returns how many leading elements were done: `n` with a vector
/// implementation, 0 with the plain C one (the caller then uses the block conversions).
size_t hfr_half_combine(int format, int op, uint16_t *dst, const uint16_t *a, const uint16_t *b, size_t n);
/// `dst[i] = narrow(widen(dst[i]) / ranks)`, same conventions.
size_t hfr_half_divide(int format, uint16_t *dst, size_t n, float ranks);

/// Copies `n` bytes with non-temporal stores (memcpy with the plain C implementation): for large
/// copies into memory that is not read again soon, such as a collective's output. `src` and `dst`
/// must not overlap.
void hfr_copy_streaming(void *dst, const void *src, size_t n);

/// Which implementation is in use: 0 = plain C, 1 = AVX2 + F16C, 2 = AVX-512 (F, BW, VL).
int hfr_kernels_isa(void);
/// Testing only: forces an implementation (clamped to what the CPU supports). Returns the one in use.
/// Not thread-safe with respect to concurrent conversions.
int hfr_kernels_set_isa(int isa);

#ifdef __cplusplus
}
#endif

#endif
