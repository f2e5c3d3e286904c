#!/usr/bin/env bash
# The GPU check, one script, under 10 minutes on one H100 / H200 (issue 19 item 5):
#   1. the CUDA-marked tests (tests/test_cuda.py: encode / decode / training steps of the small models,
#      bf16 autocast, CPU-CUDA id parity, flex-attention);
#   2. scripts/benchmark.py in fp32 and bf16, without and with torch.compile, for TiTok-L-32,
#      WavTokenizer-75 (large, 10 s) and FlexTok d12-d12 (8 Euler steps), random weights;
#   3. the per-stage precision report on CUDA (scripts/benchmark.py --precision);
#   4. rFID feature-extraction throughput and FlexTok flex-attention vs SDPA (scripts/gpu_probes.py).
# Results: $OUT (or --out DIR): summary.md, device_check.tar.gz (every table / JSON / log), cuda_tests.log.
#
# Before: bash scripts/device_prepare.sh (here); then the device call runs
#   bash scripts/device_check.sh            with carry [".whl", ".devdata"]
# --dry-run: the same steps on this machine's CPU with the tiny models and one repeat (checks the
# script, not the GPU: the CUDA tests run with ZOO_CUDA_TESTS_ON_CPU=1).
# Every step is time-boxed (DEVICE_CHECK_BUDGET_S, default 560 s in all); a step that does not fit is
# reported as TIMED OUT / SKIPPED in summary.md. A second call can leave out steps already done:
#   DEVICE_CHECK_SKIP=cuda_tests,bench_titok,precision bash scripts/device_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DRY=0
DEST=${OUT:-$ROOT/device_check_out}
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --out) DEST=$2; shift ;;
    *) echo "usage: $0 [--dry-run] [--out DIR]" >&2; exit 2 ;;
  esac
  shift
done
PY=${PYTHON:-python3}
BUDGET=${DEVICE_CHECK_BUDGET_S:-560}   # whole script, seconds (the device allows 600 per command)
WORK=$(mktemp -d)
mkdir -p "$DEST"
START=$SECONDS
SUMMARY=$WORK/summary.md

note() { echo "$*" | tee -a "$SUMMARY"; }
# step NAME CAP_SECONDS CMD...: runs CMD with a timeout of min(CAP, what is left of the budget)
step() {
  local name=$1 cap=$2; shift 2
  if [[ ",${DEVICE_CHECK_SKIP:-}," == *",$name,"* ]]; then note "- $name: skipped (DEVICE_CHECK_SKIP)"; return; fi
  local left=$(( BUDGET - (SECONDS - START) ))
  local t=$(( cap < left ? cap : left ))
  if [ "$t" -lt 20 ]; then note "- $name: SKIPPED (budget spent)"; return; fi
  local t0=$SECONDS
  timeout --kill-after=10 "$t" "$@" > "$WORK/$name.log" 2>&1
  local rc=$?
  local what="ok"; [ $rc -ne 0 ] && what="rc=$rc"; [ $rc -eq 124 ] && what="TIMED OUT after ${t}s"
  note "- $name: $what ($(( SECONDS - t0 ))s)"
}

