package main

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"
)

func npyFile(descr, shape string, data []byte) []byte {
	header := "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }"
	for (10+len(header)+1)%64 != 0 {
		header += " "
	}
	header += "\n"
	out := append([]byte("\x93NUMPY\x01\x00"), byte(len(header)), byte(len(header)>>8))
	return append(append(out, header...), data...)
}

func TestNpy(t *testing.T) {
	data := make([]byte, 0, 24)
	for _, x := range []float32{1, -2.5, 3, 0.5, 0, 7} {
		data = binary.LittleEndian.AppendUint32(data, math.Float32bits(x))
	}
	w, err := readNpy("w", npyFile("<f4", "(2, 3)", data))
	if err != nil || w.DType != F32 || w.ShapeText() != "[2, 3]" || w.Value(1) != -2.5 {
		t.Errorf("<f4 (2, 3): %v %v", w, err)
	}
	b, err := readNpy("b", npyFile("<u2", "(1,)", []byte{0x80, 0x3f}))
	if err != nil || b.DType != BF16 || b.Value(0) != 1 {
		t.Errorf("<u2 reads as bfloat16: %v %v", b, err)
	}
	s, err := readNpy("s", npyFile("<f8", "()", []byte{0, 0, 0, 0, 0, 0, 0, 0x40}))
	if err != nil || len(s.Shape) != 0 || s.Value(0) != 2 {
		t.Errorf("scalar: %v %v", s, err)
	}
	bad := map[string][]byte{
		"bad magic":       []byte("PK\x03\x04 not npy"),
		"<i4":             npyFile("<i4", "(1,)", make([]byte, 4)),
		"short data":      npyFile("<f4", "(2,)", make([]byte, 4)),
		"trailing data":   npyFile("<f4", "(1,)", make([]byte, 5)),
		"huge shape":      npyFile("<f4", "(4611686018427387904, 4)", nil),
		"negative dim":    npyFile("<f4", "(-1,)", nil),
		"Fortran order":   []byte(strings.Replace(string(npyFile("<f4", "(1,)", make([]byte, 4))), "False", "True ", 1)),
		"truncated":       npyFile("<f4", "(1,)", make([]byte, 4))[:20],
		"unknown version": append([]byte("\x93NUMPY\x09\x00"), make([]byte, 8)...),
	}
	for what, file := range bad {
		if _, err := readNpy("x", file); err == nil {
			t.Errorf(".npy %s was accepted", what)
		}
	}
}

func stFile(header string, data []byte) []byte {
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(out, header...), data...)
}

func TestSafetensors(t *testing.T) {
	header := `{"b":{"dtype":"BF16","shape":[2],"data_offsets":[8,12]},"__metadata__":{"k":"v"},` +
		`"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`
	data := binary.LittleEndian.AppendUint32(nil, math.Float32bits(1))
	data = binary.LittleEndian.AppendUint32(data, math.Float32bits(2))
	data = append(data, 0x80, 0x3f, 0xc0, 0xbf)
	st, err := readSafetensors(stFile(header, data))
	if err != nil || st.Metadata["k"] != "v" || len(st.Tensors) != 2 || st.Tensors[0].Name != "a" ||
		st.Tensors[1].Value(1) != -1.5 {
		t.Fatalf("tensors in data order: %v %v", st, err)
	}
	ok := `{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}`
	if _, err := readSafetensors(stFile(ok, make([]byte, 4))); err != nil {
		t.Errorf("F16: %v", err)
	}
	bad := map[string][]byte{
		"trailing bytes":    stFile(ok, make([]byte, 6)),
		"truncated":         stFile(ok, make([]byte, 2)),
		"gap":               stFile(strings.Replace(ok, "[0,4]", "[2,6]", 1), make([]byte, 6)),
		"size":              stFile(strings.Replace(ok, "F16", "F32", 1), make([]byte, 4)),
		"I8":                stFile(`{"a":{"dtype":"I8","shape":[2],"data_offsets":[0,2]}}`, make([]byte, 2)),
		"request name":      stFile(strings.Replace(ok, "F16", "float16", 1), make([]byte, 4)),
		"negative dim":      stFile(strings.Replace(ok, "[2]", "[-2]", 1), make([]byte, 4)),
		"no shape":          stFile(strings.Replace(ok, `"shape":[2],`, "", 1), make([]byte, 4)),
		"header length":     {1, 0, 0, 0, 0, 0, 0, 0xff},
		"short":             make([]byte, 3),
		"not an object":     stFile("[1]", nil),
		"null":              stFile("null", nil),
		"metadata not text": stFile(`{"__metadata__":{"k":1}}`, nil),
	}
	for what, file := range bad {
		if _, err := readSafetensors(file); err == nil {
			t.Errorf("safetensors %s was accepted", what)
		}
	}
}

func TestReprDigest(t *testing.T) {
	abc := []byte("abc")
	good := "sha-256=:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=:"
	cases := []struct {
		body   []byte
		header string
		want   Digest
	}{
		{abc, good, DigestMatches},
		{abc, "sha-512=:AA==:, " + good, DigestMatches},
		{[]byte("abd"), good, DigestDiffers},
		{abc, "sha-256=:not base64!:", DigestDiffers},
		{abc, "", DigestAbsent},
		{abc, "sha-512=:AA==:", DigestAbsent},
	}
	for _, c := range cases {
		if got := reprDigest(&Response{Body: c.body, ReprDigest: c.header}); got != c.want {
			t.Errorf("%q over %q: %v, want %v", c.header, c.body, got, c.want)
		}
	}
	p := `{"type":"urn:x","title":"Invalid request document","status":422,"detail":"seed: bad"}`
	if got := problem("application/problem+json", []byte(p)); got != "Invalid request document: seed: bad" {
		t.Errorf("problem: %s", got)
	}
	if got := problem("text/html", []byte("<h1>502</h1>")); got != "<h1>502</h1>" {
		t.Errorf("non-JSON error body: %s", got)
	}
}
