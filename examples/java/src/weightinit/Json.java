package weightinit;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A small RFC 8259 JSON parser and writer (the JDK has none).
 *
 * <p>Objects become {@code LinkedHashMap<String, Object>} (member order kept), arrays
 * {@code List<Object>}, strings {@code String}, true/false {@code Boolean}, null {@code null}, and
 * numbers {@link Num}: their source text, so a request document is sent back exactly as written
 * (a 64-bit seed survives, which a double would round).
 */
final class Json {
    /** A JSON number, kept as its text. */
    record Num(String text) {
        long longValue() {
            return Long.parseLong(text);
        }

        double doubleValue() {
            return Double.parseDouble(text);
        }

        @Override
        public String toString() {
            return text;
        }
    }

    /** Malformed JSON: the message names the offset. */
    static final class ParseError extends Exception {
        ParseError(String message) {
            super(message);
        }
    }

    private static final int MAX_DEPTH = 512; // recursion bound: a hostile body cannot blow the stack

    private final String s;
    private int at;

    private Json(String s) {
        this.s = s;
    }

    static Object parse(String text) throws ParseError {
        Json p = new Json(text);
        p.space();
        Object v = p.value(0);
        p.space();
        if (p.at != text.length()) {
            throw p.error("text after the JSON value");
        }
        return v;
    }

    private ParseError error(String what) {
        return new ParseError("JSON: " + what + " at offset " + at);
    }

    private void space() {
        while (at < s.length() && " \t\r\n".indexOf(s.charAt(at)) >= 0) {
            at++;
        }
    }

    private Object value(int depth) throws ParseError {
        if (depth > MAX_DEPTH) {
            throw error("nesting deeper than " + MAX_DEPTH);
        }
        if (at >= s.length()) {
            throw error("unexpected end");
        }
        char c = s.charAt(at);
        if (c == '{') {
            return object(depth);
        } else if (c == '[') {
            return array(depth);
        } else if (c == '"') {
            return string();
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            return number();
        }
        for (String word : new String[] {"true", "false", "null"}) {
            if (s.startsWith(word, at)) {
                at += word.length();
                return word.equals("null") ? null : Boolean.valueOf(word.equals("true"));
            }
        }
        throw error("unexpected character '" + c + "'");
    }

    private Map<String, Object> object(int depth) throws ParseError {
        Map<String, Object> out = new LinkedHashMap<>();
        at++;
        space();
        if (at < s.length() && s.charAt(at) == '}') {
            at++;
            return out;
        }
        while (true) {
            space();
            if (at >= s.length() || s.charAt(at) != '"') {
                throw error("expected a member name");
            }
            String key = string();
            space();
            expect(':');
            space();
            out.put(key, value(depth + 1));
            space();
            if (at < s.length() && s.charAt(at) == ',') {
                at++;
                continue;
            }
            expect('}');
            return out;
        }
    }

    private List<Object> array(int depth) throws ParseError {
        List<Object> out = new ArrayList<>();
        at++;
        space();
        if (at < s.length() && s.charAt(at) == ']') {
            at++;
            return out;
        }
        while (true) {
            space();
            out.add(value(depth + 1));
            space();
            if (at < s.length() && s.charAt(at) == ',') {
                at++;
                continue;
            }
            expect(']');
            return out;
        }
    }

    private void expect(char c) throws ParseError {
        if (at >= s.length() || s.charAt(at) != c) {
            throw error("expected '" + c + "'");
        }
        at++;
    }

    private String string() throws ParseError {
        StringBuilder out = new StringBuilder();
        at++; // the opening quote
        while (true) {
            if (at >= s.length()) {
                throw error("unterminated string");
            }
            char c = s.charAt(at++);
            if (c == '"') {
                return out.toString();
            } else if (c < 0x20) {
                throw error("control character in a string");
            } else if (c != '\\') {
                out.append(c);
                continue;
            }
            if (at >= s.length()) {
                throw error("unterminated escape");
            }
            char e = s.charAt(at++);
            switch (e) {
                case '"', '\\', '/' -> out.append(e);
                case 'b' -> out.append('\b');
                case 'f' -> out.append('\f');
                case 'n' -> out.append('\n');
                case 'r' -> out.append('\r');
                case 't' -> out.append('\t');
                case 'u' -> {
                    // Four hex digits: one UTF-16 unit (a surrogate pair is two escapes, appended as is).
                    int unit = 0;
                    for (int k = 0; k < 4; k++) {
                        int digit = at < s.length() ? Character.digit(s.charAt(at++), 16) : -1;
                        if (digit < 0) {
                            throw error("bad \\u escape");
                        }
                        unit = unit * 16 + digit;
                    }
                    out.append((char) unit);
                }
                default -> throw error("bad escape \\" + e);
            }
        }
    }

    /** -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
    private Num number() throws ParseError {
        int start = at;
        if (s.charAt(at) == '-') {
            at++;
        }
        if (at < s.length() && s.charAt(at) == '0') {
            at++;
        } else if (digits() == 0) {
            throw error("bad number");
        }
        if (at < s.length() && s.charAt(at) == '.') {
            at++;
            if (digits() == 0) {
                throw error("bad fraction");
            }
        }
        if (at < s.length() && (s.charAt(at) == 'e' || s.charAt(at) == 'E')) {
            at++;
            if (at < s.length() && (s.charAt(at) == '+' || s.charAt(at) == '-')) {
                at++;
            }
            if (digits() == 0) {
                throw error("bad exponent");
            }
        }
        return new Num(s.substring(start, at));
    }

    private int digits() {
        int start = at;
        while (at < s.length() && s.charAt(at) >= '0' && s.charAt(at) <= '9') {
            at++;
        }
        return at - start;
    }

    /** The JSON text of a value made of the types {@link #parse} returns (and Long, Integer). */
    static String write(Object v) {
        StringBuilder out = new StringBuilder();
        write(v, out);
        return out.toString();
    }

    private static void write(Object v, StringBuilder out) {
        if (v == null) {
            out.append("null");
        } else if (v instanceof String str) {
            out.append(quote(str));
        } else if (v instanceof Num || v instanceof Boolean || v instanceof Long || v instanceof Integer) {
            out.append(v);
        } else if (v instanceof Map<?, ?> map) {
            out.append('{');
            String sep = "";
            for (Map.Entry<?, ?> e : map.entrySet()) {
                out.append(sep).append(quote((String) e.getKey())).append(':');
                write(e.getValue(), out);
                sep = ",";
            }
            out.append('}');
        } else if (v instanceof List<?> list) {
            out.append('[');
            String sep = "";
            for (Object item : list) {
                out.append(sep);
                write(item, out);
                sep = ",";
            }
            out.append(']');
        } else {
            throw new IllegalArgumentException("not a JSON value: " + v.getClass());
        }
    }

    /** A JSON string literal: quotes, backslashes and control characters escaped. */
    static String quote(String str) {
        StringBuilder out = new StringBuilder("\"");
        for (int i = 0; i < str.length(); i++) {
            char c = str.charAt(i);
            if (c == '"' || c == '\\') {
                out.append('\\').append(c);
            } else if (c < 0x20) {
                out.append(String.format("\\u%04x", (int) c));
            } else {
                out.append(c);
            }
        }
        return out.append('"').toString();
    }

    /** Member {@code key} of an object, or null when {@code v} is not an object or has no such member. */
    static Object get(Object v, String key) {
        return v instanceof Map<?, ?> map ? map.get(key) : null;
    }

    static String string(Object v) {
        return v instanceof String str ? str : null;
    }
}
