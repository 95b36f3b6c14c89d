package weightinit;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

/**
 * Unit tests of the readers without a server and without JUnit (JDK only): half-float decoding
 * (every one of the 65536 float16 patterns against the formula), JSON, .npy, safetensors,
 * SHA-256 and Repr-Digest. Prints "N checks passed", or each failure and exits 1.
 *
 * <pre>
 *   javac -d build $(find src test -name '*.java') && java -cp build weightinit.ReadersTest
 * </pre>
 */
public final class ReadersTest {
    private static int passed;
    private static int failed;

    private static void check(boolean ok, String what) {
        if (ok) {
            passed++;
        } else {
            failed++;
            System.out.println("FAIL: " + what);
        }
    }

    private static void rejects(String what, ThrowingRunnable r) {
        try {
            r.run();
            check(false, what + " was accepted");
        } catch (FormatError | Json.ParseError e) {
            check(true, what);
        } catch (Exception e) {
            check(false, what + " threw " + e);
        }
    }

    private interface ThrowingRunnable {
        void run() throws Exception;
    }

    public static void main(String[] args) throws Exception {
        halfFloats();
        tensors();
        json();
        npy();
        safetensors();
        digests();
        System.out.println(passed + " checks passed, " + failed + " failed");
        System.exit(failed == 0 ? 0 : 1);
    }

    static void halfFloats() {
        float[][] known = {{0x3c00, 1f}, {0xc000, -2f}, {0x7bff, 65504f}, {0x0001, 0x1p-24f},
            {0x03ff, 1023 * 0x1p-24f}, {0x0400, 0x1p-14f}, {0x2e66, 0.099975586f}};
        for (float[] k : known) {
            check(Tensor.halfToFloat((int) k[0]) == k[1], "half " + Integer.toHexString((int) k[0]));
        }
        check(Float.floatToRawIntBits(Tensor.halfToFloat(0x8000)) == 0x80000000, "half -0 keeps its sign");
        check(Tensor.halfToFloat(0x7c00) == Float.POSITIVE_INFINITY, "half +inf");
        check(Tensor.halfToFloat(0xfc00) == Float.NEGATIVE_INFINITY, "half -inf");
        check(Float.isNaN(Tensor.halfToFloat(0x7e00)), "half NaN");
        // Every finite pattern against (-1)^s * (e == 0 ? f * 2^-24 : (1024 + f) * 2^(e - 25)).
        int bad = 0;
        for (int h = 0; h < 0x10000; h++) {
            int e = (h >> 10) & 0x1f;
            int f = h & 0x3ff;
            if (e == 31) {
                continue;
            }
            double magnitude = e == 0 ? Math.scalb((double) f, -24) : Math.scalb((double) (1024 + f), e - 25);
            double want = (h & 0x8000) != 0 ? -magnitude : magnitude;
            if (Double.doubleToRawLongBits(Tensor.halfToFloat(h)) != Double.doubleToRawLongBits(want)) {
                bad++;
            }
        }
        check(bad == 0, bad + " of the finite float16 patterns decode wrongly");
        check(Tensor.bfloat16ToFloat(0x3f80) == 1f, "bfloat16 1");
        check(Tensor.bfloat16ToFloat(0xbfc0) == -1.5f, "bfloat16 -1.5");
        check(Float.floatToRawIntBits(Tensor.bfloat16ToFloat(0x0001)) == 0x00010000, "bfloat16 subnormal");
    }

    static void tensors() {
        byte[] data = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putDouble(-0.5).putDouble(3).array();
        Tensor t = new Tensor("d", DType.F64, new long[] {2}, data);
        check(t.size() == 2 && t.value(0) == -0.5 && t.value(1) == 3.0, "F64 values");
        Tensor h = new Tensor("h", DType.F16, new long[] {1, 2}, new byte[] {0x01, 0x00, 0x00, (byte) 0xbc});
        check(h.bits(1) == 0xbc00 && h.value(1) == -1.0, "F16 bits are little-endian");
        String dump = h.dumpJson();
        check(dump.equals("{\"name\":\"h\",\"dtype\":\"F16\",\"shape\":[1,2],\"sha256\":\"" + h.sha256()
                + "\",\"bits\":[\"0001\",\"bc00\"],\"f64_bits\":[\"3e70000000000000\",\"bff0000000000000\"]}"),
                "dump " + dump);
        check(Tensor.sha256Hex("abc".getBytes(StandardCharsets.US_ASCII))
                .equals("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"), "sha256 of abc");
        check(Tensor.sha256Hex(new byte[0])
                .equals("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"), "sha256 of nothing");
    }

