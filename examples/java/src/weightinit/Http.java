package weightinit;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.Base64;

/** POSTs request documents to a weightinit service with java.net.http, and reads its answers. */
final class Http {
    /** Sent with every request: the server's access log tells this client's requests apart. */
    static final String USER_AGENT = "weightinit-java-example/1.0";

    /** A status the client did not ask for; the message carries the problem's title and detail. */
    static final class HttpError extends Exception {
        HttpError(String message) {
            super(message);
        }
    }

    /** A response: status, body, and the headers the client reads. */
    record Response(int status, byte[] body, String etag, String reprDigest) {}

    /** What a Repr-Digest header says about a body. */
    enum Digest { MATCHES, DIFFERS, ABSENT }

    private final HttpClient client;
    private final String base;

    Http(String base) {
        // HTTP/1.1: the default (HTTP/2) would offer gunicorn an h2c upgrade it does not speak.
        this.client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(10)).build();
        this.base = base.endsWith("/") ? base.substring(0, base.length() - 1) : base;
    }

    /**
     * POST {@code json} to {@code path} asking for {@code accept}. A 200 must carry that media type;
     * with {@code ifNoneMatch} (an ETag) a 304 is returned as it came. Any other status is an HttpError
     * naming the problem+json's title and detail.
     */
    Response post(String path, String json, String accept, String ifNoneMatch)
            throws IOException, InterruptedException, HttpError {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(base + path))
                .timeout(Duration.ofSeconds(120))
                .header("Content-Type", "application/json")
                .header("Accept", accept)
                .header("User-Agent", USER_AGENT)
                .POST(HttpRequest.BodyPublishers.ofString(json, StandardCharsets.UTF_8));
        if (ifNoneMatch != null) {
            request.header("If-None-Match", ifNoneMatch);
        }
        HttpResponse<byte[]> r = client.send(request.build(), HttpResponse.BodyHandlers.ofByteArray());
        String type = r.headers().firstValue("Content-Type").orElse("");
        if (r.statusCode() != 200 && !(r.statusCode() == 304 && ifNoneMatch != null)) {
            throw new HttpError("POST " + path + ": HTTP " + r.statusCode() + " " + problem(type, r.body()));
        }
        if (r.statusCode() == 200 && !type.split(";")[0].strip().equals(accept)) {
            throw new HttpError("POST " + path + ": asked for " + accept + ", got " + type);
        }
        return new Response(r.statusCode(), r.body(), r.headers().firstValue("ETag").orElse(null),
                r.headers().firstValue("Repr-Digest").orElse(null));
    }

    /** "title: detail" of an RFC 9457 problem+json body (else the body's first 200 characters). */
    static String problem(String type, byte[] body) {
        String text = new String(body, StandardCharsets.UTF_8);
        if (type.contains("json")) {
            try {
                Object p = Json.parse(text);
                String title = Json.string(Json.get(p, "title"));
                String detail = Json.string(Json.get(p, "detail"));
                return (title == null ? "" : title) + ": " + (detail == null ? "" : detail);
            } catch (Json.ParseError e) {
                // not a problem document after all: show its text
            }
        }
        return text.length() > 200 ? text.substring(0, 200) + "..." : text;
    }

    /**
     * RFC 9530: {@code Repr-Digest: sha-256=:<base64>:} is the sha-256 of the whole body (other
     * algorithms in the list are ignored; without a sha-256 member it is ABSENT).
     */
    static Digest reprDigest(Response r) {
        if (r.reprDigest() == null) {
            return Digest.ABSENT;
        }
        for (String member : r.reprDigest().split(",")) {
            String m = member.strip();
            if (m.startsWith("sha-256=:") && m.endsWith(":") && m.length() > 10) {
                byte[] want;
                try {
                    want = Base64.getDecoder().decode(m.substring(9, m.length() - 1));
                } catch (IllegalArgumentException e) {
                    return Digest.DIFFERS;
                }
                return MessageDigest.isEqual(want, Tensor.sha256(r.body())) ? Digest.MATCHES : Digest.DIFFERS;
            }
        }
        return Digest.ABSENT;
    }
}
