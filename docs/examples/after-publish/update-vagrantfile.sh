#!/bin/sh
# An after_publish hook: put the newest image IDs into a Vagrantfile and commit
# (and push) the change. Each line to keep current names its layer in a comment:
#
#   BOXES = {
#     "el7" => "old-id",   # lcake:el7/stack
#   }
#
# The quoted value after `=>` on such a line becomes the ID that `lcake outputs`
# reports for that variant/layer. Lines of layers with nothing published stay.
# Usage (target after_publish):
#   {"run": "docs/examples/after-publish/update-vagrantfile.sh /path/to/checkout", "timeout": "2m"}
# Needs jq and git; the checkout's `origin` is where the commit is pushed.
set -eu
checkout=${1:?usage: update-vagrantfile.sh CHECKOUT [FILE]}
file=${2:-Vagrantfile}
ids=$(mktemp)
trap 'rm -f "$ids" "$ids.new"' EXIT
jq -r '.outputs | to_entries[] | "\(.key)\t\(.value.id)"' "$LCAKE_OUTPUTS" > "$ids"
awk -F'\t' '
  NR == FNR { id[$1] = $2; next }
  match($0, /# lcake:[^ ]+/) {
    name = substr($0, RSTART + 8, RLENGTH - 8)
    at = index($0, "=> \"")
    if ((name in id) && at > 0) {
      rest = substr($0, at + 4)
      $0 = substr($0, 1, at + 3) id[name] substr(rest, index(rest, "\""))
    }
  }
  { print }' "$ids" "$checkout/$file" > "$ids.new"
cat "$ids.new" > "$checkout/$file"
if git -C "$checkout" diff --quiet -- "$file"; then
  echo "$file already names the current images"
  exit 0
fi
git -C "$checkout" commit -q -m "images from lcake run $LCAKE_RUN_ID (target $LCAKE_TARGET)" -- "$file"
git -C "$checkout" push -q origin HEAD
echo "$file updated and pushed: $(git -C "$checkout" rev-parse --short HEAD)"
