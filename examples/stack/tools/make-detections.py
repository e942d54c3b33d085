#!/usr/bin/env python3
"""Writes the demo's synthetic input table (obs_sdss/data/detections.csv).

Run once; its output is committed. Seeded, so re-running it gives the same
bytes. 4 fields x 30 detections: mostly clean sources, plus a few flagged,
faint (low S/N) and below-sky (negative net counts) ones so every branch of
the processing is exercised.
"""
import random

FIELDS = {  # field: (ra centre, dec centre, gain e-/ADU)
    1: (150.1200, 2.2050, 4.72),
    2: (150.4700, 2.3120, 4.60),
    3: (185.7300, 15.8240, 4.86),
    4: (210.9100, 54.3480, 4.75),
}
EXPTIME = 53.907456  # s, the SDSS drift-scan exposure time
PER_FIELD = 30


def main():
    rng = random.Random(20160205)
    print("id,field,ra,dec,flux_raw,background,exptime,gain,flags")
    ident = 1000
    for field, (ra0, dec0, gain) in FIELDS.items():
        for i in range(PER_FIELD):
            ident += 1
            ra = ra0 + rng.uniform(-0.05, 0.05)
            dec = dec0 + rng.uniform(-0.05, 0.05)
            background = round(rng.uniform(800.0, 3500.0), 2)
            kind = i % 10
            if kind == 7:            # fainter than the sky estimate
                net = -rng.uniform(5.0, 60.0)
            elif kind in (3, 8):     # faint: S/N below 5
                net = rng.uniform(20.0, 200.0)
            else:                    # ordinary star or galaxy
                net = 10 ** rng.uniform(3.0, 5.7)
            flux_raw = round(background + net, 3)
            flags = 0
            if kind == 5 and field % 2 == 1:
                flags = 1            # saturated
            elif kind == 9 and field >= 3:
                flags = 4            # near the CCD edge
            print(f"{ident},{field},{ra:.7f},{dec:.7f},{flux_raw:.3f},{background:.2f},"
                  f"{EXPTIME},{gain},{flags}")


if __name__ == "__main__":
    main()
