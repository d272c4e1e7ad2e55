# The sampling defaults written into the shipped model's metadata by scripts/train.sh (read by
# `iflame sample` for every option its command line leaves out). Chosen by 1-NNA against the
# validation split (docs/quality.md): on the interim weights (step 2,700) the reference's own
# settings beat cooler, strictly ordered sampling; the sweep runs again on the finished model.
SAMPLING_DEFAULTS=(
  sample.temperature=1.0
  sample.top-p=0.95
  sample.top-k=50
  sample.max-faces=800
  sample.order-constraints=false
  sample.distinct-faces=false
  sample.no-repeat-faces=false
)
