# Shared by the perf scripts (source it): the job every run computes, as the
# [schema], [window] and [[aggregates]] sections of a pipeline file: sales
# events summed per product in tumbling windows (sum quantity, sum revenue,
# count). Usage: sales_job_toml [SIZE] [WATERMARK_DELAY]  (defaults 5m, 10m)
sales_job_toml() {
  cat <<TOML
[schema]
key = ["product_id"]
time = { field = "timestamp", format = "rfc3339" }
fields = { quantity = "int64", revenue = "float64", customer_id = "string" }
[window]
size = "${1:-5m}"
watermark_delay = "${2:-10m}"
[[aggregates]]
name = "total_quantity"
fn = "sum"
field = "quantity"
[[aggregates]]
name = "total_revenue"
fn = "sum"
field = "revenue"
[[aggregates]]
name = "events"
fn = "count"
TOML
}
