/* bertkit's C kernels. For CPU inference: the elementwise halves of the int8 projection
 * (bertkit/model/quantize.py, Int8Linear), each one pass over a row that stays in L1, instead of
 * PyTorch's seven passes over the whole activation before the int8 matmul and five after it; and
 * self-attention over packed sequences (bertkit/model/fast_paths.py, c_attention), which reads the
 * fused query/key/value projection as it is and writes the merged heads, so the padding, the mask
 * and the four layout copies around PyTorch's attention are never made. For training: dropout masks.
 *
 * Compiled on first use by bertkit/model/native.py with the machine's C compiler and loaded through
 * ctypes (no Python headers, no torch headers); the PyTorch code each replaces is the reference it
 * is tested against (tests/model/test_native.py). The quantizing side follows that reference step by
 * step (it has no multiply-add to fuse), so the int8 codes are identical; the way back and attention
 * let the compiler fuse multiply-adds, so their outputs agree to float32 rounding.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

/* ------------------------------------------------------------------------------ attention
 * A vector of LANES floats in the compiler's vector extension (GCC and Clang), as wide as the
 * machine's registers: wider types are split through memory by the compiler (measured on AVX2: a
 * 16-float type ran 5x slower than 8). Loaded and stored through memcpy: unaligned moves. */
#if defined(__AVX512F__)
#define LANES 16
#elif defined(__AVX__)
#define LANES 8
#else
#define LANES 4
#endif
typedef float vf __attribute__((vector_size(LANES * sizeof(float))));
#define ROWS 4 /* keys or queries per block: four accumulators reuse each loaded vector */

/* The vector width this build has: the attention pays off at 8 floats or more (AVX2, AVX-512);
 * with 4 (SSE2 without FMA) it was measured slower than PyTorch's path beyond ~32 tokens. */
int bk_attention_lanes(void) { return LANES; }

