/*
 * float32 values as JSON text, byte for byte what orjson prints with OPT_SERIALIZE_NUMPY, in C
 * and called through ctypes, so without the GIL: the JSON encoder prints a tensor's rows on
 * the engine's threads while it hashes (floattext.py, jsonenc.py).
 *
 * Digits: the shortest decimal inside the value's rounding interval, the closest to the value
 * among those, ties to even: Ryu's answer (Adams 2018, "Ryu: fast float-to-string conversion",
 * PLDI), which is what orjson prints. Computed here with exact integer arithmetic: for a value
 * v = m 2^e and a decimal scale 10^k (k = 0..43, so 1e-34 <= |v| < 1e9, every weight there is),
 * the interval ends and v itself times 10^k are m' 5^k 2^(e+k), a product that fits 128 bits;
 * their integer parts and exact remainders drive Ryu's digit-removal loop. Values outside that
 * range (and NaN/inf, zero) are marked, and floattext.py asks orjson for the former.
 *
 * Layout: orjson's. Positional for decimal exponents -6..12 ("0.000001", "1200000000.0"), else
 * scientific ("1e-7", "1.5e+13"); "0.0" / "-0.0"; null for NaN and infinities; nested lists by
 * shape, no spaces.
 *
 * Safety: every entry point is told its buffers' capacities and checks its arguments (the shape
 * against n, the digits pass 2 is given); the printer checks the room left before each write, and
 * a full buffer is an error (FULL), never a write past the end. weightinit_f32_capacity says how
 * much room a shape needs at most: floattext.py sizes the buffer with it.
 *
 * The tables are constants (no initialisation at run time, so no order of calls and no threads to
 * get right: the engine's threads print slices concurrently); a test checks them against 5^k.
 *
 * tests/output/test_floattext.py compares the output with orjson's on millions of values and
 * on every edge (subnormals, powers of two and ten, interval ends, the extremes, every decimal
 * exponent and digit count); tests/output/test_f32text_sanitized.py runs the same vectors
 * through a build with -fsanitize=address,undefined.
 */
#include <stdint.h>
#include <string.h>

typedef unsigned __int128 u128;

enum { KIND_DIGITS = 0, KIND_ZERO = 1, KIND_NULL = 2, KIND_ORJSON = 3 };
/* What the entry points return instead of a length. */
enum { NEEDS_ORJSON = -1, FULL = -2, BAD_ARGUMENTS = -3 };
#define KMAX 43
/* A value's digits: 1..9 of them (a float32's shortest digits never need more) and a decimal
 * exponent in -45..38 (the float32 range). */
#define MAX_DIGITS 9
#define MIN_EXP10 (-45)
#define MAX_EXP10 38
/* The longest text put_value writes for such digits: a sign, "0.", five zeros and nine digits
 * (positional from 1e-6: "-0.00000ddddddddd"); the other layouts are shorter ("-ddddddddd0000.0"
 * is 16, "-d.dddddddde-45" 15, "null" 4). */
#define MAX_VALUE_TEXT 17
/* The most dimensions a printed array may have: NumPy's own limit (NPY_MAXDIMS, NumPy 2). */
#define MAX_NDIM 64

#define P27 ((u128)7450580596923828125ull) /* 5^27, the largest power of 5 below 2^63 */
static const u128 POW5[KMAX + 1] = { /* 5^k */
    1ull, 5ull, 25ull, 125ull, 625ull, 3125ull, 15625ull, 78125ull, 390625ull, 1953125ull, 9765625ull,
    48828125ull, 244140625ull, 1220703125ull, 6103515625ull, 30517578125ull, 152587890625ull, 762939453125ull,
    3814697265625ull, 19073486328125ull, 95367431640625ull, 476837158203125ull, 2384185791015625ull,
    11920928955078125ull, 59604644775390625ull, 298023223876953125ull, 1490116119384765625ull,
    7450580596923828125ull, P27 * 5ull, P27 * 25ull, P27 * 125ull, P27 * 625ull, P27 * 3125ull, P27 * 15625ull,
    P27 * 78125ull, P27 * 390625ull, P27 * 1953125ull, P27 * 9765625ull, P27 * 48828125ull, P27 * 244140625ull,
    P27 * 1220703125ull, P27 * 6103515625ull, P27 * 30517578125ull, P27 * 152587890625ull,
};
/* POW5[0..14] again as 64-bit words, for the 64-bit path (k <= 14): loaded as such, the JSON
 * printer runs ~10% faster than with the low halves of POW5's entries. */