export PYTHONPATH=$ROOT HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
if [ $DRY -eq 0 ]; then
  if ls .whl/*.whl > /dev/null 2>&1; then  # the packages the device image lacks (scripts/device_prepare.sh)
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
      && export PYTHONPATH=/tmp/site:$ROOT
  fi
  # offline test data where the Debian packages are absent (the device runs as root)
  if [ ! -d /usr/share/sounds/alsa ] && [ -d .devdata/alsa ]; then
    mkdir -p /usr/share/sounds && cp -r .devdata/alsa /usr/share/sounds/alsa
  fi
  if [ ! -d /usr/share/backgrounds/mate/nature ] && [ -d .devdata/mate ]; then
    mkdir -p /usr/share/backgrounds/mate && cp -r .devdata/mate /usr/share/backgrounds/mate/nature
  fi
  DEVICE=cuda; REPEATS=5; WARMUP=2
  TITOK=titok_l32.in1k; WAV=wavtokenizer_large_75.speech; FLEX=flextok_d12_d12.in1k
  IMG_BATCH=8; WAV_SECONDS=10; FLEX_STEPS=8; FID_BATCH=64
  TESTS=(tests/test_cuda.py); CAPX=1; COMPILE_DTYPES="fp32 bf16"
else
  export ZOO_CUDA_TESTS_ON_CPU=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
  DEVICE=cpu; REPEATS=1; WARMUP=0
  TITOK=titok_tiny.untrained; WAV=wavtokenizer_tiny_75.scratch; FLEX=flextok_tiny.untrained
  IMG_BATCH=2; WAV_SECONDS=1; FLEX_STEPS=2; FID_BATCH=2
  TESTS=(tests/test_cuda.py -k "titok_tiny or flex_attention or dmel_ids"); CAPX=3; COMPILE_DTYPES="fp32"
  BUDGET=${DEVICE_CHECK_BUDGET_S:-1200}  # a shared CPU: generous caps, the flow is what is checked
fi

note "# Device check $(date -u +%Y-%m-%dT%H:%MZ) ($([ $DRY -eq 1 ] && echo 'DRY RUN on CPU' || echo "$DEVICE"))"
{
  command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  $PY -c "import torch, platform; print('torch', torch.__version__, '| cuda', torch.version.cuda, '| device:',
torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none', '| cpu:', platform.processor() or platform.machine())"
} 2>&1 | tee "$WORK/env.txt" | sed 's/^/    /' | tee -a "$SUMMARY"

step cuda_tests $(( 100 * CAPX )) $PY -m pytest -q -p no:cacheprovider -m cuda -rs --durations=10 "${TESTS[@]}"
if [ -f "$WORK/cuda_tests.log" ]; then
  cp "$WORK/cuda_tests.log" "$DEST/cuda_tests.log"
  tail -n 3 "$WORK/cuda_tests.log" | sed 's/^/    /' | tee -a "$SUMMARY"
fi

bench() {  # bench NAME CAP [benchmark args...]: one scripts/benchmark.py call, cases in one process
  local name=$1 cap=$2; shift 2
  step "$name" "$(( cap * CAPX ))" $PY scripts/benchmark.py --device $DEVICE --repeats $REPEATS --warmup $WARMUP \
    --no-isolate --out "$WORK/$name" "$@"
}
# eager first (cheap, certain), then the precision report and the probes, then torch.compile with
# what is left of the budget: one step per model and dtype, so a slow compile costs only its own row
bench bench_titok 45 --tokenizers $TITOK --dtype fp32,bf16 --batch-sizes $IMG_BATCH
bench bench_wavtokenizer 40 --tokenizers $WAV --dtype fp32,bf16 --batch-sizes 1 --sizes $WAV_SECONDS
bench bench_flextok 45 --tokenizers $FLEX --dtype fp32,bf16 --batch-sizes 1 --decode steps=$FLEX_STEPS
step precision $(( 70 * CAPX )) $PY scripts/benchmark.py --precision --device $DEVICE --dtype bf16,fp16 \
  --repeats $REPEATS --warmup $WARMUP --decode steps=$FLEX_STEPS --out "$WORK/precision" \
  --tokenizers $TITOK,$FLEX,$WAV,titok_demo64.demo,wavtokenizer_demo75.demo,dmel_vocos_demo.demo,mel_rvq_demo.demo
step probes $(( 50 * CAPX )) $PY scripts/gpu_probes.py --device $DEVICE --fid-batch $FID_BATCH --flextok $FLEX \
  --flextok-batch $IMG_BATCH --repeats $REPEATS --out "$WORK/probes.json"
for model in titok wavtokenizer flextok; do
  for dtype in $COMPILE_DTYPES; do
    case $model in
      titok) args=(--tokenizers $TITOK --batch-sizes $IMG_BATCH) ;;
      wavtokenizer) args=(--tokenizers $WAV --batch-sizes 1 --sizes $WAV_SECONDS) ;;
      flextok) args=(--tokenizers $FLEX --batch-sizes 1 --decode steps=$FLEX_STEPS) ;;
    esac
    bench "bench_${model}_compile_$dtype" 60 "${args[@]}" --dtype $dtype --compile
  done
  [ $DRY -eq 1 ] && break  # the dry run checks the compile path on the smallest model only
done

note ""
for md in "$WORK"/bench_*/results.md "$WORK"/precision*/precision.md; do
  [ -f "$md" ] && { note "## $(basename "$(dirname "$md")")"; cat "$md" >> "$SUMMARY"; note ""; }
done
[ -f "$WORK/probes.json" ] && { note "## probes"; note '```'; cat "$WORK/probes.json" >> "$SUMMARY"; note '```'; }
note "total $(( SECONDS - START ))s"
cp "$SUMMARY" "$DEST/summary.md"
tar -czf "$DEST/device_check.tar.gz" -C "$WORK" .
rm -rf "$WORK"
echo "device_check: results in $DEST (summary.md, device_check.tar.gz, cuda_tests.log)"