static inline vf load_vf(const float *p) {
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void store_vf(float *p, vf v) { memcpy(p, &v, sizeof v); }

/* softmax(q k^T * scale) v for each head of each sequence, every token seeing its own sequence only.
 * qkv [N, 3 * heads * head_size]: the packed rows of the fused projection (query | key | value, each
 * head's head_size columns together, as BertSelfAttention.qkv gives them); sequence s holds rows
 * starts[s] .. starts[s + 1]. out [N, heads * head_size]: the heads merged, packed as the input.
 * head_size: a multiple of 16 (whole vectors for every LANES). Returns 0, or -1 where its scratch
 * (a few rows per head of the longest sequence) could not be allocated.
 * LANES queries at a time sit in the lanes of one vector: their scores against a key are one
 * vector, so the softmax's max, exp and sum run down the keys lane by lane, independent across keys
 * and with no reduction inside a vector; only the queries are transposed, keys and values are read
 * in place. */
int bk_attention(const float *restrict qkv, int64_t n_seqs, const int64_t *restrict starts, int64_t heads,
                 int64_t head_size, float scale, float *restrict out) {
    const int64_t D = head_size, H = heads * D, stride = 3 * H;
    int64_t longest = 0;
    for (int64_t s = 0; s < n_seqs; s++)
        longest = starts[s + 1] - starts[s] > longest ? starts[s + 1] - starts[s] : longest;
    const int64_t most = (longest + LANES - 1) / LANES * LANES;
    float *scratch = malloc(sizeof(float) * (size_t)(D * most + longest * LANES + LANES));
    if (!scratch) return -1;
    for (int64_t s = 0; s < n_seqs; s++) {
        const int64_t first = starts[s], T = starts[s + 1] - first;
        if (T <= 0) continue;
        const int64_t Q = (T + LANES - 1) / LANES * LANES;
        float *restrict qt = scratch;             /* [D, Q] queries transposed, times scale, zero past T */
        float *restrict pt = qt + D * Q;          /* [T, LANES] one block's scores, then exp(score - max) */
        float *restrict inv_sum = pt + T * LANES; /* [LANES] 1 / each query's sum of those */
        for (int64_t h = 0; h < heads; h++) {
            const float *q0 = qkv + first * stride + h * D, *k0 = q0 + H, *v0 = q0 + 2 * H;
            for (int64_t d = 0; d < D; d++) {
                for (int64_t i = 0; i < T; i++) qt[d * Q + i] = q0[i * stride + d] * scale;
                for (int64_t i = T; i < Q; i++) qt[d * Q + i] = 0.0f;
            }
            for (int64_t b = 0; b < Q; b += LANES) { /* queries b .. b + LANES - 1 */
                for (int64_t j0 = 0; j0 < T; j0 += ROWS) { /* their scores against ROWS keys at a time */
                    const float *k[ROWS];
                    for (int r = 0; r < ROWS; r++) k[r] = k0 + (j0 + r < T ? j0 + r : T - 1) * stride;
                    vf acc[ROWS] = {0};
                    for (int64_t d = 0; d < D; d++) {
                        const vf q = load_vf(qt + d * Q + b);
                        for (int r = 0; r < ROWS; r++) acc[r] += k[r][d] * q;
                    }
                    for (int r = 0; r < ROWS && j0 + r < T; r++) store_vf(pt + (j0 + r) * LANES, acc[r]);
                }
                float m[LANES], sum[LANES] = {0};
                for (int l = 0; l < LANES; l++) m[l] = pt[l];
                for (int64_t j = 1; j < T; j++)
#pragma omp simd
                    for (int l = 0; l < LANES; l++) m[l] = pt[j * LANES + l] > m[l] ? pt[j * LANES + l] : m[l];
                for (int64_t j = 0; j < T; j++)
#pragma omp simd
                    for (int l = 0; l < LANES; l++) {
                        pt[j * LANES + l] = exp_nonpositive(pt[j * LANES + l] - m[l]);
                        sum[l] += pt[j * LANES + l];
                    }
                for (int l = 0; l < LANES; l++) inv_sum[l] = 1.0f / sum[l];
                for (int64_t i0 = 0; i0 < LANES && b + i0 < T; i0 += ROWS) { /* out = p v / sum */
                    const int live = T - b - i0 < ROWS ? (int)(T - b - i0) : ROWS;
                    for (int64_t d0 = 0; d0 < D; d0 += LANES) {
                        vf acc[ROWS] = {0};
                        for (int64_t j = 0; j < T; j++) {
                            const vf v = load_vf(v0 + j * stride + d0);
                            for (int r = 0; r < ROWS; r++) acc[r] += pt[j * LANES + i0 + r] * v;
                        }
                        for (int r = 0; r < live; r++)
                            store_vf(out + (first + b + i0 + r) * H + h * D + d0, acc[r] * inv_sum[i0 + r]);
                    }
                }
            }
        }
    }
    free(scratch);
    return 0;
}

/* ------------------------------------------------------------------------------ dropout masks
 * Inverted-dropout multipliers for training (fast_paths.dropout_mask): element i is kept, with the
 * value `keep`, where its 16-bit slice of hash(block i / 4) read as a signed int16 is >= threshold,
 * else 0. hash(b) is splitmix64's output for counter b + 1 from `seed` (one draw of torch's
 * generator per mask), so the bits depend on the seed and the position only: any thread order, any
 * vector width and the PyTorch reference (fast_paths.hashed_bits) give the same mask. Written in
 * the activation's dtype at once: 16-bit patterns (bfloat16, float16) or float32. Why C: torch's
 * CPU generator (mt19937) draws in one thread, one number after the other, and the compare and
 * select after it are two more passes; here it is one pass that vectorises (docs/finetuning.md). */
static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

#define GOLDEN_GAMMA 0x9E3779B97F4A7C15ULL

/* One definition for both element types: T the mask's element (16-bit pattern or float). */
#define DROPOUT_MASK(NAME, T)                                                                             \
    void NAME(T *restrict out, int64_t n, uint64_t seed, int32_t threshold, T keep) {                    \
        const int64_t blocks = n / 4;                                                                     \
        _Pragma("omp simd") for (int64_t b = 0; b < blocks; b++) {                                        \
            const uint64_t h = mix64(seed + (uint64_t)(b + 1) * GOLDEN_GAMMA);                            \
            for (int j = 0; j < 4; j++)                                                                   \
                out[4 * b + j] = (int16_t)(uint16_t)(h >> (16 * j)) >= threshold ? keep : (T)0;           \
        }                                                                                                 \
        const uint64_t h = mix64(seed + (uint64_t)(blocks + 1) * GOLDEN_GAMMA);                           \
        for (int64_t i = 4 * blocks; i < n; i++)                                                          \
            out[i] = (int16_t)(uint16_t)(h >> (16 * (i - 4 * blocks))) >= threshold ? keep : (T)0;       \
    }

DROPOUT_MASK(bk_dropout_mask16, uint16_t)
DROPOUT_MASK(bk_dropout_mask32, float)
