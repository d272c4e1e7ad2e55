# The sampling defaults written into the shipped model's metadata by scripts/train.sh (read by
# `iflame sample` for every option its command line leaves out). Chosen by 1-NNA against the
# validation split (docs/quality.md); until that study has run these are the reference's own
# defaults.
SAMPLING_DEFAULTS=(
  sample.temperature=1.0
  sample.top-p=0.95
  sample.top-k=50
  sample.max-faces=800
  sample.order-constraints=false
)