static const uint64_t POW5_64[15] = {1ull,        5ull,        25ull,        125ull,        625ull,
                                     3125ull,     15625ull,    78125ull,     390625ull,     1953125ull,
                                     9765625ull,  48828125ull, 244140625ull, 1220703125ull, 6103515625ull};
static const char PAIRS[201] = /* "00", "01", ..., "99" */
    "0001020304050607080910111213141516171819202122232425262728293031323334353637383940414243444546474849"
    "5051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899";
static const uint64_t POW10U[11] = {1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull, 10000000ull,
                                    100000000ull, 1000000000ull, 10000000000ull};

/* Ryu's digit removal on the scaled interval: vm, vr, vp are the integer parts of the lower end,
 * the value and the upper end; vm_zeros: the lower end is an integer; last / vr_zeros: the
 * value's first dropped digit and whether all after it are zero; upper_exact: the upper end is an
 * integer; accept: the ends belong to the interval (even mantissa: ties round to it). */
static inline uint64_t remove_digits(uint64_t vm, uint64_t vr, uint64_t vp, int vm_zeros, int last, int vr_zeros,
                                     int upper_exact, int accept, int *removed_out)
{
    if (upper_exact && !accept) vp--;
    int removed = 0;
    if (vm_zeros || vr_zeros) {
        while (vp / 10 > vm / 10) {
            vm_zeros &= (vm % 10) == 0;
            vr_zeros &= last == 0;
            last = (int)(vr % 10);
            vr /= 10; vp /= 10; vm /= 10;
            removed++;
        }
        if (vm_zeros && accept) {
            while (vm % 10 == 0 && vm != 0) {
                vr_zeros &= last == 0;
                last = (int)(vr % 10);
                vr /= 10; vp /= 10; vm /= 10;
                removed++;
            }
        }
        if (vr_zeros && last == 5 && vr % 2 == 0) last = 4; /* an exact tie: to even */
        vr += ((vr == vm && (!accept || !vm_zeros)) || last >= 5);
    } else {
        for (;;) {
            uint64_t p10 = vp / 10, m10 = vm / 10;
            if (p10 <= m10) break;
            uint64_t r10 = vr / 10;
            last = (int)(vr - r10 * 10);
            vr = r10; vp = p10; vm = m10;
            removed++;
        }
        vr += (vr == vm || last >= 5);
    }
    *removed_out = removed;
    return vr;
}

