package weightinit;

/** A malformed .npy or safetensors file, or a JSON document without the members it needs. */
final class FormatError extends Exception {
    FormatError(String message) {
        super(message);
    }
}
