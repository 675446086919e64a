#!/usr/bin/env bash
# Run the pipeline on a Flink cluster whose GPU nodes host Beam SDK worker pools started from the
# image built with launch/Dockerfile.
#
# 1. On every Flink TaskManager node (once; the pool keeps running and serves every job):
#
#      IMAGE=registry/natural-instruct:1 launch/flink.sh worker-pool
#
#    which runs  docker run -d --gpus all --network host --ipc host ... IMAGE --worker_pool
#    The image's entrypoint is Beam's boot program; with --worker_pool it runs
#    `python -m apache_beam.runners.worker.worker_pool_main --service_port=50000
#    --container_executable=/opt/apache/beam/boot` (Beam's sdks/python/container/boot.go): a pool on
#    port 50000 that starts SDK workers inside this container, which has the GPUs.
#    --network host: the TaskManager reaches the pool at localhost:50000 and the SDK workers reach
#    the TaskManager's gRPC endpoints. --ipc host: vLLM's tensor parallelism (NCCL) and PyTorch
#    need more shared memory than Docker's default 64 MB. Models staged to a bucket are copied
#    once per node to MODEL_CACHE on the host (default /var/cache/natural-instruct/models), hub
#    downloads go to HF_CACHE (default /var/cache/natural-instruct/huggingface), both kept across
#    restarts; HF_TOKEN (gated models from the hub) is passed on when set: with staged or baked
#    models (MODELS below) the nodes need no token.
#
# 2. From the repository root of the commit the image was built from, on a machine that reaches
#    the Flink master's REST port:
#
#      FLINK_MASTER=flink-master:8081 INPUT='gs://bucket/cc100/{cc100}.txt.xz' \
#      OUTPUT=gs://bucket/natural-instruct LANGS=tel,hin PRESET=paper \
#        launch/flink.sh submit [more pipeline or Beam flags, passed through last]
#
#    --environment_type=EXTERNAL --environment_config=localhost:50000: each TaskManager asks the
#    pool on its own node for SDK workers. The TaskManagers must share the node's network (Flink
#    on the host, or the pool as a sidecar in the TaskManager's pod).
#    --flink_submit_uber_jar: the job, with its artifacts, goes to the master as one jar: no Java
#    and no job server here, no artifact directory shared with the cluster. The Beam Flink
#    job-server jar for the cluster's Flink version is downloaded from Maven Central on first
#    use; FLINK_JOB_SERVER_JAR=path/to/jar uses a local copy instead.
#
# Why not --environment_type=DOCKER: then each TaskManager starts the SDK container itself, with
# `docker run` options of its own; Beam's DOCKER environment takes only the image, nothing like
# --gpus, so its workers would see no GPU.
#
# No --setup_file here, unlike Dataflow: a pool is long-lived and shared by jobs, and the boot
# installs a staged package into the image's environment, so one job's code would replace
# another's. The code is the image's: rebuild the image and restart the pools to change it.
#
# Optional for submit: LANGS (tel,hin), PRESET (paper), PARALLELISM, FLINK_JOB_SERVER_JAR,
# PYTHON (default: .venv's), MODELS (as in dataflow.sh: the prefix `python -m pipeline.models
# stage` wrote to, or `image` for models baked into the image). INPUT and OUTPUT must be on a filesystem every node reads and writes:
# the image has GCS (the dataflow extra); S3 or HDFS need Beam's aws or hadoop extra added to it.
set -euo pipefail

usage() {
    {
        echo "usage: IMAGE=... [HF_CACHE=DIR] [MODEL_CACHE=DIR] [HF_TOKEN=...] launch/flink.sh worker-pool [docker run options]"
        echo "       FLINK_MASTER=host:8081 INPUT=... OUTPUT=... [LANGS=tel,hin] [PRESET=paper]" \
            "[PARALLELISM=N] [FLINK_JOB_SERVER_JAR=...] [MODELS=gs://...|image] launch/flink.sh submit [pipeline or Beam flags]"
    } >&2
    exit 2
}

require() {
    local missing=() name
    for name in "$@"; do
        [[ -n "${!name:-}" ]] || missing+=("$name")
    done
    if ((${#missing[@]})); then
        echo "flink.sh: missing ${missing[*]}" >&2
        usage
    fi
}

show() {  # print a command as it will run
    printf '+' >&2
    printf ' %q' "$@" >&2
    printf '\n' >&2
}

worker_pool() {
    require IMAGE
    local cache=${HF_CACHE:-/var/cache/natural-instruct/huggingface}
    local cmd=(
        "${DOCKER:-docker}" run -d --name "${POOL_NAME:-beam-worker-pool}" --restart unless-stopped
        --gpus all --network host --ipc host
        -v "$cache:/root/.cache/huggingface"
        -v "${MODEL_CACHE:-/var/cache/natural-instruct/models}:/root/.cache/natural-instruct/models"
    )
    [[ -z "${HF_TOKEN:-}" ]] || cmd+=(-e HF_TOKEN)  # docker copies the value from this environment
    cmd+=("$@" "$IMAGE" --worker_pool)  # extra arguments: more docker run options
    show "${cmd[@]}"
    "${cmd[@]}"
}

submit() {
    require FLINK_MASTER INPUT OUTPUT
    cd "$(dirname "$0")/.."
    local python=${PYTHON:-}
    if [[ -z "$python" ]]; then
        if [[ -x .venv/bin/python ]]; then python=.venv/bin/python; else python=python3; fi
    fi
    local args=(
        --langs "${LANGS:-tel,hin}" --preset "${PRESET:-paper}"
        --input "$INPUT" --output "$OUTPUT"
        --runner=FlinkRunner
        --flink_master="$FLINK_MASTER"
        --flink_submit_uber_jar
        --environment_type=EXTERNAL
        --environment_config=localhost:50000
    )
    [[ -z "${PARALLELISM:-}" ]] || args+=(--parallelism="$PARALLELISM")
    [[ -z "${FLINK_JOB_SERVER_JAR:-}" ]] || args+=(--flink_job_server_jar="$FLINK_JOB_SERVER_JAR")
    case "${MODELS:-}" in
        "") ;;
        image)
            models_config=$(mktemp -t natural-instruct-models.XXXXXX.yaml)
            trap 'rm -f "$models_config"' EXIT
            "$python" -m pipeline.models config --preset "${PRESET:-paper}" --dir /opt/natural-instruct/models >"$models_config"
            args+=(--config="$models_config")
            ;;
        *) args+=(--config="${MODELS%/}/models.yaml") ;;
    esac
    local cmd=("$python" -m pipeline.main "${args[@]}" "$@")
    show "${cmd[@]}"
    "${cmd[@]}"
}

case "${1:-}" in
    worker-pool) shift; worker_pool "$@" ;;
    submit) shift; submit "$@" ;;
    *) usage ;;
esac
