package weightinit;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * weightinit from Java 17, JDK only: asks a running service for the weights of a request document
 * as JSON (the report with every tensor's sha256), as safetensors and (the first tensor) as .npy;
 * decodes both binary formats itself; prints every tensor's name, dtype, shape and first values;
 * checks each tensor's sha256, dtype and shape against the report and each body against its
 * Repr-Digest; and revalidates the safetensors with If-None-Match, which must answer 304.
 *
 * <pre>
 *   java -cp build weightinit.Client [--url URL] [--request REQUEST.json] [--show N] [--dump OUT.json]
 * </pre>
 *
 * Exit status: 0 all good, 1 a mismatch, an HTTP error (the problem's detail is printed) or an
 * unreadable response, 2 bad usage.
 */
public final class Client {
    static final String USAGE = "usage: java -cp build weightinit.Client [--url URL] [--request REQUEST.json]"
            + " [--show N] [--dump OUT.json]";

    /** The default request: a small MLP (override with --request FILE). */
    static final String EXAMPLE = """
            {"architecture": {"layers": [
              {"type": "dense", "name": "fc1", "in_features": 16, "out_features": 8, "activation": "relu"},
              {"type": "dense", "name": "out", "in_features": 8, "out_features": 4, "activation": "tanh"}]},
             "scheme": "auto", "seed": 42, "dtype": "float32"}""";

    /** What the JSON report says about one tensor. */
    record Reported(String name, DType dtype, long[] shape, String sha256) {}

    private final Http http;
    private final int show;
    private boolean ok = true;

    private Client(Http http, int show) {
        this.http = http;
        this.show = show;
    }

    public static void main(String[] args) {
        String url = System.getenv().getOrDefault("WEIGHTINIT_URL", "http://127.0.0.1:8000");
        String request = null;
        String dump = null;
        int show = 6;
        Map<String, Object> doc;
        try {
            for (int i = 0; i < args.length; i++) {
                String a = args[i];
                if (a.equals("-h") || a.equals("--help")) {
                    System.out.println(USAGE);
                    return;
                }
                if (!List.of("--url", "--request", "--show", "--dump").contains(a)) {
                    throw new IllegalArgumentException("unknown argument " + a);
                }
                if (i + 1 == args.length) {
                    throw new IllegalArgumentException(a + " needs a value");
                }
                String v = args[++i];
                switch (a) {
                    case "--url" -> url = v;
                    case "--request" -> request = v;
                    case "--dump" -> dump = v;
                    default -> show = Integer.parseUnsignedInt(v);
                }
            }
            if (!url.startsWith("http://") && !url.startsWith("https://")) {
                throw new IllegalArgumentException("--url must be an http:// or https:// URL, not " + url);
            }
            doc = requestDocument(request);
        } catch (IOException | IllegalArgumentException e) {
            // An IOException's message is only the path: its class says what went wrong.
            System.err.println("weightinit client: " + (e instanceof IOException ? e.toString() : e.getMessage()));
            System.err.println(USAGE);
            System.exit(2);
            return;
        }
        int status;
        try {
            status = new Client(new Http(url), show).run(doc, dump) ? 0 : 1;
        } catch (Http.HttpError | FormatError | Json.ParseError e) {
            System.err.println("weightinit client: " + e.getMessage());
            status = 1;
        } catch (IOException e) {
            System.err.println("weightinit client: " + url + ": " + e); // a ConnectException has no message
            status = 1;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            status = 1;
        }
        System.exit(status);
    }

    /** The document (a file, else EXAMPLE) without `format`: the Accept header picks each format below. */
    @SuppressWarnings("unchecked")
    static Map<String, Object> requestDocument(String path) throws IOException {
        String where = path == null ? "the example request" : path;
        Object parsed;
        try {
            parsed = Json.parse(path == null ? EXAMPLE : Files.readString(Path.of(path), StandardCharsets.UTF_8));
        } catch (Json.ParseError e) {
            throw new IllegalArgumentException(where + ": " + e.getMessage());
        }
        if (!(parsed instanceof Map<?, ?>)) {
            throw new IllegalArgumentException(where + ": the request document must be a JSON object");
        }
        Map<String, Object> doc = new LinkedHashMap<>((Map<String, Object>) parsed);
        doc.remove("format");
        return doc;
    }

    private boolean run(Map<String, Object> doc, String dumpPath)
            throws IOException, InterruptedException, Http.HttpError, FormatError, Json.ParseError {
        String body = Json.write(doc);
        Http.Response json = http.post("/v1/weights", body, "application/json", null);
        Object report = Json.parse(new String(json.body(), StandardCharsets.UTF_8));
        List<Reported> reported = reported(report);
        Object engine = Json.get(report, "engine");
        System.out.printf("report: %d tensors, seed %s, %s %s (numpy %s), %s%n", reported.size(),
                Json.get(report, "seed"), Json.get(engine, "name"), Json.get(engine, "version"),
                Json.get(engine, "numpy"), digest(json));

        Http.Response st = http.post("/v1/weights", body, "application/vnd.safetensors", null);
        SafeTensors file = SafeTensors.read(st.body());
        System.out.printf("safetensors: %d tensors, %d bytes, %s%s%n", file.tensors().size(), st.body().length,
                digest(st), describe(file.metadata().get("weightinit")));
        print(file.tensors(), reported);
        for (Reported r : reported) {
            if (file.tensors().stream().noneMatch(t -> t.name.equals(r.name()))) {
                mismatch("", r.name() + " is in the report but not in the safetensors file");
            }
        }

        // A .npy holds one tensor: ask for the report's first one alone.
        String first = reported.get(0).name();
        Map<String, Object> one = new LinkedHashMap<>(doc);
        one.put("tensors", List.of(first));
        Http.Response npy = http.post("/v1/weights", Json.write(one), "application/x-npy", null);
        Tensor t = Npy.read(first, npy.body());
        System.out.printf("npy: %s, %d bytes, %s%n", first, npy.body().length, digest(npy));
        print(List.of(t), reported);

        revalidate(body, st.etag());

        if (dumpPath != null) {
            Map<String, Object> sums = new LinkedHashMap<>();
            reported.forEach(r -> sums.put(r.name(), r.sha256()));
            List<String> stDump = new ArrayList<>();
            file.tensors().forEach(x -> stDump.add(x.dumpJson()));
            String text = "{\"reported_sha256\":" + Json.write(sums) + ",\"formats\":{\"safetensors\":["
                    + String.join(",\n", stDump) + "],\"npy\":[" + t.dumpJson() + "]}}\n";
            Files.writeString(Path.of(dumpPath), text, StandardCharsets.UTF_8);
        }
        System.out.println(ok ? "all tensors match the sha256, dtype and shape of the JSON report"
                : "some tensors do not match the JSON report");
        return ok;
    }

    /** The same request with If-None-Match: the ETag: nothing changed, so 304 and no body. */
    private void revalidate(String body, String etag) throws IOException, InterruptedException, Http.HttpError {
        if (etag == null) {
            System.out.println("no ETag on the safetensors response: nothing to revalidate");
            return;
        }
        Http.Response again = http.post("/v1/weights", body, "application/vnd.safetensors", etag);
        if (again.status() == 304 && again.body().length == 0) {
            System.out.println("revalidated: If-None-Match " + etag + " -> 304 Not Modified, no body");
        } else {
            mismatch("", "If-None-Match " + etag + " -> HTTP " + again.status() + " with " + again.body().length
                    + " bytes, expected 304 and no body");
        }
    }

    /** Every tensor's line, then whether it agrees with the report. */
    private void print(List<Tensor> tensors, List<Reported> reported) {
        int width = tensors.stream().mapToInt(t -> t.name.length()).max().orElse(0);
        String pad = " ".repeat(width);
        for (Tensor t : tensors) {
            StringBuilder head = new StringBuilder();
            int shown = Math.min(show, t.size());
            for (int i = 0; i < shown; i++) {
                head.append(i == 0 ? "" : ", ").append(t.display(i));
            }
            String digest = t.sha256();
            System.out.printf("  %-" + Math.max(width, 1) + "s  %-4s  %-16s  sha256 %s  [%s%s]%n", t.name,
                    t.dtype.name(), t.shapeText(), digest.substring(0, 16), head, t.size() > shown ? ", ..." : "");
            List<String> problems = check(t, digest, reported);
            if (problems.isEmpty()) {
                System.out.println("  " + pad + "  sha256 matches the report");
            }
            problems.forEach(p -> mismatch(pad + "  ", p));
        }
    }

    /** Problems of one tensor against the report (empty when it agrees). */
    static List<String> check(Tensor t, String digest, List<Reported> reported) {
        Reported r = reported.stream().filter(x -> x.name().equals(t.name)).findFirst().orElse(null);
        if (r == null) {
            return List.of(t.name + " is not in the report");
        }
        List<String> problems = new ArrayList<>();
        if (!r.sha256().equals(digest)) {
            problems.add("sha256 " + digest + " but the report says " + r.sha256());
        }
        if (r.dtype() != t.dtype) {
            problems.add("dtype " + t.dtype + " but the report says " + r.dtype());
        }
        if (!java.util.Arrays.equals(r.shape(), t.shape)) {
            problems.add("shape " + t.shapeText() + " but the report says " + java.util.Arrays.toString(r.shape()));
        }
        return problems;
    }

    private void mismatch(String indent, String text) {
        ok = false;
        System.out.println("  " + indent + "MISMATCH: " + text);
    }

    private String digest(Http.Response r) {
        return switch (Http.reprDigest(r)) {
            case MATCHES -> "Repr-Digest matches";
            case ABSENT -> "no Repr-Digest";
            case DIFFERS -> {
                ok = false;
                yield "MISMATCH: Repr-Digest " + r.reprDigest() + " is not the body's sha-256";
            }
        };
    }

    /** "; seed S, scheme X, weightinit V (numpy N)" from the safetensors' __metadata__.weightinit. */
    static String describe(String metadata) throws Json.ParseError {
        if (metadata == null) {
            return "";
        }
        Object meta = Json.parse(metadata);
        Object scheme = Json.get(meta, "scheme");
        Object engine = Json.get(meta, "engine");
        return String.format("; seed %s, scheme %s, %s %s (numpy %s)", Json.get(meta, "seed"),
                scheme instanceof Map ? Json.get(scheme, "name") : scheme, Json.get(engine, "name"),
                Json.get(engine, "version"), Json.get(engine, "numpy"));
    }

    /** The report's tensors: name, dtype, shape, sha256 (the JSON of POST /v1/weights, not /v1/plan). */
    static List<Reported> reported(Object report) throws FormatError {
        if (!(Json.get(report, "tensors") instanceof List<?> tensors) || tensors.isEmpty()) {
            throw new FormatError("the JSON report has no \"tensors\" list");
        }
        List<Reported> out = new ArrayList<>();
        for (Object t : tensors) {
            String name = Json.string(Json.get(t, "name"));
            String sha = Json.string(Json.get(t, "sha256"));
            if (name == null || sha == null) {
                throw new FormatError("a tensor of the JSON report without \"name\" or \"sha256\"");
            }
            long[] shape = SafeTensors.longs(Json.get(t, "shape"), name, "shape");
            out.add(new Reported(name, DType.fromRequestName(Json.string(Json.get(t, "dtype"))), shape, sha));
        }
        return out;
    }
}