static int shortest(uint32_t bits, uint64_t *digits, int *ndigits, int *exp10)
{
    uint32_t E = (bits >> 23) & 0xFF, M = bits & 0x7FFFFF;
    uint32_t m2 = E ? (M | (1u << 23)) : M;
    int e2 = E ? (int)E - 150 : -149;
    int bitlen = 32 - __builtin_clz(m2);
    int E10 = ((e2 + bitlen - 1) * 78913) >> 18; /* floor(log10 v), or one less */
    uint32_t mmshift = (M != 0 || E <= 1);        /* the lower neighbour is a full ulp away */
    int accept = (m2 % 2) == 0;
    /* E10 is floor(log10 v) or one less, so v 10^(8 - E10) lies in [1e8, 1e10): 9 or 10 digits
     * before removal, both fine (the interval is at least 12 units wide either way) */
    {
        int k = 8 - E10;
        if (k < 0 || k > KMAX) return KIND_ORJSON;
        int sh = e2 - 2 + k, s = -sh;
        uint64_t vm, vr, vp;
        int last = 0, vr_zeros = 1, vm_zeros, upper_exact;
        if (k <= 14 && s >= 1 && s <= 60) {
            /* everything in 64 bits: 4m 5^k < 2^26 * 5^14 < 2^59 */
            uint64_t f = POW5_64[k], pv = (uint64_t)(4 * m2) * f;
            uint64_t pp = pv + 2 * f, pm = pv - (1 + mmshift) * f, mask = (1ull << s) - 1;
            vr = pv >> s;
            vp = pp >> s;
            vm = pm >> s;
            uint64_t rr = pv & mask;
            if (rr) { /* rr < 2^s <= 2^60, so 10 rr fits 64 bits */
                uint64_t t = rr * 10;
                last = (int)(t >> s);
                vr_zeros = (t & mask) == 0;
            }
            vm_zeros = (pm & mask) == 0;
            upper_exact = (pp & mask) == 0;
        } else {
            u128 f = POW5[k], pv = (u128)(4 * m2) * f;
            u128 pp = pv + 2 * f, pm = pv - (u128)(1 + mmshift) * f;
            if (sh >= 0) {
                if (sh > 30 || (pp >> (63 - sh))) return KIND_ORJSON;
                vr = (uint64_t)(pv << sh);
                vp = (uint64_t)(pp << sh);
                vm = (uint64_t)(pm << sh);
                vm_zeros = 1;
                upper_exact = 1;
            } else {
                if (s > 123) return KIND_ORJSON;
                u128 mask = ((u128)1 << s) - 1;
                if ((pp >> s) >> 63) return KIND_ORJSON;
                vr = (uint64_t)(pv >> s);
                vp = (uint64_t)(pp >> s);
                vm = (uint64_t)(pm >> s);
                u128 rr = pv & mask;
                if (rr) {
                    u128 t = rr * 10;
                    last = (int)(t >> s);
                    vr_zeros = (t & mask) == 0;
                }
                vm_zeros = (pm & mask) == 0;
                upper_exact = (pp & mask) == 0;
            }
        }
        int removed;
        uint64_t out = remove_digits(vm, vr, vp, vm_zeros, last, vr_zeros, upper_exact, accept, &removed);
        while (out >= 10 && out % 10 == 0) { out /= 10; removed++; }
        /* Ryu's answer has 1..9 digits; the check makes the bounds below (the index into POW10U,
         * put_value's MAX_VALUE_TEXT) hold whatever happened above */
        if (out == 0 || out >= POW10U[MAX_DIGITS]) return KIND_ORJSON;
        int t = ((64 - __builtin_clzll(out)) * 1233) >> 12; /* digits - 1 or digits: t <= 9 */
        int nd = t + (out >= POW10U[t]);
        *digits = out;
        *ndigits = nd;
        *exp10 = (nd - 1) + removed - k;
        return KIND_DIGITS;
    }
}

/* One value's kind and, for KIND_DIGITS, its digits (b: the bits without the sign). */
static inline int classify(uint32_t b, uint64_t *d, int *nd, int *e)
{
    if (b >= 0x7F800000u) return KIND_NULL;
    if (b == 0) return KIND_ZERO;
    return shortest(b, d, nd, e);
}

/* Pass 1, into four arrays of n entries each. kind[i]: KIND_*; for KIND_DIGITS, digits/ndig/exp10
 * are set. Returns how many need orjson, or BAD_ARGUMENTS. */
int64_t weightinit_f32_digits(const float *x, int64_t n, uint32_t *digits, uint8_t *ndig, int16_t *exp10,
                              uint8_t *kind)
{
    if (n < 0) return BAD_ARGUMENTS;
    int64_t other = 0;
    const uint32_t *bits = (const uint32_t *)x;
    for (int64_t i = 0; i < n; i++) {
        uint64_t d = 0;
        int nd = 0, e = 0;
        int k = classify(bits[i] & 0x7FFFFFFFu, &d, &nd, &e);
        kind[i] = (uint8_t)k;
        digits[i] = (uint32_t)d;
        ndig[i] = (uint8_t)nd;
        exp10[i] = (int16_t)e;
        other += k == KIND_ORJSON;
    }
    return other;
}

