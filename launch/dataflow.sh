#!/usr/bin/env bash
# Submit the pipeline to Google Cloud Dataflow, its model stages on GPU workers running the image
# built from launch/Dockerfile. Run from anywhere; it works from the repository root.
#
#   PROJECT=my-project REGION=us-central1 BUCKET=my-bucket \
#   IMAGE=us-central1-docker.pkg.dev/my-project/images/natural-instruct:1 \
#   INPUT='gs://my-bucket/cc100/{cc100}.txt.xz' LANGS=tel,hin PRESET=paper \
#     launch/dataflow.sh [more pipeline or Beam flags, passed through last]
#
# Required: PROJECT, REGION, BUCKET (a bucket name, no gs://), IMAGE.
# Optional:
#   LANGS     ISO 639-3 codes (default tel,hin)
#   PRESET    small or paper (default paper); demo and laptop run on this machine instead
#   INPUT     input template on a filesystem the workers read, e.g. gs://.../{cc100}.txt.xz;
#             required unless DRY_RUN=1 (the bundled sample is a path on this machine only)
#   OUTPUT    default gs://BUCKET/natural-instruct/PRESET
#   GPU_MODE  hints (default) or job, see below
#   MACHINE_TYPE, DISK_SIZE_GB  override the per-preset choices below
#   DRY_RUN=1 add Beam's --dry_run=True: the job is built and staged locally, not submitted, and
#             needs no credentials; OUTPUT then defaults to a local temporary directory, because
#             the pipeline reads OUTPUT's checkpoints before building the job
#   PYTHON    the Python with the project and its dataflow extra installed (default: .venv's)
#   MODELS    where the preset's models are: a bucket prefix they were staged to with
#             `python -m pipeline.models stage --preset PRESET --to gs://BUCKET/models` (the job
#             reads MODELS/models.yaml), or `image` for models baked into IMAGE (Dockerfile's
#             --build-arg PRESET=...); unset: hub ids, downloaded by every worker (needs HF_TOKEN
#             on the workers, which Dataflow cannot pass: gated models fail)
#
# GPU_MODE=hints: the small and paper presets put Beam resource hints on the model stages
# (translate.accelerator, qe.accelerator, llm.accelerator): Dataflow's "right fitting" then gives
# GPU workers to those stages only, and CPU workers (MACHINE_TYPE) to reading, filtering and
# dedup. Google's right-fitting guide says not to combine it with the worker_accelerator service
# option, so this mode does not pass one.
# GPU_MODE=job: every worker gets the GPUs below through
# --dataflow_service_options=worker_accelerator=...; for a configuration without accelerator hints
# (--config FILE.yaml with the stages' accelerator: null).
set -euo pipefail

usage() {
    echo "usage: PROJECT=... REGION=... BUCKET=... IMAGE=... [LANGS=tel,hin] [PRESET=paper|small]" \
        "[INPUT=gs://.../{cc100}.txt.xz] [OUTPUT=gs://...] [GPU_MODE=hints|job] [DRY_RUN=1]" \
        "launch/dataflow.sh [pipeline or Beam flags]" >&2
    exit 2
}

case "${1:-}" in -h | --help) usage ;; esac
missing=()
for name in PROJECT REGION BUCKET IMAGE; do
    [[ -n "${!name:-}" ]] || missing+=("$name")