    static void json() throws Exception {
        String text = "{\"seed\":18446744073709551615,\"x\":[-0.0,1e-05,true,false,null],"
                + "\"s\":\"a\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\",\"o\":{}}";
        Object v = Json.parse(text);
        check(Json.get(v, "seed").toString().equals("18446744073709551615"), "numbers keep their text");
        check(Json.string(Json.get(v, "s")).equals("a\"\\/\b\f\n\r\t\u00e9\ud83d\ude00"), "string escapes");
        check(Json.get(v, "x") instanceof List<?> l && l.size() == 5 && l.get(4) == null, "arrays and null");
        check(Json.get(v, "o") instanceof Map<?, ?> m && m.isEmpty(), "empty object");
        check(Json.parse(Json.write(v)).toString().equals(v.toString()), "write then parse round-trips");
        check(Json.quote("\u0001\"").equals("\"\\u0001\\\"\""), "quote escapes control characters");
        for (String bad : new String[] {"", "[1,]", "{\"a\" 1}", "01", "1.", "-", "1e", "\"\\x\"", "\"\\u+123\"",
            "\"\\u12\"", "tru", "[1] x", "\"a", "{\"a\":1,}", "\"\u0001\"", "[".repeat(600) + "]".repeat(600)}) {
            rejects("JSON " + (bad.length() > 20 ? bad.substring(0, 20) + "..." : bad), () -> Json.parse(bad));
        }
    }

    static byte[] npyFile(String descr, String shape, byte[] data) {
        StringBuilder header = new StringBuilder("{'descr': '" + descr + "', 'fortran_order': False, 'shape': "
                + shape + ", }");
        while ((10 + header.length() + 1) % 64 != 0) {
            header.append(' ');
        }
        header.append('\n');
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(Npy.MAGIC);
        out.writeBytes(new byte[] {1, 0, (byte) header.length(), (byte) (header.length() >> 8)});
        out.writeBytes(header.toString().getBytes(StandardCharsets.US_ASCII));
        out.writeBytes(data);
        return out.toByteArray();
    }

