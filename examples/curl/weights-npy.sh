#!/usr/bin/env bash
# One tensor as .npy (Accept: application/x-npy), checked against the sha256 the JSON response
# reports for it.   usage: weights-npy.sh [REQUEST.json] [TENSOR-NAME]
# A .npy holds one tensor, so the request is narrowed with "tensors": [NAME].
source "$(dirname "$0")/common.sh"
req="${1:-$HERE/request.json}"
name="${2:-$(jq -r '.architecture.layers[0].name + ".weight"' "$req")}"
jq --arg t "$name" '. + {tensors: [$t]} | del(.format)' "$req" >"$OUT/$name.request.json"
post /v1/weights application/x-npy "$OUT/$name.request.json" "$OUT/$name.npy"
post /v1/weights application/json "$OUT/$name.request.json" "$OUT/$name.json"

# .npy 1.0: 6-byte magic, 2-byte version, u16 little-endian header length, the header, the data.
hlen=$(od -An -tu2 -j8 -N2 --endian=little "$OUT/$name.npy" | tr -d ' ')
echo "$OUT/$name.npy: $(head -c $((10 + hlen)) "$OUT/$name.npy" | tail -c +11 | tr -s ' ')"
got=$(tail -c +$((10 + hlen + 1)) "$OUT/$name.npy" | sha256sum | cut -d' ' -f1)
check "$name" "$got" "$(jq -r '.tensors[0].sha256' "$OUT/$name.json")"
