package weightinit;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * NumPy .npy reader (format versions 1.0, 2.0 and 3.0; little-endian floats, C order).
 *
 * <pre>
 *   offset 0  "\x93NUMPY", then the major and minor version bytes
 *   offset 8  the header length: u16 LE (1.0) or u32 LE (2.0, 3.0)
 *   then      a Python dict literal: {'descr': '&lt;f4', 'fortran_order': False, 'shape': (m, n), }
 *   then      the raw data
 * </pre>
 *
 * weightinit stores bfloat16 tensors as {@code '<u2'} (their bit patterns), so {@code '<u2'} reads as BF16.
 */
final class Npy {
    static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
    private static final Pattern DESCR = Pattern.compile("['\"]descr['\"]\\s*:\\s*['\"]([^'\"]*)['\"]");
    private static final Pattern FORTRAN = Pattern.compile("['\"]fortran_order['\"]\\s*:\\s*(True|False)");
    private static final Pattern SHAPE = Pattern.compile("['\"]shape['\"]\\s*:\\s*\\(([^)]*)\\)");

    private Npy() {}

    static boolean isNpy(byte[] bytes) {
        return bytes.length >= MAGIC.length && Arrays.equals(bytes, 0, MAGIC.length, MAGIC, 0, MAGIC.length);
    }

    static Tensor read(String name, byte[] bytes) throws FormatError {
        if (bytes.length < 10 || !isNpy(bytes)) {
            throw new FormatError("not a .npy file (bad magic)");
        }
        int major = bytes[6];
        long headerLength;
        int start;
        if (major == 1) {
            headerLength = (bytes[8] & 0xff) | (bytes[9] & 0xff) << 8;
            start = 10;
        } else if (major == 2 || major == 3) {
            if (bytes.length < 12) {
                throw new FormatError("truncated .npy header");
            }
            headerLength = (bytes[8] & 0xffL) | (bytes[9] & 0xffL) << 8 | (bytes[10] & 0xffL) << 16
                    | (bytes[11] & 0xffL) << 24;
            start = 12;
        } else {
            throw new FormatError("unsupported .npy version " + major);
        }
        if (headerLength > bytes.length - start) {
            throw new FormatError("truncated .npy header");
        }
        int dataStart = start + (int) headerLength;
        String header = new String(bytes, start, (int) headerLength, StandardCharsets.ISO_8859_1);
        DType dtype = switch (group(DESCR, header, "descr")) {
            case "<f4" -> DType.F32;
            case "<f8" -> DType.F64;
            case "<f2" -> DType.F16;
            case "<u2" -> DType.BF16; // weightinit's bfloat16 bit patterns
            default -> throw new FormatError("unsupported .npy dtype " + group(DESCR, header, "descr"));
        };
        if (!group(FORTRAN, header, "fortran_order").equals("False")) {
            throw new FormatError("Fortran-order .npy files are not supported");
        }
        long[] shape = parseShape(group(SHAPE, header, "shape"));
        long want;
        try {
            want = Math.multiplyExact(Tensor.elementCount(shape), dtype.itemsize);
        } catch (ArithmeticException e) {
            throw new FormatError("the .npy shape overflows");
        }
        long have = bytes.length - dataStart;
        if (have != want) {
            throw new FormatError("the .npy data has " + have + " bytes, its shape needs " + want);
        }
        return new Tensor(name, dtype, shape, Arrays.copyOfRange(bytes, dataStart, bytes.length));
    }

    private static String group(Pattern p, String header, String key) throws FormatError {
        Matcher m = p.matcher(header);
        if (!m.find()) {
            throw new FormatError("no valid '" + key + "' in the .npy header");
        }
        return m.group(1);
    }

    /** "2, 3" -> {2, 3}; "" -> {} (a scalar); "5," -> {5}. */
    private static long[] parseShape(String inner) throws FormatError {
        String[] parts = inner.split(",");
        long[] dims = new long[parts.length];
        int n = 0;
        for (String part : parts) {
            String d = part.strip();
            if (d.isEmpty()) {
                continue;
            }
            try {
                dims[n] = Long.parseLong(d);
            } catch (NumberFormatException e) {
                throw new FormatError("bad .npy dimension '" + d + "'");
            }
            if (dims[n++] < 0) {
                throw new FormatError("negative .npy dimension " + d);
            }
        }
        return Arrays.copyOf(dims, n);
    }
}
