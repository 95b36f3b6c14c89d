package main

// safetensors reader.
//
//	offset 0    u64 little-endian N
//	offset 8    N bytes of UTF-8 JSON: {"__metadata__": {str: str}, name: {"dtype", "shape",
//	            "data_offsets": [begin, end]}, ...}
//	offset 8+N  the data: each tensor's little-endian C-order bytes at [begin, end) relative to
//	            here; together they cover the data with no gaps or overlaps.

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
	"unicode/utf8"
)

const maxHeader = 100_000_000

// SafeTensors is a decoded file: its metadata and its tensors in data order.
type SafeTensors struct {
	Metadata map[string]string
	Tensors  []*Tensor
}

type entry struct {
	Dtype       string   `json:"dtype"`
	Shape       []uint64 `json:"shape"`
	DataOffsets []uint64 `json:"data_offsets"`
}

func readSafetensors(b []byte) (*SafeTensors, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("not a safetensors file (shorter than 8 bytes)")
	}
	n := binary.LittleEndian.Uint64(b[:8])
	if n > uint64(len(b)-8) || n > maxHeader {
		return nil, fmt.Errorf("header length %d does not fit the file", n)
	}
	header := b[8 : 8+n]
	if !utf8.Valid(header) {
		return nil, fmt.Errorf("the header is not UTF-8")
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(header, &members); err != nil || members == nil { // `null` decodes to a nil map
		return nil, fmt.Errorf("the header is not a JSON object")
	}
	data := b[8+n:]
	st := &SafeTensors{Metadata: map[string]string{}}
	type placed struct {
		name string
		e    entry
		d    DType
	}
	var entries []placed
	for name, raw := range members {
		if name == "__metadata__" {
			if err := json.Unmarshal(raw, &st.Metadata); err != nil {
				return nil, fmt.Errorf("__metadata__ must map strings to strings: %v", err)
			}
			continue
		}
		var e entry
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, fmt.Errorf("tensor %q: %v", name, err)
		}
		d, ok := dtypeOf(e.Dtype)
		if !ok || d.Code() != e.Dtype {
			return nil, fmt.Errorf("tensor %q: unsupported dtype %q", name, e.Dtype)
		}
		if e.Shape == nil || len(e.DataOffsets) != 2 || e.DataOffsets[0] > e.DataOffsets[1] {
			return nil, fmt.Errorf("tensor %q: bad shape %v or data_offsets %v", name, e.Shape, e.DataOffsets)
		}
		want, err := byteCount(e.Shape, d)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %v", name, err)
		}
		if have := e.DataOffsets[1] - e.DataOffsets[0]; have != want {
			return nil, fmt.Errorf("tensor %q: %d bytes for shape %v of %s", name, have, e.Shape, e.Dtype)
		}
		entries = append(entries, placed{name, e, d})
	}
	sort.Slice(entries, func(i, j int) bool {
		a, b := entries[i].e.DataOffsets, entries[j].e.DataOffsets
		if a[0] != b[0] || a[1] != b[1] {
			return a[0] < b[0] || (a[0] == b[0] && a[1] < b[1])
		}
		return entries[i].name < entries[j].name // empty tensors may share an offset: a stable order
	})
	expected := uint64(0)
	for _, p := range entries {
		begin, end := p.e.DataOffsets[0], p.e.DataOffsets[1]
		if begin != expected {
			return nil, fmt.Errorf("tensor %q starts at %d, expected %d (gap or overlap)", p.name, begin, expected)
		}
		if end > uint64(len(data)) {
			return nil, fmt.Errorf("tensor %q ends at %d, past the data (%d bytes)", p.name, end, len(data))
		}
		st.Tensors = append(st.Tensors, &Tensor{Name: p.name, DType: p.d, Shape: p.e.Shape, Data: data[begin:end]})
		expected = end
	}
	if expected != uint64(len(data)) {
		return nil, fmt.Errorf("%d bytes after the last tensor", uint64(len(data))-expected)
	}
	return st, nil
}