static inline void put_small(char *o, uint32_t d, int nd) /* the nd digits of d, two at a time */
{
    int k = nd;
    while (k >= 2) {
        uint32_t q = d / 100, r = d - q * 100;
        memcpy(o + k - 2, PAIRS + 2 * r, 2);
        d = q;
        k -= 2;
    }
    if (k == 1) o[0] = (char)('0' + d);
}

static inline void put_digits(char *o, uint32_t d, int nd) /* the nd digits of d into o[0..nd) */
{
    if (nd <= 4) { put_small(o, d, nd); return; }
    /* two halves, so that the divisions do not all wait on each other: the low four digits,
     * then the rest */
    uint32_t hi = d / 10000, lo = d - hi * 10000;
    uint32_t a = lo / 100, b = lo - a * 100;
    memcpy(o + nd - 4, PAIRS + 2 * a, 2);
    memcpy(o + nd - 2, PAIRS + 2 * b, 2);
    put_small(o, hi, nd - 4);
}

static inline char *put_value(char *o, uint32_t sign, int kind, uint32_t d, int nd, int X)
{
    if (kind == KIND_NULL) { memcpy(o, "null", 4); return o + 4; }
    if (sign) *o++ = '-';
    if (kind == KIND_ZERO) { memcpy(o, "0.0", 3); return o + 3; }
    if (X >= 0 && X < 13) {
        if (nd > X + 1) { /* ddd.ddd */
            put_digits(o + 1, d, nd);
            memmove(o, o + 1, (size_t)(X + 1));
            o[X + 1] = '.';
            return o + nd + 1;
        }
        put_digits(o, d, nd); /* ddd000.0 */
        o += nd;
        for (int k = nd; k <= X; k++) *o++ = '0';
        memcpy(o, ".0", 2);
        return o + 2;
    }
    if (X < 0 && X >= -6) { /* 0.000ddd */
        *o++ = '0';
        *o++ = '.';
        for (int k = 0; k < -X - 1; k++) *o++ = '0';
        put_digits(o, d, nd);
        return o + nd;
    }
    put_digits(o + 1, d, nd); /* d.ddde+X */
    o[0] = o[1];
    if (nd > 1) { o[1] = '.'; o += nd + 1; }
    else o += 1;
    *o++ = 'e';
    *o++ = X < 0 ? '-' : '+';
    int a = X < 0 ? -X : X;
    if (a >= 10) { memcpy(o, PAIRS + 2 * a, 2); o += 2; }
    else *o++ = (char)('0' + a);
    return o;
}

/* Digits handed in for pass 2 (orjson's, through floattext.digits_of): those put_value's
 * MAX_VALUE_TEXT is computed for, and a nonzero leading digit. */
static inline int valid_digits(uint32_t d, int nd, int e)
{
    return nd >= 1 && nd <= MAX_DIGITS && d >= POW10U[nd - 1] && d < POW10U[nd] && e >= MIN_EXP10 && e <= MAX_EXP10;
}

/* The most bytes print_lists writes for n values of shape[0..ndim), or BAD_ARGUMENTS unless
 * 1 <= ndim <= MAX_NDIM, every dimension is >= 1 and their product is n. The text is n values of
 * at most MAX_VALUE_TEXT bytes, two brackets per list, and a comma between siblings: a list of c
 * children has c - 1, and the children of all lists are the n values and every list but the
 * outermost, so there are n + (lists - 1) - lists = n - 1 commas. In all
 * n (MAX_VALUE_TEXT + 1) + 2 lists - 1, reached when every value is longest. */
static int64_t bound(int64_t n, const int64_t *shape, int ndim)
{
    /* n below INT64_MAX / (MAX_VALUE_TEXT + 1 + 2 MAX_NDIM): no sum below can overflow */
    if (ndim < 1 || ndim > MAX_NDIM || n < 1 || n > INT64_MAX / (MAX_VALUE_TEXT + 1 + 2 * MAX_NDIM))
        return BAD_ARGUMENTS;
    int64_t count = 1, lists = 0;
    for (int l = 0; l < ndim; l++) {
        lists += count; /* the lists at depth l, one per element of shape[0..l): at most n */
        if (shape[l] < 1 || shape[l] > n / count) return BAD_ARGUMENTS; /* keeps count <= n */
        count *= shape[l];
    }
    if (count != n) return BAD_ARGUMENTS;
    return n * (MAX_VALUE_TEXT + 1) + 2 * lists - 1;
}

