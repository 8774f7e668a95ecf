"""OpenFHE NTT timings through its Python API (an anchor for our NTT micro-benchmarks).

OpenFHE's Python API has no NTT function as such, but Plaintext.SetFormat(Format.COEFFICIENT /
Format.EVALUATION) switches the plaintext's encoded DCRTPoly between coefficient and evaluation form:
DCRTPoly::SetFormat -> SwitchFormat -> per tower PolyImpl::SwitchFormat, i.e. an in-place inverse / forward
negacyclic NTT per prime (ChineseRemainderTransformFTT, tables cached). A CKKS packed plaintext comes out of
MakeCKKSPackedPlaintext in EVALUATION form with as many towers as the level has primes.

Reports the time per single-prime NTT of one polynomial: plaintext SetFormat time / number_of_towers,
median of many runs. Run with OMP_NUM_THREADS=1 (DCRTPoly::SwitchFormat is an OpenMP loop over towers).

Usage (venv made by /work/shared/anchors/setup.sh):
  OMP_NUM_THREADS=1 /tmp/anchors-venv/openfhe/bin/python scripts/anchors/bench_openfhe_ntt.py \
      [--logn 12,14,16] [--bits 50,59] [--primes 30] [--min-reps 30] [--target-s 2.0] [--out FILE]
"""
import platform
import statistics
import sys
import time

sys.path.insert(0, "/work/shared/anchors")
from common import Report, arg, env_threads  # noqa: E402

import openfhe as o  # noqa: E402


def t_us(rep, name, seconds):
    rep.d["times_s"][name] = round(seconds, 9)
    print(f"  {name:38s} {seconds*1e6:12.2f} us", flush=True)


def bench_one(logn, bits, primes, min_reps, target_s, rep):
    n = 1 << logn
    p = o.CCParamsCKKSRNS()
    p.SetSecurityLevel(o.HEStd_NotSet)
    p.SetRingDim(n)
    p.SetMultiplicativeDepth(primes - 1)
    p.SetScalingModSize(bits)
    p.SetFirstModSize(60)
    p.SetBatchSize(n // 2)
    p.SetScalingTechnique(o.FIXEDMANUAL)
    cc = o.GenCryptoContext(p)
    cc.Enable(o.PKE)
    cc.Enable(o.LEVELEDSHE)
    vals = [((i * 37) % 101) / 101.0 - 0.5 for i in range(n // 2)]
    pt = cc.MakeCKKSPackedPlaintext(vals)
    towers = primes  # depth primes-1 => primes towers at level 0 (FIXEDMANUAL)
    qbits = int(pt.GetElementModulus()).bit_length()
    assert abs(qbits - (60 + bits * (primes - 1))) <= primes, (qbits, primes, bits)
    assert cc.GetRingDimension() == n
    for _ in range(3):
        pt.SetFormat(o.Format.COEFFICIENT)
        pt.SetFormat(o.Format.EVALUATION)
    t_inv, t_fwd = [], []
    t_start = time.perf_counter()
    while len(t_fwd) < min_reps or time.perf_counter() - t_start < target_s:
        t0 = time.perf_counter()
        pt.SetFormat(o.Format.COEFFICIENT)
        t1 = time.perf_counter()
        pt.SetFormat(o.Format.EVALUATION)
        t2 = time.perf_counter()
        t_inv.append(t1 - t0)
        t_fwd.append(t2 - t1)
        if len(t_fwd) >= 100000:
            break
    # a same-format call (no transform) measures the call overhead
    t_noop = []
    for _ in range(200):
        t0 = time.perf_counter()
        pt.SetFormat(o.Format.EVALUATION)
        t_noop.append(time.perf_counter() - t0)
    fwd = statistics.median(t_fwd) / towers
    inv = statistics.median(t_inv) / towers
    tag = f"N2^{logn}_{bits}bit"
    t_us(rep, f"ntt_fwd_per_limb_{tag}", fwd)
    t_us(rep, f"ntt_inv_per_limb_{tag}", inv)
    rep.i(f"detail_{tag}", {
        "towers": towers, "q_bits": qbits, "runs": len(t_fwd),
        "pt_fwd_median_ms": round(statistics.median(t_fwd) * 1e3, 4),
        "pt_inv_median_ms": round(statistics.median(t_inv) * 1e3, 4),
        "noop_call_us": round(statistics.median(t_noop) * 1e6, 3),
        "fwd_per_limb_min_us": round(min(t_fwd) / towers * 1e6, 3),
        "inv_per_limb_min_us": round(min(t_inv) / towers * 1e6, 3),
    })


def main():
    logns = [int(x) for x in arg("logn", "12,14,16").split(",")]
    bitss = [int(x) for x in arg("bits", "50,59").split(",")]
    primes = arg("primes", 30, int)
    min_reps = arg("min-reps", 30, int)
    target_s = arg("target-s", 2.0, float)
    out = arg("out", None)
    rep = Report("OpenFHE (Plaintext.SetFormat)", threads=env_threads(), primes=primes,
                 unit_note="times_s are per single-prime NTT of one polynomial")
    rep.i("python", platform.python_version())
    print(f"OpenFHE NTT via Plaintext.SetFormat, {primes} towers, OMP_NUM_THREADS={env_threads()}",
          flush=True)
    for logn in logns:
        for bits in bitss:
            print(f"N = 2^{logn}, {bits}-bit primes", flush=True)
            bench_one(logn, bits, primes, min_reps, target_s, rep)
    rep.dump(out)


if __name__ == "__main__":
    main()
