#!/bin/sh
# An after_publish hook: post what this run published to a webhook (a chat
# channel, a release bot) as JSON: {"text": …, "target", "run_id", "images": {"variant/layer": id}}.
# The URL comes from the environment, not the config: it is often a secret
# (export it as LCAKE_SECRET, or one of the variables lcake redacts, to keep it out of logs).
# Usage (target after_publish):
#   {"run": "docs/examples/after-publish/announce.sh", "timeout": "1m"}
# Needs jq and curl.
set -eu
url=${ANNOUNCE_WEBHOOK_URL:?set ANNOUNCE_WEBHOOK_URL to the webhook to post to}
jq '. as $d | {text: ("lcake published " + (.published | join(", ")) + " on target " + .target),
     target: .target, run_id: .run_id,
     images: ([.published[] as $k | {($k): $d.outputs[$k].id}] | add // {})}' \
   "$LCAKE_OUTPUTS" |
  curl -fsS --max-time 30 -H 'Content-Type: application/json' --data-binary @- "$url" > /dev/null
echo "announced run $LCAKE_RUN_ID"