/* The nested lists of shape[0..ndim) (C order) into out[0..capacity); returns the bytes written,
 * FULL when the room runs out (nothing is written past out + capacity), or BAD_ARGUMENTS. With
 * digit arrays (pass 2), each value's digits are read from them; without (NULL), they are found
 * here, and NEEDS_ORJSON is returned at the first value that needs orjson. */
static int64_t print_lists(const float *x, int64_t n, const int64_t *shape, int ndim, const uint32_t *digits,
                           const uint8_t *ndig, const int16_t *exp10, const uint8_t *kind, char *out,
                           int64_t capacity)
{
    if (capacity < 0 || bound(n, shape, ndim) < 0) return BAD_ARGUMENTS;
    char *o = out, *const end = out + capacity;
#define PUT(c)                    \
    do {                          \
        if (o == end) return FULL; \
        *o++ = (c);               \
    } while (0)
    int64_t counter[MAX_NDIM] = {0};
    int64_t inner = shape[ndim - 1];
    const uint32_t *bits = (const uint32_t *)x;
    for (int l = 0; l < ndim; l++) PUT('[');
    int64_t i = 0;
    while (i < n) {
        for (int64_t k = 0; k < inner; k++, i++) {
            /* room for the separator and the longest value: one check per value */
            if (end - o < MAX_VALUE_TEXT + (k > 0)) return FULL;
            if (k) *o++ = ',';
            if (digits) {
                int kd = kind[i];
                int ok = kd == KIND_DIGITS ? valid_digits(digits[i], ndig[i], exp10[i])
                                           : kd == KIND_ZERO || kd == KIND_NULL;
                if (!ok) return BAD_ARGUMENTS;
                o = put_value(o, bits[i] >> 31, kd, digits[i], ndig[i], exp10[i]);
            } else {
                uint64_t d = 0;
                int nd = 0, e = 0;
                int kd = classify(bits[i] & 0x7FFFFFFFu, &d, &nd, &e);
                if (kd == KIND_ORJSON) return NEEDS_ORJSON;
                o = put_value(o, bits[i] >> 31, kd, (uint32_t)d, nd, e);
            }
        }
        PUT(']'); /* close the finished levels, then open the next list */
        int l = ndim - 1;
        while (l > 0) {
            counter[l - 1]++;
            if (counter[l - 1] < shape[l - 1]) break;
            counter[l - 1] = 0;
            PUT(']');
            l--;
        }
        if (l == 0) break;
        PUT(',');
        for (int m = l; m < ndim; m++) PUT('[');
    }
#undef PUT
    return o - out;
}

/* The room weightinit_f32_json and weightinit_f32_format need at most (see bound). */
int64_t weightinit_f32_capacity(int64_t n, const int64_t *shape, int ndim)
{
    return bound(n, shape, ndim);
}

int weightinit_f32_max_value_text(void) { return MAX_VALUE_TEXT; }

int weightinit_f32_max_ndim(void) { return MAX_NDIM; }

/* Pass 2: the text from pass 1's arrays (n entries each; orjson's digits where pass 1 had none). */
int64_t weightinit_f32_format(const float *x, int64_t n, const int64_t *shape, int ndim, const uint32_t *digits,
                              const uint8_t *ndig, const int16_t *exp10, const uint8_t *kind, char *out,
                              int64_t capacity)
{
    return print_lists(x, n, shape, ndim, digits, ndig, exp10, kind, out, capacity);
}

/* Both passes in one, for arrays with no value that needs orjson (the usual case: weights): no
 * intermediate arrays. Returns the bytes written, or NEEDS_ORJSON when some value needs orjson
 * (the caller then runs the two passes), FULL or BAD_ARGUMENTS. */
int64_t weightinit_f32_json(const float *x, int64_t n, const int64_t *shape, int ndim, char *out, int64_t capacity)
{
    return print_lists(x, n, shape, ndim, 0, 0, 0, 0, out, capacity);
}
