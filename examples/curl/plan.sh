#!/usr/bin/env bash
# POST /v1/plan: the theory of every tensor without drawing values (fast, no element limit).
#   usage: plan.sh [REQUEST.json]
source "$(dirname "$0")/common.sh"
req="${1:-$HERE/request.json}"
post /v1/plan application/json "$req" "$OUT/plan.json"
jq -r '"\(.totals.tensors) tensors, \(.totals.parameters) parameters; bytes: npz \(.totals.bytes.npz), safetensors \(.totals.bytes.safetensors)",
       (.tensors[] | "  \(.name) \(.shape) \(.scheme.name) (\(.scheme.chosen_by)) \(.distribution) fan_in \(.fan_in) fan_out \(.fan_out) std \(.std)"
                    + (if (.warnings | length) > 0 then "  warnings: \([.warnings[].code] | join(", "))" else "" end))' \
  "$OUT/plan.json"
