/*
 * The engine's compiled twins, loaded with ctypes: the standard normal sampler (the same bytes
 * as the NumPy reference in normals.py, about 3x faster, without holding the GIL) and, at the
 * end of this file, the seed words of a block's stream (NumPy's own SeedSequence, in C: what
 * seeds.py binds; ~13x faster for the small tensors of most requests).
 *
 * This file mirrors normals.py operation for operation. Every word and uniform is drawn in
 * the order the reference draws it (PCG64 words through the bit generator's next_raw, as
 * Generator.bit_generator.random_raw does; uniforms through next_double, as Generator.random
 * does), and every floating-point expression is evaluated in the reference's order. It must
 * be compiled with -ffp-contract=off and without -ffast-math: a fused multiply-add rounds
 * once where the reference rounds twice. tests/core/test_normals.py checks the two are
 * bit-identical, values and generator state, over seeds, sizes and both widths.
 *
 * Plain C99 without Python.h, loaded with ctypes: setup.py builds it as an optional
 * extension, and normals.py falls back to the NumPy reference when it is missing.
 *
 * Sizes: out has n entries; the tables normals.py passes (read only) have fixed sizes that
 * the indices cannot leave: K and W 512 entries, indexed by word & 0x1FF (layer | sign << 8);
 * F 257, indexed by layer and layer + 1 <= 256; c C_COUNT (test_normals.py checks them). Every
 * other buffer is allocated here, and written only below the count it was allocated for. No
 * state outside a call: threads draw concurrently, each on its own generator.
 * tests/core/test_ziggurat_sanitized.py runs the twins' vectors through a build with
 * -fsanitize=address,undefined.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

/* numpy/random/bitgen.h */
typedef struct bitgen {
    void *state;
    uint64_t (*next_uint64)(void *st);
    uint32_t (*next_uint32)(void *st);
    double (*next_double)(void *st);
    uint64_t (*next_raw)(void *st);
} bitgen_t;

/* Layout of the constants array normals.py passes (_CONSTANTS there). */
enum { C_INV_LN2 = 0, C_LN2_HI, C_LN2_LO, C_R, C_SQRT_HALF, C_EXP0 = 5, C_LOG0 = 19, C_COUNT = 32 };

static double det_exp(double t, const double *c)
{
    double k = nearbyint(t * c[C_INV_LN2]);
    double r = (t - k * c[C_LN2_HI]) - k * c[C_LN2_LO];
    double p = c[C_EXP0 + 13];
    for (int n = 12; n >= 0; n--) {
        p = p * r;
        p = p + c[C_EXP0 + n];
    }
    return ldexp(p, (int)k);
}

static double det_log(double u, const double *c)
{
    int e;
    double m = frexp(u, &e);
    if (m < c[C_SQRT_HALF]) {
        m = m * 2.0;
        e -= 1;
    }
    double ed = (double)e;
    double s = (m - 1.0) / (m + 1.0);
    double z = s * s;
    double p = c[C_LOG0 + 12];
    for (int j = 11; j >= 0; j--) {
        p = p * z;
        p = p + c[C_LOG0 + j];
    }
    return ed * c[C_LN2_HI] + ((2.0 * s) * p + ed * c[C_LN2_LO]);
}

/* A growable list of the fast path's rejects: position and (layer | sign << 8). */
typedef struct {
    int64_t *pos;
    uint16_t *idx;
    int64_t n, cap;
} rejects_t;

static int push(rejects_t *r, int64_t pos, uint32_t idx)
{
    if (r->n == r->cap) {
        int64_t cap = r->cap ? 2 * r->cap : 1024;
        int64_t *p = realloc(r->pos, (size_t)cap * sizeof *p);
        if (!p) return -1;
        r->pos = p;
        uint16_t *i = realloc(r->idx, (size_t)cap * sizeof *i);
        if (!i) return -1;
        r->idx = i;
        r->cap = cap;
    }
    r->pos[r->n] = pos;
    r->idx[r->n] = (uint16_t)idx;
    r->n++;
    return 0;
}

static void release(rejects_t *r)
{
    free(r->pos);
    free(r->idx);
}

/* Marsaglia's tail beyond R, in rounds of left + left/8 + 8 candidate pairs (normals._tail). */
static int tail(bitgen_t *bg, int64_t n, const double *c, double *res)
{
    int64_t done = 0;
    while (done < n) {
        int64_t left = n - done, m = left + left / 8 + 8;
        double *u = malloc((size_t)(2 * m) * sizeof *u);
        if (!u) return -1;
        for (int64_t i = 0; i < 2 * m; i++) u[i] = bg->next_double(bg->state);
        for (int64_t i = 0; i < m && done < n; i++) {
            double a = det_log(1.0 - u[i], c) / -c[C_R];
            double b = det_log(1.0 - u[m + i], c);
            if (-2.0 * b > a * a) res[done++] = c[C_R] + a;
        }
        free(u);
    }
    return 0;
}

