/* The elementwise halves of bertkit's int8 projection (bertkit/model/quantize.py, Int8Linear),
 * each one pass over a row that stays in L1, instead of PyTorch's seven passes over the whole
 * activation before the int8 matmul and five after it.
 *
 * Compiled on first use by bertkit/model/native.py with the machine's C compiler and loaded through
 * ctypes (no Python headers, no torch headers); Int8Linear's PyTorch code is the reference it is
 * tested against (tests/model/test_native.py). The quantizing side follows that reference step by
 * step (it has no multiply-add to fuse), so the int8 codes are identical; the way back lets the
 * compiler fuse multiply-adds, so its outputs agree to float32 rounding.
 */
#include <math.h>
#include <stdint.h>

#if defined(__GLIBC__) && defined(__x86_64__) && !defined(BK_SCALAR_MATH)
/* glibc's vector math (libmvec) has it; declared SIMD-callable so the tanh-GELU loop vectorises */
__attribute__((__simd__("notinbranch"))) extern float tanhf(float);
#endif

/* exp(y) for y in [-87, 0]: y = k ln2 + r (ln2 split in two so k * hi is exact), exp(r) by a
 * degree-6 polynomial fitted on Chebyshev nodes of [-ln2/2, ln2/2] (relative error 2.6e-9), 2^k
 * written into the exponent bits. Inline, so a loop over it vectorises. */
static inline float exp_nonpositive(float y) {
    y = y < -87.0f ? -87.0f : y;
    const float k = rintf(y * 1.44269504088896341f);
    const float r = (y - k * 0.693359375f) - k * -2.12194440054690583e-4f;
    float p = 1.394858087e-03f;
    p = p * r + 8.375128891e-03f;
    p = p * r + 4.166621827e-02f;
    p = p * r + 1.666641548e-01f;
    p = p * r + 5.000000108e-01f;
    p = p * r + 1.000000038e+00f;
    p = p * r + 1.0f;
    union { int32_t i; float f; } two_k = {.i = ((int32_t)k + 127) << 23};
    return p * two_k.f;
}

/* erf(x) by Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7; PyTorch's vectorised erf uses
 * the same formula): a division and the exp above, no library call (the GELU way back of 480 x 1,536
 * values took 0.59 ms with it, 0.66 ms with libmvec's vector erff). */
static inline float erf_as(float x) {
    const float a = fabsf(x), t = 1.0f / (1.0f + 0.3275911f * a);
    const float poly = ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f) * t;
    return copysignf(1.0f - poly * exp_nonpositive(-a * a), x);
}

/* Per token: xs = x * inv_smooth (when given), centred on the middle of its range and scaled onto
 * [-127, 127]: q = round((xs - mid) * (127 / half)), half = max((hi - lo) / 2, 1e-8).
 * A row holding a NaN gets mid = NaN, so its output row is NaN, as in the reference. */
void bk_quantize_rows(const float *restrict x, int64_t rows, int64_t cols, const float *restrict inv_smooth,
                      int8_t *restrict q, float *restrict mid, float *restrict half, float *restrict scratch) {
    for (int64_t i = 0; i < rows; i++) {
        const float *xs = x + i * cols;
        if (inv_smooth) {
            for (int64_t j = 0; j < cols; j++) scratch[j] = xs[j] * inv_smooth[j];
            xs = scratch;
        }
        float lo = xs[0], hi = xs[0];
        int bad = 0;
#pragma omp simd reduction(min : lo) reduction(max : hi) reduction(| : bad)
        for (int64_t j = 0; j < cols; j++) {
            lo = xs[j] < lo ? xs[j] : lo;
            hi = xs[j] > hi ? xs[j] : hi;
            bad |= xs[j] != xs[j];
        }
        float m = (hi + lo) * 0.5f, h = (hi - lo) * 0.5f;
        if (!(h >= 1e-8f)) h = 1e-8f;
        float f = 127.0f / h;
        int8_t *qr = q + i * cols;
        for (int64_t j = 0; j < cols; j++) {
            float v = rintf((xs[j] - m) * f); /* round half to even, as torch.round */
            qr[j] = (int8_t)(int32_t)(v == v ? v : 0.0f);
        }
        mid[i] = bad ? NAN : m;
        half[i] = h;
    }
}

/* y = acc * w_scale[n] * (half / 127) + (mid * row_sums[n] + bias[n]) [+ residual], then the
 * activation: 0 none, 1 GELU (erf), 2 GELU (tanh form), 3 ReLU. */
void bk_dequantize_rows(const int32_t *restrict acc, int64_t rows, int64_t cols, const float *restrict w_scale,
                        const float *restrict half, const float *restrict mid, const float *restrict row_sums,
                        const float *restrict bias, const float *restrict residual, int act, float *restrict out) {
    for (int64_t i = 0; i < rows; i++) {
        const int32_t *a = acc + i * cols;
        float *o = out + i * cols;
        const float s = half[i] * (1.0f / 127.0f), m = mid[i];
        for (int64_t j = 0; j < cols; j++) o[j] = (float)a[j] * w_scale[j] * s + (m * row_sums[j] + bias[j]);
        if (residual) {
            const float *r = residual + i * cols;
            for (int64_t j = 0; j < cols; j++) o[j] += r[j];
        }
        if (act == 1) {
#pragma omp simd
            for (int64_t j = 0; j < cols; j++) o[j] = 0.5f * o[j] * (1.0f + erf_as(o[j] * 0.70710678118654752f));
        } else if (act == 2) {
#pragma omp simd
            for (int64_t j = 0; j < cols; j++) {
                float v = o[j];
                o[j] = 0.5f * v * (1.0f + tanhf(0.79788456080286536f * (v + 0.044715f * v * v * v)));
            }
        } else if (act == 3) {
            for (int64_t j = 0; j < cols; j++) o[j] = o[j] > 0.0f ? o[j] : 0.0f;
        }
    }
}
