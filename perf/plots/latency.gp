# Latency vs load for perf/run.sh. Called as
#   gnuplot -e "dat='latency.dat'; out='latency.png'; ttl='...'" latency.gp
# dat: load_pct rate fresh_p50 fresh_p99 fresh_p999 ingest_p50 ingest_p99 ingest_p999
# (milliseconds; "n/a" is missing). Log scale: ingest is in microseconds,
# freshness in milliseconds. Pass empty=1 when nothing was measured.
set terminal pngcairo size 900,560 font "sans,10"
set output out
set title ttl
set xlabel "load (% of the maximum TCP rate at shards = 1)"
set ylabel "latency (ms)"
set logscale y
set grid
set key top left
set datafile missing "n/a"
set xrange [0:100]
set xtics 25
if (exists("empty") && empty) {
  # No latency was measured (a sluice without the metrics endpoint): say so.
  unset logscale y
  set yrange [0:1]
  set label 1 "latency: n/a (sluice has no metrics endpoint yet)" at 50,0.5 center
  plot NaN notitle
  exit
}
plot dat using 1:3 with linespoints lw 2 pt 7 lc rgb "#1f5fa8" title "freshness p50", \
     '' using 1:4 with linespoints lw 2 pt 5 lc rgb "#3b8ed8" title "freshness p99", \
     '' using 1:5 with linespoints lw 2 pt 9 lc rgb "#8fc0f0" title "freshness p99.9", \
     '' using 1:6 with linespoints lw 2 pt 7 lc rgb "#b8491e" title "ingest p50", \
     '' using 1:7 with linespoints lw 2 pt 5 lc rgb "#e07b39" title "ingest p99", \
     '' using 1:8 with linespoints lw 2 pt 9 lc rgb "#f2b27f" title "ingest p99.9"