done
if ((${#missing[@]})); then
    echo "dataflow.sh: missing ${missing[*]}" >&2
    usage
fi

cd "$(dirname "$0")/.."  # the repository root: --setup_file=./setup.py packages it

LANGS=${LANGS:-tel,hin}
PRESET=${PRESET:-paper}
GPU_MODE=${GPU_MODE:-hints}
DRY_RUN=${DRY_RUN:-0}
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi

# GPUs a worker gets in GPU_MODE=job, the machine that carries them, and a boot disk for the
# image (~15 GB) plus the models the workers download (Hugging Face cache).
case "$PRESET" in
    small)
        # NLLB-200 600M, COMET-kiwi and Llama-3.1-8B in bf16 (16 GB) each fit one L4 (24 GB);
        # L4s come only on G2 machines, g2-standard-8 has 32 GB of memory (the presets' min_ram).
        GPU_TYPE=nvidia-l4 GPU_COUNT=1 GPU_MACHINE=g2-standard-8 DISK=100
        ;;
    paper)
        # Llama-3-70B in bf16 is ~140 GB of weights: tensor parallel 8 (llm.server_args) over
        # 8 A100 40GB on a2-highgpu-8g (the GPUs of the preset's llm.accelerator hint and of the
        # dry run's prices); NLLB-200 3.3B and COMET-kiwi XL fit one of them each. Weights alone
        # are ~190 GB on disk.
        GPU_TYPE=nvidia-tesla-a100 GPU_COUNT=8 GPU_MACHINE=a2-highgpu-8g DISK=400
        ;;
    *)
        echo "dataflow.sh: PRESET must be small or paper, not '$PRESET' (demo and laptop run" \
            "locally: python -m pipeline.main --preset $PRESET)" >&2
        exit 2
        ;;
esac

args=(
    --langs "$LANGS" --preset "$PRESET"
    --runner=DataflowRunner
    --project="$PROJECT" --region="$REGION"
    --temp_location="gs://$BUCKET/natural-instruct/tmp"
    --staging_location="gs://$BUCKET/natural-instruct/staging"
    --sdk_container_image="$IMAGE"
    # ships this checkout's code; the image's copy of the project supplies the dependencies
    --setup_file=./setup.py
    --experiments=use_runner_v2
    --disk_size_gb="${DISK_SIZE_GB:-$DISK}"
    # one bundle at a time per SDK process, so a process never runs two batches on its GPU
    --number_of_worker_harness_threads=1
)
case "$GPU_MODE" in
    hints)
        # machine of the CPU steps; the model steps' machines follow their accelerator hints
        args+=(--machine_type="${MACHINE_TYPE:-n2-standard-8}")
        ;;
    job)
        args+=(
            --dataflow_service_options="worker_accelerator=type:$GPU_TYPE;count:$GPU_COUNT;install-nvidia-driver"
            --machine_type="${MACHINE_TYPE:-$GPU_MACHINE}"
        )
        ;;
    *)
        echo "dataflow.sh: GPU_MODE must be hints or job, not '$GPU_MODE'" >&2
        exit 2
        ;;
esac

scratch=""
models_config=""
case "${MODELS:-}" in
    "") ;;
    image)
        # the paths `python -m pipeline.models stage --in-place` baked them at in the Dockerfile
        models_config=$(mktemp -t natural-instruct-models.XXXXXX.yaml)
        "$PYTHON" -m pipeline.models config --preset "$PRESET" --dir /opt/natural-instruct/models >"$models_config"
        args+=(--config="$models_config")
        ;;
    *) args+=(--config="${MODELS%/}/models.yaml") ;;
esac
if [[ "$DRY_RUN" == 1 ]]; then
    if [[ -z "${OUTPUT:-}" ]]; then
        scratch=$(mktemp -d -t natural-instruct-dry-run.XXXXXX)
        OUTPUT=$scratch
    fi
    args+=(--dry_run=True --output="$OUTPUT")
    [[ -z "${INPUT:-}" ]] || args+=(--input="$INPUT")
else
    if [[ -z "${INPUT:-}" ]]; then
        echo "dataflow.sh: INPUT is required (a path the workers can read, e.g." \
            "'gs://$BUCKET/cc100/{cc100}.txt.xz'), unless DRY_RUN=1" >&2
        usage
    fi
    args+=(--input="$INPUT" --output="${OUTPUT:-gs://$BUCKET/natural-instruct/$PRESET}")
fi

cmd=("$PYTHON" -m pipeline.main "${args[@]}" "$@")
printf '+' >&2
printf ' %q' "${cmd[@]}" >&2
printf '\n' >&2
status=0
"${cmd[@]}" || status=$?
# a dry run's scratch output stays only if the pipeline wrote something there (error.txt)
[[ -z "$scratch" ]] || rmdir "$scratch" 2>/dev/null || true
[[ -z "$models_config" ]] || rm -f "$models_config"
exit "$status"
