#!/usr/bin/env bash
# Encrypted X times plaintext W (issue 5): our BSGS kernel (ckks/examples/matmul_n16.rs) next to the
# plain diagonal method with OpenFHE's EvalRotate / EvalFastRotation (bench_openfhe_matmul.py), on the
# shapes of the paper-scale ViT block and of our CPU-scale models, one thread each, the same chain
# (q0 50 bit + LEVELS x 45 bit, dnum DNUM), and prints a markdown table.
#
#   scripts/anchors/matmul_table.sh                 # N = 2^16, all shapes: ~15-20 min, ~9 GB peak (ours, 959 diagonals)
#   LOGN=12 SHAPES="16x64x64" scripts/anchors/matmul_table.sh   # quick insecure correctness check
#
# Environment (defaults):
#   LOGN=16  LEVELS=10  DNUM=3  REPS=3 (5 below 2^16)  SEED=1
#   MAXD     OpenFHE --max-diagonals: rotated diagonals actually timed (keys for those only), the rest
#            extrapolated linearly. Default 100 at N = 2^16 (100 keys x 47 MB = 4.7 GB of keys plus
#            0.6 GB of diagonals), unset (= all diagonals, measured and checked) below. MAXD=all
#            forces a full run.
#   SHAPES   "ROWSxDxDOUT ..." (default: the seven shapes of issue 5)
#   OUT      log directory (default /tmp/matmul_table_n$LOGN); the table is also written to OUT/table.md
#   PY       Python with openfhe (default /tmp/anchors-venv/openfhe/bin/python)
#   NICE     prefix for the runs, e.g. "nice -n 5" on a shared machine (default none)
#   SKIP_OPENFHE=1 / SKIP_OURS=1  run one side only (the table reads the other side's existing log)
set -euo pipefail
cd "$(dirname "$0")/../.."

LOGN=${LOGN:-16}
LEVELS=${LEVELS:-10}
DNUM=${DNUM:-3}
SEED=${SEED:-1}
if [ "$LOGN" -ge 16 ]; then REPS=${REPS:-3}; MAXD=${MAXD-100}; else REPS=${REPS:-5}; MAXD=${MAXD-}; fi
SHAPES=${SHAPES:-"16x64x64 16x64x256 16x256x64 64x192x192 64x192x768 64x768x192 64x256x256"}
OUT=${OUT:-/tmp/matmul_table_n$LOGN}
PY=${PY:-/tmp/anchors-venv/openfhe/bin/python}
NICE=${NICE:-}
mkdir -p "$OUT"

nice -n 5 cargo build --release -q -p ckks --example matmul_n16
OURS=target/release/examples/matmul_n16
export RAYON_NUM_THREADS=1 OMP_NUM_THREADS=1

maxd_arg=()
if [ -n "$MAXD" ] && [ "$MAXD" != "all" ]; then maxd_arg=(--max-diagonals "$MAXD"); fi

{
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  commit: $(git rev-parse --short HEAD 2>/dev/null || echo ?)$(git diff --quiet 2>/dev/null || echo '+dirty')"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')  cores: $(getconf _NPROCESSORS_ONLN)"
  echo "LOGN=$LOGN LEVELS=$LEVELS DNUM=$DNUM REPS=$REPS MAXD=${MAXD:-all} RAYON_NUM_THREADS=1 OMP_NUM_THREADS=1"
} | tee "$OUT/header.txt"

for s in $SHAPES; do
  IFS=x read -r rows d dout <<<"$s"
  common=(--logn "$LOGN" --rows "$rows" --d "$d" --dout "$dout" --levels "$LEVELS" --dnum "$DNUM"
          --reps "$REPS" --seed "$SEED")
  if [ -z "${SKIP_OURS:-}" ]; then
    echo "=== ours $s" >&2
    /usr/bin/time -v $NICE "$OURS" "${common[@]}" >"$OUT/ours_$s.log" 2>"$OUT/ours_$s.err" \
      || echo "ours $s FAILED (see $OUT/ours_$s.err)" >&2
    grep -E '^  (apply|key_switches|plain_diagonal_key_switches|precision_bits) ' "$OUT/ours_$s.log" >&2 || true
  fi
  if [ -z "${SKIP_OPENFHE:-}" ]; then
    echo "=== openfhe $s" >&2
    /usr/bin/time -v $NICE "$PY" scripts/anchors/bench_openfhe_matmul.py "${common[@]}" "${maxd_arg[@]}" \
      >"$OUT/openfhe_$s.log" 2>"$OUT/openfhe_$s.err" \
      || echo "openfhe $s FAILED (see $OUT/openfhe_$s.err)" >&2
    grep -E '^  (matmul_(plain|hoisted)|[a-z_]*precision_bits) ' "$OUT/openfhe_$s.log" >&2 || true
  fi
