"""OpenFHE anchor for encrypted X (rows x d) times a plaintext W (d x d'): the plain diagonal method.

Same layout as ckks::circuits::matmul::RowMajor: X row-major with a power-of-two row stride
>= max(d, d'), entry (t, j) in slot t*stride + j, split into tiles of slots/stride rows. Y = X W is the
block-diagonal map whose diagonals are delta = j - k (d + d' - 1 of them). Plain diagonal method,
per tile:

  Y = sum_delta diag_delta * rot_delta(X),   one rescale at the end,

one key switch per nonzero diagonal but the main one. Two variants:
  plain    EvalRotate per diagonal (a full key switch each: ModUp + inner product + ModDown);
  hoisted  one EvalFastRotationPrecompute per tile (ModUp once), then EvalFastRotation per diagonal.
The diagonals are plaintexts from MakeCKKSPackedPlaintext at the ciphertext's level (level 0 = the top:
X is encrypted with all depth+1 Q primes, like our run).

Context: CKKS FIXEDMANUAL, first prime --first (50) bits, --levels (10) scaling primes of --scale (45)
bits (multiplicative depth = levels: levels+1 Q primes, as in ckks/examples/matmul_n16.rs), HYBRID key
switching with --dnum (3) digits (OpenFHE picks 60-bit special primes), uniform ternary secret.
--logn 16 uses HEStd_128_classic; --logn 12|13 uses HEStd_NotSet (insecure, correctness checks).

A Galois key per diagonal at N = 2^16 is ~47 MB (dnum 3, 15 limbs): 383-959 diagonals would not fit in
memory. --max-diagonals K times only the main diagonal and the first K rotated ones (keys and
plaintexts only for those) on one tile, and extrapolates linearly:
  per tile = T_0 + n_rot * (T_K - T_0) / K,  total = tiles * per tile,
with T_0 the main-diagonal-only product (product, rescale; plus the precompute when hoisted) and n_rot
the number of rotated diagonals. Without --max-diagonals (or K >= n_rot) every tile is run with all
diagonals, timed, and checked against numpy.

Threads: set OMP_NUM_THREADS before starting Python (OpenFHE uses OpenMP).

  OMP_NUM_THREADS=1 /tmp/anchors-venv/openfhe/bin/python scripts/anchors/bench_openfhe_matmul.py \
      --logn 16 --rows 16 --d 64 --dout 64 [--levels 10] [--dnum 3] [--max-diagonals 100] \
      [--reps 3] [--seed 1] [--out results.jsonl]

Prints one line per figure and a final RESULT_JSON line (format of /work/shared/anchors/common.py).
"""
import math
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, "/work/shared/anchors")
from common import Report, arg, bits, env_threads, max_err, once  # noqa: E402

import openfhe as o  # noqa: E402


