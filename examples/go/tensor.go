package main

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
)

// DType is an element type weightinit writes.
type DType int

const (
	F32 DType = iota
	F64
	F16
	BF16
)

var dtypes = []struct {
	code, requestName string
	itemsize          int
}{{"F32", "float32", 4}, {"F64", "float64", 8}, {"F16", "float16", 2}, {"BF16", "bfloat16", 2}}

// Code is the safetensors code: F32, F64, F16, BF16.
func (d DType) Code() string { return dtypes[d].code }

// Itemsize is the width of one element in bytes.
func (d DType) Itemsize() int { return dtypes[d].itemsize }

// dtypeOf finds a dtype by its safetensors code or its request name (float32, ...).
func dtypeOf(name string) (DType, bool) {
	for i, d := range dtypes {
		if d.code == name || d.requestName == name {
			return DType(i), true
		}
	}
	return 0, false
}

// Tensor is a decoded tensor: its stored little-endian C-order bytes.
type Tensor struct {
	Name  string
	DType DType
	Shape []uint64
	Data  []byte
}

// Len is the number of elements.
func (t *Tensor) Len() int { return len(t.Data) / t.DType.Itemsize() }

// Bits is stored element i as an unsigned integer: its bit pattern.
func (t *Tensor) Bits(i int) uint64 {
	n := t.DType.Itemsize()
	var b [8]byte
	copy(b[:], t.Data[i*n:(i+1)*n])
	return binary.LittleEndian.Uint64(b[:])
}

// Value is element i widened to a float64: exact, every dtype here fits a float64.
func (t *Tensor) Value(i int) float64 {
	b := t.Bits(i)
	switch t.DType {
	case F64:
		return math.Float64frombits(b)
	case F32:
		return float64(math.Float32frombits(uint32(b)))
	case F16:
		return float64(halfToFloat32(uint16(b)))
	default:
		return float64(bfloat16ToFloat32(uint16(b)))
	}
}

// halfToFloat32 decodes IEEE binary16 exactly. sign | exponent (5 bits, bias 15) | fraction (10
// bits): exponent 0 is zero or subnormal, fraction * 2^-24; 31 is infinity or NaN; otherwise
// 1.fraction * 2^(exponent-15), which is float32's exponent + 112 with the fraction shifted.
func halfToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h & 0x3ff)
	switch exp {
	case 0:
		magnitude := float32(frac) * 0x1p-24 // an integer below 2^10 times a power of two: exact
		return math.Float32frombits(math.Float32bits(magnitude) | sign)
	case 31:
		return math.Float32frombits(sign | 0x7f800000 | frac<<13)
	}
	return math.Float32frombits(sign | (exp+112)<<23 | frac<<13)
}

// bfloat16ToFloat32: bfloat16 is the upper half of a float32.
func bfloat16ToFloat32(b uint16) float32 { return math.Float32frombits(uint32(b) << 16) }

// Display is element i as the shortest text that reads back to it (float64 for F64, else float32).
func (t *Tensor) Display(i int) string {
	if t.DType == F64 {
		return strconv.FormatFloat(t.Value(i), 'g', -1, 64)
	}
	return strconv.FormatFloat(t.Value(i), 'g', -1, 32)
}

// SHA256 is the hex sha256 of the stored bytes (what the JSON report states).
func (t *Tensor) SHA256() string {
	sum := sha256.Sum256(t.Data)
	return hex.EncodeToString(sum[:])
}

// ShapeText is "[2, 3]".
func (t *Tensor) ShapeText() string { return "[" + strings.Join(t.dims(), ", ") + "]" }

func (t *Tensor) dims() []string {
	dims := make([]string, len(t.Shape))
	for i, d := range t.Shape {
		dims[i] = strconv.FormatUint(d, 10)
	}
	return dims
}

// elementCount multiplies a shape's dimensions; an error when that overflows.
func elementCount(shape []uint64) (uint64, error) {
	n := uint64(1)
	for _, d := range shape {
		hi, lo := bits.Mul64(n, d)
		if hi != 0 {
			return 0, errors.New("the shape overflows")
		}
		n = lo
	}
	return n, nil
}

// byteCount is the byte length a shape of dtype d needs.
func byteCount(shape []uint64, d DType) (uint64, error) {
	n, err := elementCount(shape)
	if err != nil {
		return 0, err
	}
	hi, lo := bits.Mul64(n, uint64(d.Itemsize()))
	if hi != 0 {
		return 0, errors.New("the shape overflows")
	}
	return lo, nil
}

// DumpJSON is {name, dtype, shape, sha256, bits, f64_bits}: the dump tests/clients/engine.py compares.
func (t *Tensor) DumpJSON() string {
	name, _ := json.Marshal(t.Name) // a string always marshals
	var s strings.Builder
	fmt.Fprintf(&s, `{"name":%s,"dtype":"%s","shape":[%s],"sha256":"%s","bits":[`, name, t.DType.Code(),
		strings.Join(t.dims(), ","), t.SHA256())
	width := 2 * t.DType.Itemsize()
	for i := 0; i < t.Len(); i++ {
		if i > 0 {
			s.WriteByte(',')
		}
		fmt.Fprintf(&s, `"%0*x"`, width, t.Bits(i))
	}
	s.WriteString(`],"f64_bits":[`)
	for i := 0; i < t.Len(); i++ {
		if i > 0 {
			s.WriteByte(',')
		}
		fmt.Fprintf(&s, `"%016x"`, math.Float64bits(t.Value(i)))
	}
	s.WriteString("]}")
	return s.String()
}
