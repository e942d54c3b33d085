#!/bin/sh
# processCcd.sh INPUT.csv OUTDIR ZEROPOINT [FIELDS]
# Calibrates detections: writes OUTDIR/output.csv (one row per detection) and
# OUTDIR/summary.csv (one row per field). FIELDS: e.g. "1,2"; default all.
set -eu
[ $# -ge 3 ] || { echo "usage: processCcd.sh INPUT.csv OUTDIR ZEROPOINT [FIELDS]" >&2; exit 2; }
input=$1 outdir=$2 zeropoint=$3 fields=${4:-}
: "${AFW_DIR:?processCcd.sh: afw is not set up (run: setup pipe_tasks)}"
: "${PIPE_TASKS_DIR:?processCcd.sh: pipe_tasks is not set up (run: setup pipe_tasks)}"
[ -r "$input" ] || { echo "processCcd.sh: cannot read $input" >&2; exit 1; }
mkdir -p "$outdir"
rm -f "$outdir/output.csv" "$outdir/summary.csv"
awk -v zeropoint="$zeropoint" -v snr_min="${SNR_MIN:-5}" -v fields="$fields" \
    -v out="$outdir/output.csv" -v summary="$outdir/summary.csv" \
    -f "$AFW_DIR/lib/mathlib.awk" -f "$PIPE_TASKS_DIR/lib/processCcd.awk" "$input"
