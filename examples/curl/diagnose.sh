#!/usr/bin/env bash
# POST /v1/diagnose: draw each scheme's weights, push a probe batch forward and a gradient back,
# and get a verdict per scheme (healthy, vanishing, exploding, saturated or symmetric).
#   usage: diagnose.sh [DIAGNOSE-REQUEST.json]   (a request document plus "schemes" and "batch")
source "$(dirname "$0")/common.sh"
req="${1:-$HERE/diagnose.json}"
post /v1/diagnose application/json "$req" "$OUT/diagnose.json"
jq -r '.results[] | "\(.scheme | if type == "object" then (.name + " " + (del(.name) | tostring)) else . end): \(.verdict)"
                    + (if .first_bad_layer then " from layer \(.first_bad_layer)" else "" end) + "\n    \(.explanation)"' \
  "$OUT/diagnose.json"
