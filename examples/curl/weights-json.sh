#!/usr/bin/env bash
# POST /v1/weights as JSON: every tensor's theory plus its values (nested lists, shortest
# round-trip decimals), empirical stats and sha256.   usage: weights-json.sh [REQUEST.json]
source "$(dirname "$0")/common.sh"
req="${1:-$HERE/request.json}"
post /v1/weights application/json "$req" "$OUT/weights.json"
jq -r '"seed \(.seed), numpy \(.engine.numpy), \(.totals.parameters) parameters",
       (.tensors[] | "  \(.name) \(.dtype) \(.shape) \(.distribution) std \(.std) sha256 \(.sha256[:16]) first \([.values | flatten | .[:4][]])")' \
  "$OUT/weights.json"
