package weightinit;

/** The element types weightinit writes, with their safetensors codes, request names and widths. */
enum DType {
    F32("float32", 4), F64("float64", 8), F16("float16", 2), BF16("bfloat16", 2);

    /** The request's and the JSON report's name: {@code float32}, ... */
    final String requestName;
    final int itemsize;

    DType(String requestName, int itemsize) {
        this.requestName = requestName;
        this.itemsize = itemsize;
    }

    /** The safetensors code ({@code F32}, ...), or null for any other. */
    static DType fromCode(String code) {
        for (DType d : values()) {
            if (d.name().equals(code)) {
                return d;
            }
        }
        return null;
    }

    /** The request name ({@code float32}, ...), or null for any other. */
    static DType fromRequestName(String name) {
        for (DType d : values()) {
            if (d.requestName.equals(name)) {
                return d;
            }
        }
        return null;
    }
}