/* The reference's _fast, _slow, _candidates and fill, for one value type. */
#define DEFINE_SAMPLER(SUFFIX, VALUE, WORD, SHIFT)                                                   \
    static inline int one_##SUFFIX(WORD w, int64_t j, VALUE *out, const WORD *K, const VALUE *W,        \
                                   rejects_t *rej)                                                   \
    {                                                                                                \
        uint32_t i = (uint32_t)(w & 0x1FF);                                                          \
        WORD m = w >> (SHIFT);                                                                       \
        out[j] = (VALUE)m * W[i];                                                                    \
        return (m >= K[i]) ? push(rej, j, i) : 0;                                                    \
    }                                                                                                \
                                                                                                     \
    static int fast_##SUFFIX(bitgen_t *bg, VALUE *out, int64_t n, const WORD *K, const VALUE *W,      \
                             rejects_t *rej)                                                         \
    {                                                                                                \
        uint64_t (*next)(void *) = bg->next_raw;                                                     \
        void *st = bg->state;                                                                        \
        int64_t j = 0;                                                                               \
        if (sizeof(WORD) == 4) {                                                                     \
            for (; j + 1 < n; j += 2) { /* a 64-bit word gives two 32-bit ones, low half first */     \
                uint64_t raw = next(st);                                                             \
                if (one_##SUFFIX((WORD)(raw & 0xFFFFFFFFu), j, out, K, W, rej)) return -1;           \
                if (one_##SUFFIX((WORD)(raw >> 32), j + 1, out, K, W, rej)) return -1;               \
            }                                                                                        \
        }                                                                                            \
        for (; j < n; j++) /* float64: every value; float32: the last one of an odd count */         \
            if (one_##SUFFIX((WORD)next(st), j, out, K, W, rej)) return -1;                          \
        return 0;                                                                                    \
    }                                                                                                \
                                                                                                     \
    /* Decide the rejects; their failed wedge positions go to *redo (in order). */                   \
    static int slow_##SUFFIX(bitgen_t *bg, VALUE *vals, const rejects_t *rej, const double *F,        \
                             const double *c, int64_t *redo, int64_t *nredo)                         \
    {                                                                                                \
        int64_t ntail = 0;                                                                           \
        *nredo = 0;                                                                                  \
        for (int64_t q = 0; q < rej->n; q++) {                                                       \
            int li = rej->idx[q] & 0xFF;                                                             \
            if (li == 0) {                                                                           \
                ntail++;                                                                             \
                continue;                                                                            \
            }                                                                                        \
            double x = (double)vals[rej->pos[q]];                                                    \
            double u = bg->next_double(bg->state);                                                   \
            double y = F[li] + u * (F[li + 1] - F[li]);                                              \
            if (y >= det_exp(-0.5 * x * x, c)) redo[(*nredo)++] = rej->pos[q];                       \
        }                                                                                            \
        if (ntail) {                                                                                 \
            double *tv = malloc((size_t)ntail * sizeof *tv);                                         \
            if (!tv || tail(bg, ntail, c, tv)) {                                                     \
                free(tv);                                                                            \
                return -1;                                                                           \
            }                                                                                        \
            int64_t k = 0;                                                                           \
            for (int64_t q = 0; q < rej->n; q++)                                                     \
                if ((rej->idx[q] & 0xFF) == 0)                                                       \
                    vals[rej->pos[q]] = (VALUE)((rej->idx[q] >= 256 ? -1.0 : 1.0) * tv[k++]);        \
            free(tv);                                                                                \
        }                                                                                            \
        return 0;                                                                                    \
    }                                                                                                \
                                                                                                     \
    int weightinit_fill_##SUFFIX(void *bitgen, VALUE *out, int64_t n, const WORD *K, const VALUE *W,  \
                                 const double *F, const double *c)                                   \
    {                                                                                                \
        bitgen_t *bg = (bitgen_t *)bitgen;                                                           \
        rejects_t rej = {0};                                                                         \
        int64_t *where = NULL, nwhere = 0, *redo = NULL;                                             \
        VALUE *vals = NULL;                                                                          \
        char *ok = NULL;                                                                             \
        int status = -1;                                                                             \
        if (fast_##SUFFIX(bg, out, n, K, W, &rej)) goto done;                                        \
        where = malloc((size_t)(rej.n + 1) * sizeof *where);                                         \
        if (!where || slow_##SUFFIX(bg, out, &rej, F, c, where, &nwhere)) goto done;                 \
        int64_t first = 0;                                                                           \
        while (first < nwhere) {                                                                     \
            int64_t need = nwhere - first, m = need + need / 32 + 16, nr = 0;                        \
            vals = malloc((size_t)m * sizeof *vals);                                                 \
            ok = malloc((size_t)m);                                                                  \
            if (!vals || !ok) goto done;                                                             \
            rej.n = 0;                                                                               \
            if (fast_##SUFFIX(bg, vals, m, K, W, &rej)) goto done;                                   \
            redo = malloc((size_t)(rej.n + 1) * sizeof *redo);                                       \
            if (!redo || slow_##SUFFIX(bg, vals, &rej, F, c, redo, &nr)) goto done;                  \
            for (int64_t i = 0; i < m; i++) ok[i] = 1;                                               \
            for (int64_t q = 0; q < nr; q++) ok[redo[q]] = 0;                                        \
            for (int64_t i = 0; i < m && first < nwhere; i++)                                        \
                if (ok[i]) out[where[first++]] = vals[i];                                            \
            free(vals), free(ok), free(redo);                                                        \
            vals = NULL, ok = NULL, redo = NULL;                                                     \
        }                                                                                            \
        status = 0;                                                                                  \
    done:                                                                                            \
        free(vals), free(ok), free(redo), free(where);                                               \
        release(&rej);                                                                               \
        return status;                                                                               \
    }

DEFINE_SAMPLER(f32, float, uint32_t, 9)
DEFINE_SAMPLER(f64, double, uint64_t, 12)

/*
 * The seed words of block `block` of the tensor at position `position` (streams.py):
 *
 *     numpy.random.SeedSequence(seed, spawn_key=(position, block)).generate_state(4, np.uint64)
 *
 * NumPy's algorithm (numpy/random/bit_generator.pyx, after Melissa O'Neill's seed_seq), for
 * integers below 2^64: each integer becomes its 32-bit words, least significant first (0 is one
 * word 0); the seed's words are padded with zeros to the pool size (NumPy does so whenever a
 * spawn key is given) and followed by the spawn key's; the 4-word pool is hashed from them
 * (mix_entropy), then 8 words are drawn from the pool (generate_state) and paired, low word
 * first, into 4 uint64. Every product is a uint32 product, wrapping as NumPy's uint32_t does.
 * tests/core/test_seeds.py compares it with NumPy's SeedSequence over every size class of seed,
 * position and block.
 *
 * `out` has `capacity` entries: 4 are written, or nothing and -1 when it has fewer.
 */
enum { POOL = 4, ENTROPY_MAX = 8, STATE_WORDS = 8, XSHIFT = 16 };
static const uint32_t INIT_A = 0x43b0d7e5u, MULT_A = 0x931e8875u, INIT_B = 0x8b51f9ddu, MULT_B = 0x58f38dedu,
                      MIX_MULT_L = 0xca01f9ddu, MIX_MULT_R = 0x4973f715u;

static uint32_t hashmix(uint32_t value, uint32_t *hash_const)
{
    value ^= *hash_const;
    *hash_const *= MULT_A;
    value *= *hash_const;
    value ^= value >> XSHIFT;
    return value;
}

static uint32_t mix(uint32_t x, uint32_t y)
{
    uint32_t result = MIX_MULT_L * x - MIX_MULT_R * y;
    result ^= result >> XSHIFT;
    return result;
}

/* Append v's 32-bit words (least significant first; 0 is one word) to words[*n..]; -1 when full. */
static int append_words(uint64_t v, uint32_t *words, int *n, int capacity)
{
    do {
        if (*n >= capacity) return -1;
        words[(*n)++] = (uint32_t)(v & 0xFFFFFFFFu);
        v >>= 32;
    } while (v);
    return 0;
}

int weightinit_seed_state(uint64_t seed, uint64_t position, uint64_t block, uint64_t *out, int64_t capacity)
{
    uint32_t entropy[ENTROPY_MAX], pool[POOL], state[STATE_WORDS];
    int n = 0;
    if (capacity < STATE_WORDS / 2) return -1;
    if (append_words(seed, entropy, &n, ENTROPY_MAX)) return -1;
    while (n < POOL) entropy[n++] = 0; /* n <= 2 before: room for the padding */
    if (append_words(position, entropy, &n, ENTROPY_MAX) || append_words(block, entropy, &n, ENTROPY_MAX))
        return -1;

    uint32_t hash_a = INIT_A;
    for (int i = 0; i < POOL; i++) pool[i] = hashmix(i < n ? entropy[i] : 0, &hash_a);
    for (int src = 0; src < POOL; src++)
        for (int dst = 0; dst < POOL; dst++)
            if (src != dst) pool[dst] = mix(pool[dst], hashmix(pool[src], &hash_a));
    for (int src = POOL; src < n; src++)
        for (int dst = 0; dst < POOL; dst++) pool[dst] = mix(pool[dst], hashmix(entropy[src], &hash_a));

    uint32_t hash_b = INIT_B;
    for (int i = 0; i < STATE_WORDS; i++) {
        uint32_t v = pool[i % POOL];
        v ^= hash_b;
        hash_b *= MULT_B;
        v *= hash_b;
        v ^= v >> XSHIFT;
        state[i] = v;
    }
    for (int i = 0; i < STATE_WORDS / 2; i++) out[i] = (uint64_t)state[2 * i] | (uint64_t)state[2 * i + 1] << 32;
    return 0;
}

/* 1: the sampler; 2: the sampler and weightinit_seed_state. */
int weightinit_abi(void) { return 2; }
