package main

import (
	"encoding/binary"
	"math"
	"testing"
)

func TestHalfFloatsKnownValues(t *testing.T) {
	known := map[uint16]float32{0x3c00: 1, 0xc000: -2, 0x7bff: 65504, 0x0001: 0x1p-24, 0x03ff: 1023 * 0x1p-24,
		0x0400: 0x1p-14, 0x2e66: 0.099975586, 0x7c00: float32(math.Inf(1)), 0xfc00: float32(math.Inf(-1))}
	for h, want := range known {
		if got := halfToFloat32(h); got != want {
			t.Errorf("half %04x: %v, want %v", h, got, want)
		}
	}
	if got := math.Float32bits(halfToFloat32(0x8000)); got != 0x80000000 {
		t.Errorf("half -0: bits %08x", got)
	}
	if !math.IsNaN(float64(halfToFloat32(0x7e00))) {
		t.Error("half 7e00 is not NaN")
	}
}

// Every finite float16 pattern against (-1)^s * (e == 0 ? f * 2^-24 : (1024 + f) * 2^(e - 25)).
func TestHalfFloatsAllPatterns(t *testing.T) {
	bad := 0
	for h := 0; h < 0x10000; h++ {
		e, f := (h>>10)&0x1f, h&0x3ff
		if e == 31 {
			continue
		}
		want := math.Ldexp(float64(f), -24)
		if e != 0 {
			want = math.Ldexp(float64(1024+f), e-25)
		}
		if h&0x8000 != 0 {
			want = -want
		}
		if math.Float64bits(float64(halfToFloat32(uint16(h)))) != math.Float64bits(want) {
			bad++
		}
	}
	if bad != 0 {
		t.Errorf("%d finite float16 patterns decode wrongly", bad)
	}
}

func TestBfloat16(t *testing.T) {
	if bfloat16ToFloat32(0x3f80) != 1 || bfloat16ToFloat32(0xbfc0) != -1.5 {
		t.Error("bfloat16 1 or -1.5")
	}
	if math.Float32bits(bfloat16ToFloat32(0x0001)) != 0x00010000 {
		t.Error("bfloat16 subnormal")
	}
}

func TestTensorValuesAndDump(t *testing.T) {
	data := make([]byte, 16)
	binary.LittleEndian.PutUint64(data, math.Float64bits(-0.5))
	binary.LittleEndian.PutUint64(data[8:], math.Float64bits(3))
	d := &Tensor{Name: "d", DType: F64, Shape: []uint64{2}, Data: data}
	if d.Len() != 2 || d.Value(0) != -0.5 || d.Value(1) != 3 {
		t.Error("F64 values")
	}
	h := &Tensor{Name: "h", DType: F16, Shape: []uint64{1, 2}, Data: []byte{0x01, 0x00, 0x00, 0xbc}}
	if h.Bits(1) != 0xbc00 || h.Value(1) != -1 {
		t.Error("F16 bits are little-endian")
	}
	want := `{"name":"h","dtype":"F16","shape":[1,2],"sha256":"` + h.SHA256() +
		`","bits":["0001","bc00"],"f64_bits":["3e70000000000000","bff0000000000000"]}`
	if got := h.DumpJSON(); got != want {
		t.Errorf("dump %s", got)
	}
	s := &Tensor{Name: "s", DType: F32, Shape: []uint64{}, Data: make([]byte, 4)}
	if s.ShapeText() != "[]" || s.DumpJSON()[:40] != `{"name":"s","dtype":"F32","shape":[],"sh` {
		t.Errorf("scalar: %s %s", s.ShapeText(), s.DumpJSON())
	}
	abc := &Tensor{DType: BF16, Data: []byte("abc")}
	if abc.SHA256() != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Error("sha256 of abc")
	}
	if _, err := byteCount([]uint64{1 << 62, 4}, F32); err == nil {
		t.Error("an overflowing shape was accepted")
	}
}
