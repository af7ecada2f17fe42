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

/// Which implementation is in use: 0 = plain C, 1 = AVX2 + F16C, 2 = AVX-512 (F, BW, VL).
int hfr_kernels_isa(void);
/// Testing only: forces an implementation (clamped to what the CPU supports). Returns the one in use.
/// Not thread-safe with respect to concurrent conversions.
int hfr_kernels_set_isa(int isa);

#ifdef __cplusplus
}
#endif

#endif
