package weightinit;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/** A decoded tensor: name, dtype, shape and its stored little-endian C-order bytes. */
final class Tensor {
    final String name;
    final DType dtype;
    final long[] shape;
    final byte[] data;

    Tensor(String name, DType dtype, long[] shape, byte[] data) {
        this.name = name;
        this.dtype = dtype;
        this.shape = shape;
        this.data = data;
    }

    int size() {
        return data.length / dtype.itemsize;
    }

    /** Stored element {@code i} as an unsigned integer: its bit pattern. */
    long bits(int i) {
        long b = 0;
        for (int k = dtype.itemsize - 1; k >= 0; k--) {
            b = (b << 8) | (data[i * dtype.itemsize + k] & 0xff);
        }
        return b;
    }

    /** Element {@code i} widened to a double: exact, every dtype here fits a double. */
    double value(int i) {
        long b = bits(i);
        return switch (dtype) {
            case F64 -> Double.longBitsToDouble(b);
            case F32 -> Float.intBitsToFloat((int) b);
            case F16 -> halfToFloat((int) b);
            case BF16 -> bfloat16ToFloat((int) b);
        };
    }

    /**
     * IEEE binary16 -> float, exactly. sign | exponent (5 bits, bias 15) | fraction (10 bits):
     * exponent 0 is zero or subnormal, fraction * 2^-24; 31 is infinity or NaN; otherwise
     * 1.fraction * 2^(exponent - 15), which is float32's exponent + 112 with the fraction shifted.
     */
    static float halfToFloat(int h) {
        int sign = (h & 0x8000) << 16;
        int exp = (h >> 10) & 0x1f;
        int frac = h & 0x3ff;
        if (exp == 0) {
            float magnitude = frac * 0x1p-24f; // an integer below 2^10 times a power of two: exact
            return Float.intBitsToFloat(Float.floatToRawIntBits(magnitude) | sign);
        }
        if (exp == 31) {
            return Float.intBitsToFloat(sign | 0x7f800000 | (frac << 13));
        }
        return Float.intBitsToFloat(sign | ((exp + 112) << 23) | (frac << 13));
    }

    /** bfloat16 is the upper half of a float32. */
    static float bfloat16ToFloat(int b) {
        return Float.intBitsToFloat((b & 0xffff) << 16);
    }

    /** Element {@code i} as text: in double precision for F64, in float precision otherwise. */
    String display(int i) {
        double v = value(i);
        return dtype == DType.F64 ? Double.toString(v) : Float.toString((float) v);
    }

    String sha256() {
        return sha256Hex(data);
    }

    static String sha256Hex(byte[] bytes) {
        return HexFormat.of().formatHex(sha256(bytes));
    }

    static byte[] sha256(byte[] bytes) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(bytes);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java platform has SHA-256", e);
        }
    }

    String shapeText() {
        StringBuilder s = new StringBuilder("[");
        for (int k = 0; k < shape.length; k++) {
            s.append(k == 0 ? "" : ", ").append(shape[k]);
        }
        return s.append(']').toString();
    }

    /** Elements of a shape; ArithmeticException when it overflows a long. */
    static long elementCount(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    /** {name, dtype, shape, sha256, bits, f64_bits}: the dump tests/clients/engine.py compares. */
    String dumpJson() {
        HexFormat hex = HexFormat.of();
        int width = 2 * dtype.itemsize;
        StringBuilder s = new StringBuilder("{\"name\":").append(Json.quote(name))
                .append(",\"dtype\":\"").append(dtype.name()).append("\",\"shape\":[");
        for (int k = 0; k < shape.length; k++) {
            s.append(k == 0 ? "" : ",").append(shape[k]);
        }
        s.append("],\"sha256\":\"").append(sha256()).append("\",\"bits\":[");
        for (int i = 0; i < size(); i++) {
            s.append(i == 0 ? "\"" : ",\"").append(hex.toHexDigits(bits(i)).substring(16 - width)).append('"');
        }
        s.append("],\"f64_bits\":[");
        for (int i = 0; i < size(); i++) {
            long b = Double.doubleToRawLongBits(value(i));
            s.append(i == 0 ? "\"" : ",\"").append(hex.toHexDigits(b)).append('"');
        }
        return s.append("]}").toString();
    }
}
