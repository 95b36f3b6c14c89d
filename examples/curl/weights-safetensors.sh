#!/usr/bin/env bash
# Every tensor as safetensors (Accept: application/vnd.safetensors); each tensor's bytes are cut
# out with the header's data_offsets and checked against the sha256 of the JSON response.
#   usage: weights-safetensors.sh [REQUEST.json]
source "$(dirname "$0")/common.sh"
req="${1:-$HERE/request.json}"
jq 'del(.format)' "$req" >"$OUT/request.json"
post /v1/weights application/vnd.safetensors "$OUT/request.json" "$OUT/weights.safetensors"
post /v1/weights application/json "$OUT/request.json" "$OUT/weights.json"

# safetensors: u64 little-endian header length N, N bytes of JSON header, then the data.
f="$OUT/weights.safetensors"
n=$(od -An -tu8 -N8 --endian=little "$f" | tr -d ' ')
head -c $((8 + n)) "$f" | tail -c +9 >"$OUT/header.json"
echo "$f: header $n bytes; metadata: $(jq -r '.__metadata__.weightinit | fromjson | "seed \(.seed), engine \(.engine.name) \(.engine.version), numpy \(.engine.numpy)"' "$OUT/header.json")"
status=0
while read -r name dtype shape begin end; do
  echo "  $name $dtype $shape bytes [$begin, $end)"
  got=$(dd if="$f" iflag=skip_bytes,count_bytes bs=64K skip=$((8 + n + begin)) count=$((end - begin)) status=none |
        sha256sum | cut -d' ' -f1)
  want=$(jq -r --arg t "$name" '.tensors[] | select(.name == $t) | .sha256' "$OUT/weights.json")
  check "$name" "$got" "$want" || status=1
done < <(jq -r 'del(.__metadata__) | to_entries | sort_by(.value.data_offsets[0])[]
                | "\(.key) \(.value.dtype) \(.value.shape | map(tostring) | join("x")) \(.value.data_offsets[0]) \(.value.data_offsets[1])"' \
           "$OUT/header.json")
exit $status
