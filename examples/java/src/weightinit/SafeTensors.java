package weightinit;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * safetensors reader.
 *
 * <pre>
 *   offset 0    u64 little-endian N
 *   offset 8    N bytes of UTF-8 JSON: {"__metadata__": {str: str}, name: {"dtype", "shape",
 *               "data_offsets": [begin, end]}, ...}
 *   offset 8+N  the data: each tensor's little-endian C-order bytes at [begin, end) relative to
 *               here; together they cover the data with no gaps or overlaps.
 * </pre>
 */
record SafeTensors(Map<String, String> metadata, List<Tensor> tensors) {
    private static final long MAX_HEADER = 100_000_000;

    /** The tensors in data order; a FormatError for anything the layout above does not allow. */
    static SafeTensors read(byte[] bytes) throws FormatError {
        if (bytes.length < 8) {
            throw new FormatError("not a safetensors file (shorter than 8 bytes)");
        }
        long n = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        if (n < 0 || n > bytes.length - 8 || n > MAX_HEADER) {
            throw new FormatError("header length " + Long.toUnsignedString(n) + " does not fit the file");
        }
        Object header;
        try {
            String text = StandardCharsets.UTF_8.newDecoder().decode(ByteBuffer.wrap(bytes, 8, (int) n)).toString();
            header = Json.parse(text);
        } catch (CharacterCodingException e) {
            throw new FormatError("the header is not UTF-8");
        } catch (Json.ParseError e) {
            throw new FormatError("header: " + e.getMessage());
        }
        if (!(header instanceof Map<?, ?> members)) {
            throw new FormatError("the header is not a JSON object");
        }
        int dataStart = 8 + (int) n;
        long dataLength = bytes.length - dataStart;
        Map<String, String> metadata = new LinkedHashMap<>();
        List<Entry> entries = new ArrayList<>();
        for (Map.Entry<?, ?> m : members.entrySet()) {
            String name = (String) m.getKey();
            if (name.equals("__metadata__")) {
                if (!(m.getValue() instanceof Map<?, ?> meta)) {
                    throw new FormatError("__metadata__ is not an object");
                }
                for (Map.Entry<?, ?> e : meta.entrySet()) {
                    if (!(e.getValue() instanceof String value)) {
                        throw new FormatError("__metadata__ values must be strings");
                    }
                    metadata.put((String) e.getKey(), value);
                }
                continue;
            }
            entries.add(entry(name, m.getValue()));
        }
        entries.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
        long expected = 0;
        List<Tensor> tensors = new ArrayList<>(entries.size());
        for (Entry e : entries) {
            if (e.begin != expected) {
                throw new FormatError("tensor \"" + e.name + "\" starts at " + e.begin + ", expected " + expected
                        + " (gap or overlap)");
            }
            if (e.end > dataLength) {
                throw new FormatError("tensor \"" + e.name + "\" ends at " + e.end + ", past the data ("
                        + dataLength + " bytes)");
            }
            byte[] data = Arrays.copyOfRange(bytes, dataStart + (int) e.begin, dataStart + (int) e.end);
            tensors.add(new Tensor(e.name, e.dtype, e.shape, data));
            expected = e.end;
        }
        if (expected != dataLength) {
            throw new FormatError((dataLength - expected) + " bytes after the last tensor");
        }
        return new SafeTensors(metadata, tensors);
    }

    private record Entry(String name, DType dtype, long[] shape, long begin, long end) {}

    private static Entry entry(String name, Object info) throws FormatError {
        String code = Json.string(Json.get(info, "dtype"));
        DType dtype = DType.fromCode(code);
        if (dtype == null) {
            throw new FormatError("tensor \"" + name + "\": unsupported dtype " + code);
        }
        long[] shape = longs(Json.get(info, "shape"), name, "shape");
        long[] offsets = longs(Json.get(info, "data_offsets"), name, "data_offsets");
        if (offsets.length != 2 || offsets[0] > offsets[1]) {
            throw new FormatError("tensor \"" + name + "\": bad data_offsets " + Arrays.toString(offsets));
        }
        long want;
        try {
            want = Math.multiplyExact(Tensor.elementCount(shape), dtype.itemsize);
        } catch (ArithmeticException e) {
            throw new FormatError("tensor \"" + name + "\": its shape overflows");
        }
        if (want != offsets[1] - offsets[0]) {
            throw new FormatError("tensor \"" + name + "\": " + (offsets[1] - offsets[0]) + " bytes for shape "
                    + Arrays.toString(shape) + " of " + code);
        }
        return new Entry(name, dtype, shape, offsets[0], offsets[1]);
    }

    /** A JSON list of non-negative integers that fit a long. */
    static long[] longs(Object v, String name, String what) throws FormatError {
        if (!(v instanceof List<?> list)) {
            throw new FormatError("tensor \"" + name + "\": no " + what + " list");
        }
        long[] out = new long[list.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = -1;
            if (list.get(i) instanceof Json.Num num) {
                try {
                    out[i] = num.longValue();
                } catch (NumberFormatException e) {
                    // not an integer, or beyond a long: stays -1, reported below
                }
            }
            if (out[i] < 0) {
                throw new FormatError("tensor \"" + name + "\": bad " + what + " " + list);
            }
        }
        return out;
    }
}
