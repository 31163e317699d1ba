#!/usr/bin/env bash
# AutoLink on the procedural figures on one GPU: four runs side by side (stick and capsule figures,
# 64 and 128 px), since one compact network leaves most of a large GPU idle. Each run reads its
# training split into memory first (`--in_memory`), then trains the `cpu` profile's compact config
# (notebook 02's defaults) with K = 16, 4 x 4 masks and thick 2.5e-3, batch 64, for MINUTES of wall
# time (the cosine schedule ends where the cap cuts it). Usage, from the workbook root:
#
#   LMK_COMMIT=<commit> bash tools/device_autolink.sh OUT MINUTES   (LMK_COMMIT: the commit the runs record)
#
# RUNS="data:resolution[:seed] ..." replaces the four runs (e.g. RUNS=procedural-stick:32 to try it on
# a CPU); a seed other than 0 adds _s<seed> to the run's name. CKPT_EVERY (default 1000) sets the
# snapshot interval. Runs go to runs/<run>/ as with any trainer call. OUT gets each run's last.pt
# (as <run>.pt) and runs.tar.gz (each run's config, history and summary, and the logs) as soon as
# training ends; then the skeleton trace (`lmkcore.eval.trace`) runs over each run's snapshots on
# the same machine and OUT gets traces.tar.gz (reports/<run>/skeleton_trace.json and the logs).
# Leave several minutes beyond MINUTES: five 6-minute runs at 128 px with 500-step snapshots had not
# finished their traces when a 590-second call ended. Unpack the archives in the workbook root, put
# each .pt back as runs/<run>/last.pt and run notebook 02 with the same parameters and resume=True
# to draw the figures and evaluate.
set -euo pipefail
out=${1:?output folder}
minutes=${2:?minutes per run}
mkdir -p "$out" runs
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
train() {  # data resolution steps minutes run-name [trainer flags]
  python -m lmkcore.train --method autolink --data "$1" --dataset "$1" --steps "$3" --max_minutes "$4" \
    --batch_size 64 --num_workers 4 --in_memory --ckpt_every "${CKPT_EVERY:-1000}" --progress false --run_name "$5" \
    "${@:6}" --profile cpu n_parts=16 block=4 thick=0.0025 resolution="$2"
}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
device=$(python -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
# preflight: a few steps on the small val split, so a broken setup fails in seconds
train procedural-stick 64 5 0 preflight --split val --overwrite true --tensorboard false > "$out/preflight.log" 2>&1 \
  || { tail -n 40 "$out/preflight.log"; exit 1; }
rm -rf runs/preflight
names=() datas=() pids=()
for spec in ${RUNS:-procedural-stick:64 procedural-stick:128 procedural:64 procedural:128}; do
  IFS=: read -r data res seed <<< "$spec"
  seed=${seed:-0}
  name=autolink_k16_${data}-${res}_30000_m0.8_b4_t0.0025_sklr64_h200$([ "$seed" = 0 ] || echo "_s$seed")
  names+=("$name") datas+=("$data")
  train "$data" "$res" 30000 "$minutes" "$name" --seed "$seed" > "$out/$name.log" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
for name in "${names[@]}"; do  # models and records out first: a call cut short by its limit still returns them
  tail -n 2 "$out/$name.log"
  [ -f "runs/$name/last.pt" ] && cp "runs/$name/last.pt" "$out/$name.pt"
done
tar -czf "$out/runs.tar.gz" -C . $(for n in "${names[@]}"; do for f in config.json history.jsonl summary.json; do
  [ -f "runs/$n/$f" ] && echo "runs/$n/$f"; done; done) -C "$out" $(cd "$out" && ls *.log)
rm -f "$out"/*.log
pids=()
for i in "${!names[@]}"; do  # the skeleton trace over each run's snapshots, side by side
  python -m lmkcore.eval.trace "runs/${names[$i]}" --data "${datas[$i]}" --device "$device" --overwrite \
    > "$out/${names[$i]}.trace.log" 2>&1 &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
tail -n 30 "$out"/*.trace.log || true
tar -czf "$out/traces.tar.gz" -C . $(for n in "${names[@]}"; do
  [ -f "reports/$n/skeleton_trace.json" ] && echo "reports/$n/skeleton_trace.json"; done) -C "$out" $(cd "$out" && ls *.trace.log)
rm -f "$out"/*.trace.log
exit $status
