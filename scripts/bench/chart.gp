# CPU µs per request by scenario, one bar per proxy: one panel per scenario, each with its own
# linear y scale (a full handshake costs ~10-50x a kept-alive request, so one shared axis would
# flatten the keep-alive bars). Run by scripts/bench.sh:
#   gnuplot -e "datafile='chart.dat'; outfile='x.png'; scenarios='get1k ...'; proxies='ringway nginx haproxy'" chart.gp
# chart.dat: one block per scenario (blocks separated by two blank lines), rows
# "proxy cpu_us_per_request color_index".

n = words(scenarios)
w = 330 * n + 60
set terminal pngcairo size w, 480 font "DejaVu Sans,11" noenhanced
set output outfile

set style fill solid 0.85 border -1
set boxwidth 0.7
set grid ytics lc rgb "#dddddd"
set yrange [0:*]
set offsets 0, 0, graph 0.12, 0
set xtics nomirror scale 0
set ytics nomirror
set border 3
set linetype 1 lc rgb "#d1495b"
set linetype 2 lc rgb "#00798c"
set linetype 3 lc rgb "#edae49"
set linetype 4 lc rgb "#666666"
set linetype 5 lc rgb "#aaaaaa"
unset key

set multiplot layout 1, n title "Proxy CPU time per request (µs, median over rounds; lower is better)" font ",13"
do for [i = 1:n] {
    set title word(scenarios, i) font ",12"
    if (i == 1) { set ylabel "CPU µs / request" } else { unset ylabel }
    plot datafile index (i - 1) using 0:2:3:xtic(1) with boxes lc variable, \
         '' index (i - 1) using 0:2:(sprintf("%.1f", $2)) with labels offset 0, 0.8 font ",10"
}
unset multiplot
