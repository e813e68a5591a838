#!/usr/bin/env bash
# Issue 23's GPU measurements in one run, under 10 minutes on one H200; writes one results file.
#
#   bash benchmarks/gpu_check.sh --prepare   # here (registry reachable): wheels + data into .gpu_carry/ (git-ignored)
#   bash benchmarks/gpu_check.sh             # on the GPU machine (nasfw's device tool: carry [".gpu_carry"],
#                                            # timeout_s 600); results in $OUT/gpu_results.txt (or benchmarks/)
#
# The GPU image has torch, pluggy, click, PyYAML, rich, scipy, scikit-learn, but no pydantic: --prepare fetches
# its wheels for that image's Python (3.12, x86-64) with pip, and copies the CIFAR-10 JPEG tarball and the NB201
# table from ../shared/data (which does not travel). The run installs nasfw with --no-deps into a venv that sees
# the image's packages, then runs (each step under its own time limit, so one slow step cannot eat the rest):
#   1. benchmarks/search_step.py, batch 64, DARTS 8 cells C=16 and NB201 C=16 N=5 at 32x32, against the
#      per-edge baseline in the same process: fp32 with TF32, strict fp32, bf16 autocast, torch.compile'd cells
#      (fp32/TF32 and bf16), and the 2nd-order step;
#   2. a DARTS-PT selection with its variants batched against one after another (benchmarks/perturb_batched.py);
#   3. a short NB201 search under the study's gpu protocol (studies/nb201): DARTS 1st order, 100 steps.
# Step limits add up to 540 s; installing takes well under a minute.
# Not measured (not implemented): CUDA graphs. Nothing here was run yet: no GPU was lent to the session that wrote it.
set -uo pipefail
cd "$(dirname "$0")/.."
CARRY=.gpu_carry
PY_TAG=${GPU_PY:-3.12}

if [[ "${1:-}" == "--prepare" ]]; then
    set -e
    mkdir -p "$CARRY/wheels" "$CARRY/data"
    # versions this repository is tested with; no other wheel is needed on the image
    python -m pip download --no-deps --only-binary=:all: --python-version "$PY_TAG" \
        --platform manylinux2014_x86_64 --implementation cp --dest "$CARRY/wheels" \
        "pydantic==2.13.4" "pydantic-core==2.46.4" "annotated-types>=0.6" "typing-inspection>=0.4"
    cp ../shared/data/cifar10_jpeg/CIFAR-10-images_jpeg.tar.gz "$CARRY/data/"
    cp ../shared/data/nb201_nats_tss_acc/nats_bench.csv "$CARRY/data/"
    du -sh "$CARRY"
    exit 0
fi

RES_DIR=${OUT:-benchmarks}
RES="$RES_DIR/gpu_results.txt"
: > "$RES"
log() { echo "$*" | tee -a "$RES"; }
step() {  # step SECONDS TITLE CMD...: runs CMD under a time limit, output appended to the results file
    local limit=$1 title=$2; shift 2
    log ""
    log "## $title  ($(date -u +%T), limit ${limit}s)"
    log "\$ $*"
    timeout "$limit" "$@" 2>&1 | grep -v -E "Warning|warn\(" | tee -a "$RES"
    local rc=${PIPESTATUS[0]}
    [[ $rc -eq 0 ]] || log "!! exit $rc ($([[ $rc -eq 124 ]] && echo 'time limit' || echo 'failed'))"
}

[[ -d "$CARRY/wheels" ]] || { echo "no $CARRY/wheels: run 'bash benchmarks/gpu_check.sh --prepare' first and carry $CARRY" >&2; exit 2; }
log "# nasfw GPU check (issue 23), $(date -u '+%F %T') UTC, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee -a "$RES"

VENV=/tmp/nasfw-gpu-venv
python3 -m venv --system-site-packages "$VENV" && source "$VENV/bin/activate" || { log "!! no venv"; exit 1; }
pip install -q --no-deps --no-index "$CARRY"/wheels/*.whl 2>&1 | tail -2
for d in core search_spaces/darts search_spaces/nb201 plugins/darts plugins/zarts plugins/darts_pt \
         plugins/freedarts plugins/sharpdarts plugins/lissnas; do
    pip install -q --no-deps --no-build-isolation -e "./$d" 2>&1 | tail -2
done
python -c "import torch, nasfw; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())" \
    2>&1 | tee -a "$RES"
export PYTHONUNBUFFERED=1
B="python benchmarks/search_step.py --device cuda --batch-size 64 --repeats 5"
step 90 "fp32 + TF32: DARTS, NB201, 2nd order" $B --cases darts,nb201,darts-2nd
step 50  "strict fp32 (no TF32): DARTS, NB201" $B --cases darts,nb201 --no-tf32
step 50  "bf16 autocast (nasfw only; baseline fp32 + TF32)" $B --cases darts,nb201 --bf16
step 110 "torch.compile of the cells (nasfw only), fp32 + TF32" $B --cases darts,nb201 --compile
step 70  "torch.compile + bf16 (nasfw only)" $B --cases darts,nb201 --compile --bf16
step 50  "DARTS-PT selection, batched variants vs one after another (5 cells C=8, synthetic 32x32)" \
    python benchmarks/perturb_batched.py --device cuda --dataset synthetic --size 32 --eval-batches 1 --repeats 2

DATA=/tmp/nasfw-data
mkdir -p "$DATA" && tar xzf "$CARRY/data/CIFAR-10-images_jpeg.tar.gz" -C "$DATA"
step 120 "NB201 search, gpu protocol (C=16, N=5, 32x32), DARTS 1st order, 1 epoch of 100 steps, 20 val batches" \
    python studies/nb201/run_study.py --protocol gpu --data-dir "$DATA/CIFAR-10-images" --methods darts --seeds 0 \
    --set search.epochs=1 --set search.steps_per_epoch=100 --set search.eval_batches=20 \
    --set search.num_workers=8 --table "$CARRY/data/nats_bench.csv" --out /tmp/nasfw-runs \
    --results /tmp/nasfw-runs/results.csv --timeout 110
for f in /tmp/nasfw-runs/darts/seed0/summary.json /tmp/nasfw-runs/darts/seed0/study.json; do
    [[ -f $f ]] && { log "--- $f"; cat "$f" >> "$RES"; }
done
log ""
log "# done $(date -u +%T)"
