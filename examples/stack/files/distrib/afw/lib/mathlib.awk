# mathlib.awk: sqrt, ln, log10 and exp with + - * / only.
# Why: busybox awk is often built without libm ("Math support is not compiled
# in": no sqrt, log, exp, not even ^), and the demo must run there.
# Each is accurate to a few units in the last place of a double.

function afw_ln2() { return 0.693147180559945309417 }
function afw_ln10() { return 2.30258509299404568402 }

# Newton's iteration from a starting guess scaled into range; x >= 0.
function afw_sqrt(x,    y, prev, i) {
    if (x < 0) { afw_die("afw: sqrt of a negative number: " x) }
    if (x == 0) return 0
    y = (x > 1) ? x : 1
    for (i = 0; i < 2000; i++) {
        prev = y
        y = 0.5 * (y + x / y)
        if (y >= prev) break    # converged (from above, Newton is monotone)
    }
    return prev < y ? prev : y
}

# ln x = k ln2 + 2 atanh((m-1)/(m+1)), with x = m 2^k and m in [0.75, 1.5).
function afw_ln(x,    k, m, t, t2, term, sum, n) {
    if (x <= 0) { afw_die("afw: log of a non-positive number: " x) }
    k = 0; m = x
    while (m >= 1.5) { m /= 2; k++ }
    while (m < 0.75) { m *= 2; k-- }
    t = (m - 1) / (m + 1); t2 = t * t
    term = t; sum = 0
    for (n = 1; n < 200; n += 2) {
        if (sum + term / n == sum) break
        sum += term / n
        term *= t2
    }
    return k * afw_ln2() + 2 * sum
}

function afw_log10(x) { return afw_ln(x) / afw_ln10() }

# exp x = 2^k e^r, with r = x - k ln2 in [-ln2/2, ln2/2]; Taylor series for e^r.
function afw_exp(x,    k, r, term, sum, n, p) {
    k = int(x / afw_ln2() + (x < 0 ? -0.5 : 0.5))
    r = x - k * afw_ln2()
    term = 1; sum = 1
    for (n = 1; n < 60; n++) {
        term *= r / n
        if (sum + term == sum) break
        sum += term
    }
    p = 1
    if (k > 0) { for (n = 0; n < k; n++) p *= 2 } else { for (n = 0; n < -k; n++) p /= 2 }
    return sum * p
}

function afw_pow10(x) { return afw_exp(x * afw_ln10()) }

function afw_die(msg) {
    # Through sh: a tiny guest's /dev may have no /dev/stderr link.
    print msg | "cat >&2"
    close("cat >&2")
    afw_failed = 1
    exit 1
}
