# The sampling defaults written into the shipped model's metadata by scripts/train.sh (read by
# `iflame sample` for every option its command line leaves out). Chosen by 1-NNA against the
# validation split (docs/quality.md, "Sampling settings tried"): on the shipped weights (step
# 4,950) nucleus sampling at top-p 0.9 without a top-k scored best, ahead of the reference's
# settings (top-p 0.95, top-k 50), cooler and order-constrained sampling.
SAMPLING_DEFAULTS=(
  sample.temperature=1.0
  sample.top-p=0.9
  sample.top-k=0
  sample.max-faces=800
  sample.order-constraints=false
  sample.distinct-faces=false
  sample.no-repeat-faces=false
  sample.no-degenerate-faces=false
  sample.full-row-starts=false
)