    static void npy() throws Exception {
        ByteBuffer f32 = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN);
        for (float x : new float[] {1, -2.5f, 3, 0.5f, 0, 7}) {
            f32.putFloat(x);
        }
        Tensor t = Npy.read("w", npyFile("<f4", "(2, 3)", f32.array()));
        check(t.dtype == DType.F32 && t.shapeText().equals("[2, 3]") && t.value(1) == -2.5, ".npy <f4 (2, 3)");
        Tensor b = Npy.read("b", npyFile("<u2", "(1,)", new byte[] {(byte) 0x80, 0x3f}));
        check(b.dtype == DType.BF16 && b.value(0) == 1.0, ".npy <u2 reads as bfloat16");
        Tensor s = Npy.read("s", npyFile("<f8", "()", new byte[] {0, 0, 0, 0, 0, 0, 0, 0x40}));
        check(s.shape.length == 0 && s.value(0) == 2.0, ".npy scalar");
        rejects(".npy bad magic", () -> Npy.read("x", "PK\u0003\u0004 not npy".getBytes(StandardCharsets.ISO_8859_1)));
        rejects(".npy <i4", () -> Npy.read("x", npyFile("<i4", "(1,)", new byte[4])));
        rejects(".npy short data", () -> Npy.read("x", npyFile("<f4", "(2,)", new byte[4])));
        rejects(".npy trailing data", () -> Npy.read("x", npyFile("<f4", "(1,)", new byte[5])));
        rejects(".npy huge shape", () -> Npy.read("x", npyFile("<f4", "(4611686018427387904, 4)", new byte[0])));
        byte[] fortran = npyFile("<f4", "(1,)", new byte[4]);
        String h = new String(fortran, StandardCharsets.ISO_8859_1).replace("False", "True ");
        rejects(".npy Fortran order", () -> Npy.read("x", h.getBytes(StandardCharsets.ISO_8859_1)));
        byte[] truncated = java.util.Arrays.copyOf(npyFile("<f4", "(1,)", new byte[4]), 20);
        rejects(".npy truncated header", () -> Npy.read("x", truncated));
    }

    static byte[] stFile(String header, byte[] data) {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(8 + h.length + data.length).order(ByteOrder.LITTLE_ENDIAN)
                .putLong(h.length).put(h).put(data).array();
    }

    static void safetensors() throws Exception {
        String header = """
                {"b":{"dtype":"BF16","shape":[2],"data_offsets":[8,12]},"__metadata__":{"k":"v"},\
                "a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""";
        byte[] data = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN).putFloat(1).putFloat(2)
                .put(new byte[] {(byte) 0x80, 0x3f, (byte) 0xc0, (byte) 0xbf}).array();
        SafeTensors st = SafeTensors.read(stFile(header, data));
        check(st.metadata().equals(Map.of("k", "v")), "safetensors metadata");
        check(st.tensors().size() == 2 && st.tensors().get(0).name.equals("a") && st.tensors().get(1).value(1) == -1.5,
                "safetensors tensors in data order");
        String ok = "{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}";
        check(SafeTensors.read(stFile(ok, new byte[4])).tensors().size() == 1, "safetensors F16");
        rejects("safetensors trailing bytes", () -> SafeTensors.read(stFile(ok, new byte[6])));
        rejects("safetensors truncated", () -> SafeTensors.read(stFile(ok, new byte[2])));
        rejects("safetensors gap", () -> SafeTensors.read(stFile(ok.replace("[0,4]", "[2,6]"), new byte[6])));
        rejects("safetensors size", () -> SafeTensors.read(stFile(ok.replace("F16", "F32"), new byte[4])));
        rejects("safetensors I8", () -> SafeTensors.read(stFile(ok.replace("F16", "I8").replace("[0,4]", "[0,2]"),
                new byte[2])));
        rejects("safetensors negative dim", () -> SafeTensors.read(stFile(ok.replace("[2]", "[-2]"), new byte[4])));
        rejects("safetensors header length", () -> SafeTensors.read(new byte[] {1, 0, 0, 0, 0, 0, 0, (byte) 0xff}));
        rejects("safetensors short", () -> SafeTensors.read(new byte[3]));
        rejects("safetensors not an object", () -> SafeTensors.read(stFile("[1]", new byte[0])));
    }

    static void digests() {
        byte[] abc = "abc".getBytes(StandardCharsets.US_ASCII);
        String good = "sha-256=:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=:";
        check(Http.reprDigest(new Http.Response(200, abc, null, good)) == Http.Digest.MATCHES, "Repr-Digest matches");
        check(Http.reprDigest(new Http.Response(200, abc, null, "sha-512=:AA==:, " + good)) == Http.Digest.MATCHES,
                "Repr-Digest with another algorithm first");
        check(Http.reprDigest(new Http.Response(200, "abd".getBytes(StandardCharsets.US_ASCII), null, good))
                == Http.Digest.DIFFERS, "Repr-Digest differs");
        check(Http.reprDigest(new Http.Response(200, abc, null, null)) == Http.Digest.ABSENT, "no Repr-Digest");
        check(Http.reprDigest(new Http.Response(200, abc, null, "sha-512=:AA==:")) == Http.Digest.ABSENT,
                "no sha-256 member");
        String problem = """
                {"type":"urn:x","title":"Invalid request document","status":422,"detail":"seed: bad"}""";
        check(Http.problem("application/problem+json", problem.getBytes(StandardCharsets.UTF_8))
                .equals("Invalid request document: seed: bad"), "problem title and detail");
        check(Http.problem("text/html", "<h1>502</h1>".getBytes(StandardCharsets.UTF_8)).equals("<h1>502</h1>"),
                "a non-JSON error body");
    }
}