def rss_mib():
    """Current resident memory of this process (MiB), from /proc/self/statm."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return float("nan")


def timed(fn, reps, warmup=1):
    """(median wall time, mean CPU time of the process) of fn() over reps runs, after warmup runs.
    With the machine shared, wall / CPU shows how much of a core the run had."""
    for _ in range(warmup):
        fn()
    ts = []
    c0 = time.process_time()
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), (time.process_time() - c0) / reps


def make_cc(logn, levels, first, scale, dnum):
    p = o.CCParamsCKKSRNS()
    p.SetSecurityLevel(o.SecurityLevel.HEStd_128_classic if logn >= 16
                       else o.SecurityLevel.HEStd_NotSet)
    p.SetRingDim(1 << logn)
    p.SetSecretKeyDist(o.SecretKeyDist.UNIFORM_TERNARY)
    p.SetScalingTechnique(o.ScalingTechnique.FIXEDMANUAL)
    p.SetKeySwitchTechnique(o.KeySwitchTechnique.HYBRID)
    p.SetFirstModSize(first)
    p.SetScalingModSize(scale)
    p.SetMultiplicativeDepth(levels)
    p.SetNumLargeDigits(dnum)
    p.SetBatchSize(1 << (logn - 1))
    cc = o.GenCryptoContext(p)
    for f in (o.PKESchemeFeature.PKE, o.PKESchemeFeature.KEYSWITCH,
              o.PKESchemeFeature.LEVELEDSHE):
        cc.Enable(f)
    return cc


def diagonal(w, delta, stride, per):
    """Slot vector of diagonal delta: W[k + delta][k] at slot t*stride + k, for every row t of a tile."""
    d, dout = w.shape
    base = np.zeros(stride)
    k = np.arange(dout)
    ok = (k + delta >= 0) & (k + delta < d)
    base[k[ok]] = w[k[ok] + delta, k[ok]]
    return np.tile(base, per)


def main():
    logn = arg("logn", 16, int)
    rows = arg("rows", 16, int)
    d = arg("d", 64, int)
    dout = arg("dout", d, int)
    levels = arg("levels", 10, int)
    first = arg("first", 50, int)
    scale = arg("scale", 45, int)
    dnum = arg("dnum", 3, int)
    reps = arg("reps", 3 if logn >= 16 else 5, int)
    seed = arg("seed", 1, int)
    kmax = arg("max-diagonals", None, int)
    out = arg("out", None)

    n = 1 << logn
    slots = n // 2
    stride = 1 << (max(d, dout) - 1).bit_length()
    if stride > slots:
        sys.exit(f"a row (stride {stride}) does not fit {slots} slots")
    per = slots // stride
    tiles = -(-rows // per)
    shape = f"{rows}x{d}*{d}x{dout}"
    R = Report("openfhe", version=getattr(o, "__version__", "?"), method="plain diagonal",
               shape=shape, rows=rows, d=d, dout=dout, logn=logn, threads=env_threads(),
               secure_128=logn >= 16,
               params=dict(first=first, scale=scale, levels=levels, dnum=dnum,
                           technique="FIXEDMANUAL", keyswitch="HYBRID", secret="uniform"))
    print(f"openfhe {R.d['version']} matmul {shape}: N = 2^{logn}, {levels + 1} Q primes "
          f"(q0 {first} bit + {levels} x {scale} bit), dnum {dnum}"
          f"{'' if logn >= 16 else ' (INSECURE: correctness check only)'}, "
          f"OMP_NUM_THREADS={env_threads()}", flush=True)

    rng = np.random.default_rng(seed)
    w = rng.uniform(-1.0, 1.0, (d, dout)) / math.sqrt(d)
    x = rng.uniform(-1.0, 1.0, (rows, d))
    deltas = [dl for dl in range(-(dout - 1), d)
              if np.any(diagonal(w, dl, stride, 1) != 0.0)]
    rot = [dl for dl in deltas if dl != 0]
    has_main = 0 in deltas
    n_rot = len(rot)
    full = kmax is None or kmax >= n_rot
    timed_rot = rot if full else rot[:max(1, kmax)]
    R.i("slots", slots)
    R.i("stride", stride)
    R.i("tiles", tiles)
    R.i("diagonals", len(deltas))
    R.i("rotated_diagonals", n_rot)
    R.i("key_switches", tiles * n_rot)
    R.i("decompositions_plain", tiles * n_rot)
    R.i("decompositions_hoisted", tiles)
    R.i("levels_used", 1)
    R.i("timed_rotated_diagonals_per_tile", len(timed_rot))
    R.i("extrapolated", not full)

    cc, t = once(lambda: make_cc(logn, levels, first, scale, dnum))
    R.t("context_gen", t)
    assert cc.GetRingDimension() == n, cc.GetRingDimension()
    R.i("log2_q", round(math.log2(cc.GetModulus()), 1))
    kp, t = once(cc.KeyGen)
    R.t("keygen_sk_pk", t)
    tag = kp.secretKey.GetKeyTag()

    # One key first, to read its serialized size; then the others.
    rss0 = rss_mib()
    t0 = time.perf_counter()
    cc.EvalRotateKeyGen(kp.secretKey, timed_rot[:1])
    t_first_key = time.perf_counter() - t0
    key_bytes = None
    try:
        key_bytes = len(o.SerializeEvalAutomorphismKeyString(o.BINARY, tag))
    except Exception as e:  # pragma: no cover
        R.i("key_serialize", f"ERR {str(e)[:120]}")
    t0 = time.perf_counter()
    if len(timed_rot) > 1:
        cc.EvalRotateKeyGen(kp.secretKey, timed_rot[1:])
    R.t("keygen_rotation_keys", t_first_key + time.perf_counter() - t0)
    rss1 = rss_mib()
    R.i("keys_generated", len(timed_rot))
    R.i("keygen_rss_delta_mib", round(rss1 - rss0, 1))
    if key_bytes:
        R.i("key_bytes_per_key_serialized", key_bytes)
        R.i("key_mib_generated", round(len(timed_rot) * key_bytes / 2**20, 1))
        R.i("key_mib_all_diagonals", round(n_rot * key_bytes / 2**20, 1))

    M = cc.GetCyclotomicOrder()
    used = ([0] if has_main else []) + timed_rot
    t0 = time.perf_counter()
    pts = {dl: cc.MakeCKKSPackedPlaintext(diagonal(w, dl, stride, per).tolist(), 1, 0)
           for dl in used}
    R.t("encode_diagonals", time.perf_counter() - t0)
    R.i("diagonals_encoded", len(pts))

    xt = np.zeros((tiles, slots))
    for t in range(rows):
        xt[t // per, (t % per) * stride:(t % per) * stride + d] = x[t]
    cts = [cc.Encrypt(kp.publicKey, cc.MakeCKKSPackedPlaintext(v.tolist())) for v in xt]
    R.i("rss_after_setup_mib", round(rss_mib(), 1))

    def product(ct, ds, hoisted):
        pre = cc.EvalFastRotationPrecompute(ct) if hoisted else None
        acc = None
        for dl in ds:
            if dl == 0:
                r = ct
            elif hoisted:
                r = cc.EvalFastRotation(ct, dl, M, pre)
            else:
                r = cc.EvalRotate(ct, dl)
            term = cc.EvalMult(r, pts[dl])
            if acc is None:
                acc = term
            else:
                cc.EvalAddInPlace(acc, term)
        if acc is None:  # no main diagonal and no rotations: precompute only
            return None
        return cc.Rescale(acc)

    def dec(ct):
        pt = cc.Decrypt(ct, kp.secretKey)
        pt.SetLength(slots)
        return np.array(pt.GetRealPackedValue())

    def expected(ds):
        """Tiles of sum over ds of diag * rot(x), in numpy (the layout's padding slots stay 0)."""
        return [sum(diagonal(w, dl, stride, per) * np.roll(v, -dl) for dl in ds) for v in xt]

    main = [0] if has_main else []
    for name, hoisted in (("plain", False), ("hoisted", True)):
        if full:
            t, c = timed(lambda: [product(ct, used, hoisted) for ct in cts], reps)
            R.t(f"matmul_{name}", t)
            R.t(f"matmul_{name}_per_tile", t / tiles)
            R.t(f"matmul_{name}_cpu_mean", c)
            got = [dec(product(ct, used, hoisted)) for ct in cts]
            y = np.zeros((rows, dout))
            for t_ in range(rows):
                b = (t_ % per) * stride
                y[t_] = got[t_ // per][b:b + dout]
            e = max_err(y, x @ w)
            R.p(f"{name}_max_abs_err", float(f"{e:.3e}"))
            R.p(f"{name}_precision_bits", round(bits(e), 1))
        else:
            t_k, c_k = timed(lambda: product(cts[0], used, hoisted), reps)
            t_0, c_0 = timed(lambda: product(cts[0], main, hoisted), reps)
            per_diag = (t_k - t_0) / len(timed_rot)
            per_tile = t_0 + n_rot * per_diag
            R.t(f"matmul_{name}_timed_subset_one_tile", t_k)
            R.t(f"matmul_{name}_main_diagonal_only_one_tile", t_0)
            R.t(f"matmul_{name}_per_rotated_diagonal", per_diag)
            R.t(f"matmul_{name}_per_tile", per_tile)
            R.t(f"matmul_{name}", tiles * per_tile)
            R.t(f"matmul_{name}_cpu_mean", tiles * (c_0 + n_rot * (c_k - c_0) / len(timed_rot)))
            # Correctness of what was run: the partial sum over the timed diagonals.
            e = max_err(dec(product(cts[0], used, hoisted)), expected(used)[0])
            R.p(f"{name}_timed_subset_max_abs_err", float(f"{e:.3e}"))
            R.p(f"{name}_timed_subset_precision_bits", round(bits(e), 1))
    R.dump(out)


if __name__ == "__main__":
    main()
