#!/bin/sh
# demo.sh [--small] [--output DIR]
# The stack demo: calibrates obs_sdss's bundled detections with pipe_tasks'
# processCcd and writes DIR/output.csv and DIR/summary.csv (DIR default:
# $DEMO_OUTPUT_DIR, else /root/demo). --small: fields 1 and 2 only.
set -eu
fields= outdir=${DEMO_OUTPUT_DIR:-/root/demo}
while [ $# -gt 0 ]; do
  case $1 in
    --small) fields=1,2 ;;
    --output) [ $# -ge 2 ] || { echo "demo.sh: --output needs a directory" >&2; exit 1; }
              outdir=$2; shift ;;
    *) echo "demo.sh: unknown option '$1' (use --small, --output DIR)" >&2; exit 1 ;;
  esac
  shift
done
: "${OBS_SDSS_DIR:?demo.sh: obs_sdss is not set up (run: . \$STACK_ROOT/loadstack.sh && setup obs_sdss)}"
. "$OBS_SDSS_DIR/config/processCcd.conf"
export SNR_MIN
echo "demo: processing $OBS_SDSS_DIR/data/detections.csv${fields:+ (fields $fields)} into $outdir"
if processCcd.sh "$OBS_SDSS_DIR/data/detections.csv" "$outdir" "$ZEROPOINT" "$fields"; then
  echo "demo: wrote $outdir/output.csv and $outdir/summary.csv"
  echo "Processing completed successfully"
else
  echo "demo: processing failed" >&2
  exit 1
fi