done

python3 - "$OUT" $SHAPES <<'EOF' | tee "$OUT/table.md"
import json, re, sys
out, shapes = sys.argv[1], sys.argv[2:]

def load(path):
    try:
        lines = [l for l in open(path) if l.startswith("RESULT_JSON ")]
        return json.loads(lines[-1][len("RESULT_JSON "):]) if lines else None
    except OSError:
        return None

def max_rss_gib(path):
    try:
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(path).read())
        return f"{int(m.group(1)) / 2**20:.1f}" if m else "?"
    except OSError:
        return "?"

def ms(s):
    return "?" if s is None else (f"{s:.2f} s" if s >= 10 else f"{s * 1e3:.0f} ms")

print()
print("| shape (X·W) | tiles | diagonals | ours: time | ours: key switches (ModUps) | ours: levels | ours: keys (GiB) | ours: bits "
      "| OpenFHE plain: time | OpenFHE: key switches | OpenFHE hoisted: time | OpenFHE: bits "
      "| key switches plain/ours | time plain/ours | time hoisted/ours | CPU time ours / plain / hoisted "
      "| peak RSS ours / OpenFHE (GiB) |")
print("|" + "---|" * 17)
for s in shapes:
    r, d, do = s.split("x")
    a, b = load(f"{out}/ours_{s}.log"), load(f"{out}/openfhe_{s}.log")
    shape = f"{r}x{d}·{d}x{do}"
    if a:
        ai, at = a["info"], a["times_s"]
        t_ours = at.get("apply")
        ours = [str(ai["tiles"]), str(ai["diagonals"]), ms(t_ours),
                f"{ai['key_switches']} ({ai['decompositions']})", str(ai["levels_used"]),
                f"{ai['galois_keys']} ({float(ai['galois_keys_mib']) / 1024:.2f})",
                str(a["precision"].get("precision_bits"))]
    else:
        t_ours, ours = None, ["?", "?", "FAIL", "", "", "", ""]
    if b:
        bi, bt, bp = b["info"], b["times_s"], b["precision"]
        how = f"extrap. from {bi['timed_rotated_diagonals_per_tile']}" if bi["extrapolated"] else "measured"
        tp, th = bt.get("matmul_plain"), bt.get("matmul_hoisted")
        bits = bp.get("plain_precision_bits", bp.get("plain_timed_subset_precision_bits"))
        ofhe = [f"{ms(tp)} ({how})", str(bi["key_switches"]), f"{ms(th)} ({how})",
                f"{bits}{'' if not bi['extrapolated'] else ' (subset)'}"]
        ks_ratio = f"{bi['key_switches'] / a['info']['key_switches']:.1f}x" if a and a["info"]["key_switches"] else "?"
        rp = f"{tp / t_ours:.1f}x" if (tp and t_ours) else "?"
        rh = f"{th / t_ours:.1f}x" if (th and t_ours) else "?"
    else:
        ofhe, ks_ratio, rp, rh = ["FAIL", "", "", ""], "?", "?", "?"
    cpu = " / ".join(ms(x) for x in (a["times_s"].get("apply_cpu_mean") if a else None,
                                      b["times_s"].get("matmul_plain_cpu_mean") if b else None,
                                      b["times_s"].get("matmul_hoisted_cpu_mean") if b else None))
    rss = f"{max_rss_gib(f'{out}/ours_{s}.err')} / {max_rss_gib(f'{out}/openfhe_{s}.err')}"
    print("| " + " | ".join([shape] + ours + ofhe + [ks_ratio, rp, rh, cpu, rss]) + " |")
print()
print("Times: one matrix product (all tiles), median of REPS runs, one thread. OpenFHE 'extrap.': the main "
      "diagonal and the first K rotated diagonals timed on one tile, per tile = T_0 + n_rot (T_K - T_0) / K, "
      "times the tiles. OpenFHE key switches = tiles x (diagonals - 1); hoisted: the same key switches with "
      "one ModUp per tile. CPU time: mean process CPU time per product (wall >> CPU means the run "
      "shared its core). 'bits': -log2 max abs error against f64 (OpenFHE '(subset)': of the partial sum "
      "actually run).")
EOF
