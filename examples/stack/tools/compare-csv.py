#!/usr/bin/env python3
"""compare-csv.py EXPECTED ACTUAL [ABS_TOL [REL_TOL]]

Compares two CSV tables the way the pipeline's `compare` verify step does: a
numeric cell differs only when both its absolute and its relative difference
exceed the tolerances (default 1e-10); every other cell must match exactly.
Prints each difference; exit 0 when the tables agree, 1 when not.
"""
import csv
import sys


def number(cell):
    try:
        return float(cell)
    except ValueError:
        return None


def main():
    if len(sys.argv) not in (3, 4, 5):
        sys.exit(__doc__.strip().splitlines()[0])
    abs_tol = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-10
    rel_tol = float(sys.argv[4]) if len(sys.argv) > 4 else 1e-10
    with open(sys.argv[1], newline="") as f:
        expected = list(csv.reader(f))
    with open(sys.argv[2], newline="") as f:
        actual = list(csv.reader(f))
    if expected[:1] != actual[:1] or len(expected) != len(actual):
        print(f"structure differs: header {actual[:1]} vs {expected[:1]}, "
              f"{len(actual)} vs {len(expected)} lines")
        return 1
    header, bad = expected[0], 0
    for n, (erow, arow) in enumerate(zip(expected[1:], actual[1:]), start=1):
        for col, e, a in zip(header, erow, arow + [""] * (len(erow) - len(arow))):
            ne, na = number(e), number(a)
            if ne is not None and na is not None:
                diff = abs(ne - na)
                if diff > abs_tol and diff > rel_tol * max(abs(ne), abs(na)):
                    print(f"row {n} {col}: expected {e}, got {a}")
                    bad += 1
            elif e != a:
                print(f"row {n} {col}: expected '{e}', got '{a}'")
                bad += 1
    print(f"{len(expected) - 1} rows, {bad} differences")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
