package main

// NumPy .npy reader (format versions 1.0, 2.0 and 3.0; little-endian floats, C order).
//
//	offset 0  "\x93NUMPY", then the major and minor version bytes
//	offset 8  the header length: u16 LE (1.0) or u32 LE (2.0, 3.0)
//	then      a Python dict literal: {'descr': '<f4', 'fortran_order': False, 'shape': (m, n), }
//	then      the raw data
//
// weightinit stores bfloat16 tensors as '<u2' (their bit patterns), so '<u2' reads as BF16.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

var npyMagic = []byte("\x93NUMPY")

var (
	npyDescr   = regexp.MustCompile(`['"]descr['"]\s*:\s*['"]([^'"]*)['"]`)
	npyFortran = regexp.MustCompile(`['"]fortran_order['"]\s*:\s*(True|False)`)
	npyShape   = regexp.MustCompile(`['"]shape['"]\s*:\s*\(([^)]*)\)`)
)

// readNpy decodes a .npy file holding the tensor `name`.
func readNpy(name string, b []byte) (*Tensor, error) {
	if len(b) < 10 || !bytes.HasPrefix(b, npyMagic) {
		return nil, fmt.Errorf("not a .npy file (bad magic)")
	}
	var headerLength uint64
	var start int
	switch b[6] {
	case 1:
		headerLength, start = uint64(binary.LittleEndian.Uint16(b[8:10])), 10
	case 2, 3:
		if len(b) < 12 {
			return nil, fmt.Errorf("truncated .npy header")
		}
		headerLength, start = uint64(binary.LittleEndian.Uint32(b[8:12])), 12
	default:
		return nil, fmt.Errorf("unsupported .npy version %d", b[6])
	}
	if headerLength > uint64(len(b)-start) {
		return nil, fmt.Errorf("truncated .npy header")
	}
	dataStart := start + int(headerLength)
	header := string(b[start:dataStart])
	find := func(re *regexp.Regexp, key string) (string, error) {
		m := re.FindStringSubmatch(header)
		if m == nil {
			return "", fmt.Errorf("no valid '%s' in the .npy header", key)
		}
		return m[1], nil
	}
	descr, err := find(npyDescr, "descr")
	if err != nil {
		return nil, err
	}
	dtypes := map[string]DType{"<f4": F32, "<f8": F64, "<f2": F16, "<u2": BF16} // <u2: bfloat16 bit patterns
	dtype, ok := dtypes[descr]
	if !ok {
		return nil, fmt.Errorf("unsupported .npy dtype %s", descr)
	}
	fortran, err := find(npyFortran, "fortran_order")
	if err != nil {
		return nil, err
	}
	if fortran != "False" {
		return nil, fmt.Errorf("Fortran-order .npy files are not supported")
	}
	shapeText, err := find(npyShape, "shape")
	if err != nil {
		return nil, err
	}
	shape := []uint64{}
	for _, part := range strings.Split(shapeText, ",") {
		if d := strings.TrimSpace(part); d != "" {
			n, err := strconv.ParseUint(d, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("bad .npy dimension %q", d)
			}
			shape = append(shape, n)
		}
	}
	want, err := byteCount(shape, dtype)
	if err != nil {
		return nil, fmt.Errorf(".npy: %v", err)
	}
	if have := uint64(len(b) - dataStart); have != want {
		return nil, fmt.Errorf("the .npy data has %d bytes, its shape needs %d", have, want)
	}
	return &Tensor{Name: name, DType: dtype, Shape: shape, Data: b[dataStart:]}, nil
}
