# Throughput bars for perf/run.sh. Called as
#   gnuplot -e "dat='x.dat'; out='x.png'; ylab='events/s'; ttl='...'; div=1e6; unit='M'" throughput.gp
# dat: one row per bar, "label" value. Bars are labelled value/div followed by unit.
# Log scale: pandas and the parse limit are two orders of magnitude apart.
set terminal pngcairo size 1100,560 font "sans,10"
set output out
set title ttl
set ylabel ylab
set logscale y
set grid ytics
set style fill solid 0.85 border -1
set boxwidth 0.7
set xtics rotate by -20 left nomirror
set key off
stats dat using 2 nooutput
set xrange [-0.6:STATS_records - 0.4]
set yrange [STATS_min / 3:STATS_max * 3]
plot dat using 0:2:xtic(1) with boxes lc rgb "#3b6ea8", \
     '' using 0:2:(sprintf("%.3g %s", $2 / div, unit)) with labels offset 0,0.8 notitle
