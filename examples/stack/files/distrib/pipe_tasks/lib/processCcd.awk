# processCcd.awk: calibrates a table of detections (see the README of the
# example for the formulas). Needs afw's mathlib.awk loaded first.
# Variables (-v): zeropoint, snr_min, fields ("1,2"; empty: all),
# out (per-detection CSV), summary (per-field CSV).
BEGIN {
    FS = ","
    HEADER = "id,field,ra,dec,flux_raw,background,exptime,gain,flags"
    NUM = "^[-+]?[0-9]+([.][0-9]*)?([eE][-+]?[0-9]+)?$"
    if (zeropoint == "" || out == "" || summary == "") fail("zeropoint, out and summary must be set")
    if (snr_min == "") snr_min = 5
    nsel = split(fields, sel_list, ",")
    for (i = 1; i <= nsel; i++) selected[sel_list[i]] = 1
    # nanomaggies per (ADU/s): 10^(-0.4 (zeropoint - 22.5))
    scale = afw_pow10(-0.4 * (zeropoint - 22.5))
    mag_err_factor = 2.5 / afw_ln10()
    print "id,field,ra,dec,flux,flux_err,snr,mag,mag_err,flags,status" > out
}
{ sub(/\r$/, "") }
NR == 1 {
    if ($0 != HEADER) fail("line 1: header is not " HEADER)
    next
}
/^[ \t]*$/ { next }
{
    if (NF != 9) fail("line " NR ": " NF " columns, expected 9")
    for (i = 1; i <= 9; i++) if ($i !~ NUM) fail("line " NR ": column " i " is not a number: '" $i "'")
    id = $1; field = $2; ra = $3 + 0; dec = $4 + 0
    flux_raw = $5 + 0; background = $6 + 0; exptime = $7 + 0; gain = $8 + 0; flags = $9 + 0
    if (nsel > 0 && !(field in selected)) next
    if (exptime <= 0 || gain <= 0) fail("line " NR ": exptime and gain must be positive")
    if (flux_raw < 0 || background < 0) fail("line " NR ": flux_raw and background must not be negative")

    net = flux_raw - background                  # ADU
    net_err = afw_sqrt(flux_raw / gain)          # Poisson noise of source + sky, in ADU
    snr = (net_err > 0) ? net / net_err : 0
    flux = net / exptime * scale                 # nanomaggies
    flux_err = net_err / exptime * scale
    if (net > 0) {
        mag = sprintf("%.12g", zeropoint - 2.5 * afw_log10(net / exptime))
        mag_err = sprintf("%.12g", mag_err_factor / snr)
    } else {
        mag = ""; mag_err = ""
    }
    if (net <= 0) status = "negative"
    else if (flags != 0) status = "flagged"
    else if (snr < snr_min) status = "low_snr"
    else status = "ok"

    printf "%s,%s,%s,%s,%.12g,%.12g,%.12g,%s,%s,%d,%s\n", \
        id, field, $3, $4, flux, flux_err, snr, mag, mag_err, flags, status > out
    rows++

    if (!(field in n)) { order[++nfields] = field; n[field] = 0; n_ok[field] = 0 }
    n[field]++
    if (status == "ok") {
        n_ok[field]++
        sum_flux[field] += flux
        sum_ra[field] += flux * ra
        sum_dec[field] += flux * dec
        sum_mag[field] += zeropoint - 2.5 * afw_log10(net / exptime)
    }
}
END {
    if (afw_failed) exit 1
    if (rows == 0) fail("no detections selected")
    print "field,n_detections,n_ok,ra_centroid,dec_centroid,mean_mag,total_flux" > summary
    for (i = 1; i <= nfields; i++) {
        f = order[i]
        if (n_ok[f] > 0)
            printf "%s,%d,%d,%.12g,%.12g,%.12g,%.12g\n", f, n[f], n_ok[f], sum_ra[f] / sum_flux[f], \
                sum_dec[f] / sum_flux[f], sum_mag[f] / n_ok[f], sum_flux[f] > summary
        else
            printf "%s,%d,0,,,,\n", f, n[f] > summary
    }
    printf "processCcd: %d detections in %d fields calibrated (zeropoint %s)\n", rows, nfields, zeropoint
}
function fail(msg) {
    afw_die("processCcd: " (FILENAME != "" ? FILENAME ": " : "") msg)
}
