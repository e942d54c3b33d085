#!/usr/bin/env python3
"""Prints the table the stack demo must produce, computed independently of its
awk code: straight from the formulas in examples/stack/README.md, with
Python's math library, from the same input and calibration files.

  make-expected.py [--small] [--summary]

--small: fields 1 and 2 only (what `demo.sh --small` processes).
--summary: the per-field table (summary.csv) instead of the per-detection one.
"""
import argparse
import csv
import math
import pathlib
import sys

OBS_SDSS = pathlib.Path(__file__).resolve().parent.parent / "files" / "distrib" / "obs_sdss"


def read_conf(path):
    conf = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            conf[key] = float(value)
    return conf


def calibrate(row, zeropoint, snr_min):
    flux_raw, background = float(row["flux_raw"]), float(row["background"])
    exptime, gain, flags = float(row["exptime"]), float(row["gain"]), int(row["flags"])
    net = flux_raw - background
    net_err = math.sqrt(flux_raw / gain)
    snr = net / net_err if net_err > 0 else 0.0
    nmgy_per_rate = 10 ** (-0.4 * (zeropoint - 22.5))
    out = {
        "id": row["id"], "field": row["field"], "ra": row["ra"], "dec": row["dec"],
        "flux": net / exptime * nmgy_per_rate, "flux_err": net_err / exptime * nmgy_per_rate,
        "snr": snr, "mag": None, "mag_err": None, "flags": flags,
    }
    if net > 0:
        out["mag"] = zeropoint - 2.5 * math.log10(net / exptime)
        out["mag_err"] = 2.5 / math.log(10) / snr
    if net <= 0:
        out["status"] = "negative"
    elif flags != 0:
        out["status"] = "flagged"
    elif snr < snr_min:
        out["status"] = "low_snr"
    else:
        out["status"] = "ok"
    return out


def fmt(x):
    return "" if x is None else "%.12g" % x


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--summary", action="store_true")
    args = parser.parse_args()

    conf = read_conf(OBS_SDSS / "config" / "processCcd.conf")
    with open(OBS_SDSS / "data" / "detections.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    if args.small:
        rows = [r for r in rows if r["field"] in ("1", "2")]
    results = [calibrate(r, conf["ZEROPOINT"], conf["SNR_MIN"]) for r in rows]

    out = csv.writer(sys.stdout, lineterminator="\n")
    if not args.summary:
        out.writerow(["id", "field", "ra", "dec", "flux", "flux_err", "snr", "mag", "mag_err",
                      "flags", "status"])
        for r in results:
            out.writerow([r["id"], r["field"], r["ra"], r["dec"], fmt(r["flux"]),
                          fmt(r["flux_err"]), fmt(r["snr"]), fmt(r["mag"]), fmt(r["mag_err"]),
                          r["flags"], r["status"]])
        return
    out.writerow(["field", "n_detections", "n_ok", "ra_centroid", "dec_centroid", "mean_mag",
                  "total_flux"])
    for field in dict.fromkeys(r["field"] for r in results):  # first-seen order
        in_field = [r for r in results if r["field"] == field]
        ok = [r for r in in_field if r["status"] == "ok"]
        if not ok:
            out.writerow([field, len(in_field), 0, "", "", "", ""])
            continue
        total = sum(r["flux"] for r in ok)
        out.writerow([field, len(in_field), len(ok),
                      fmt(sum(r["flux"] * float(r["ra"]) for r in ok) / total),
                      fmt(sum(r["flux"] * float(r["dec"]) for r in ok) / total),
                      fmt(sum(r["mag"] for r in ok) / len(ok)), fmt(total)])


if __name__ == "__main__":
    main()
