#!/bin/bash
# Runs each framework at 1 and 2 threads; 5 warm-up + 30 timed steps each; median reported.
# burn ndarray: RAYON_NUM_THREADS (rayon) + MATMUL_NUM_THREADS (matrixmultiply's own pool, default = physical cores)
# candle: RAYON_NUM_THREADS (also read by its gemm + barrier pool; CANDLE_NUM_THREADS falls back to it)
# torch: torch.set_num_threads(n) + OMP_NUM_THREADS
cd "$(dirname "$0")"
export STEPS=30
for rep in 1 2; do
  for t in 1 2; do
    echo "== rep $rep threads $t  load: $(cut -d' ' -f1-3 /proc/loadavg)"
    for b in burn-ndarray burn-ndarray-mimalloc burn-flex-mimalloc; do
      echo -n "[$b] "; RAYON_NUM_THREADS=$t MATMUL_NUM_THREADS=$t bin/$b 2>/dev/null | head -1
    done
    for b in candle candle-mimalloc; do
      echo -n "[$b] "; RAYON_NUM_THREADS=$t bin/$b 2>/dev/null | head -1
    done
    echo -n "[torch] "; OMP_NUM_THREADS=$t torch/venv/bin/python torch/bench.py $t 2>&1 | tail -1
  done
done
