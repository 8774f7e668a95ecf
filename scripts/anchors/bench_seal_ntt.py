"""Microsoft SEAL NTT timings through tenseal.sealapi (an anchor for our NTT micro-benchmarks).

Times Evaluator.transform_from_ntt_inplace / transform_to_ntt_inplace on a fresh 2-polynomial CKKS
ciphertext (random data from encrypt_zero_symmetric) and reports the time per single-prime NTT of one
polynomial: ciphertext time / (2 * number_of_primes_in_the_ciphertext), median of many runs.

SEAL is single-threaded (no OpenMP), so no thread setting is needed. The TenSEAL 0.3.18 wheel carries SEAL
4.x built without Intel HEXL (no "hexl" string and no zmm/IFMA instruction in _sealapi_cpp*.so), so this
is SEAL's portable C++ Harvey NTT (64-bit words, 128-bit products, lazy butterflies).

What one measured call contains: forward = util::ntt_negacyclic_harvey per limb (lazy butterflies plus a
final pass reducing to [0, q)); inverse = util::inverse_ntt_negacyclic_harvey per limb (with the n^-1
scaling folded into the last stage, plus a final reduction). Both are in place: no allocation and no
copy; the only extra work is a metadata/buffer check and the Python->C++ call (~1 us per call, i.e.
negligible after dividing by 2 * primes).

Usage (venv made by /work/shared/anchors/setup.sh):
  /tmp/anchors-venv/others/bin/python scripts/anchors/bench_seal_ntt.py \
      [--logn 12,14,16] [--bits 50,60] [--primes 30] [--min-reps 30] [--target-s 2.0] [--out FILE]

--primes is the number of primes in the measured ciphertext; one more (the key-switching "special" prime,
which SEAL strips from data-level ciphertexts) is added to the modulus chain. SEAL allows primes of at
most 60 bits and at most 64 primes; the modulus is far above 128-bit security, so the SEALContext is made
with sec_level_type.none. The per-limb figure does not depend on the prime count except through caches.
"""
import os
import platform
import random
import statistics
import subprocess
import sys
import time

sys.path.insert(0, "/work/shared/anchors")
try:
    from common import Report, arg  # noqa: E402
except Exception:  # minimal fallback (same output format)
    import json

    def arg(name, default=None, cast=str):
        if f"--{name}" in sys.argv:
            return cast(sys.argv[sys.argv.index(f"--{name}") + 1])
        return default

    class Report:
        def __init__(self, lib, **meta):
            self.d = {"lib": lib, **meta, "times_s": {}, "precision": {}, "info": {}}

        def t(self, name, seconds):
            self.d["times_s"][name] = round(seconds, 9)
            print(f"  {name:38s} {seconds*1e6:12.2f} us", flush=True)

        def i(self, name, value):
            self.d["info"][name] = value
            print(f"  {name:38s} {value}", flush=True)

        def dump(self, path=None):
            s = json.dumps(self.d)
            print("RESULT_JSON " + s, flush=True)
            if path:
                with open(path, "a") as f:
                    f.write(s + "\n")

import tenseal  # noqa: E402
import tenseal.sealapi as seal  # noqa: E402


def cpu_info():
    model = "unknown"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                model = line.split(":", 1)[1].strip()
    except Exception:
        pass
    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except Exception:
        pass
    return model, {k: (k in flags) for k in ("avx2", "avx512f", "avx512ifma")}


def make_context(logn, bits, primes):
    n = 1 << logn
    parms = seal.EncryptionParameters(seal.SCHEME_TYPE.CKKS)
    parms.set_poly_modulus_degree(n)
    parms.set_coeff_modulus(seal.CoeffModulus.Create(n, [bits] * (primes + 1)))
    ctx = seal.SEALContext(parms, True, seal.SEC_LEVEL_TYPE.NONE)
    if not ctx.parameters_set():
        raise RuntimeError(f"SEAL rejected logn={logn} bits={bits} primes={primes}: "
                           f"{ctx.parameters_error_message()}")
    return ctx


def sample(ct, idx):
    a = ct.dyn_array()
    return [a.at(k) for k in idx]


def t_us(rep, name, seconds):
    """Like Report.t but printed in microseconds (per-limb NTTs are far below a millisecond)."""
    rep.d["times_s"][name] = round(seconds, 9)
    print(f"  {name:38s} {seconds*1e6:12.2f} us", flush=True)


def bench_one(logn, bits, primes, min_reps, target_s, rep):
    n = 1 << logn
    ctx = make_context(logn, bits, primes)
    keygen = seal.KeyGenerator(ctx)
    sk = keygen.secret_key()
    enc = seal.Encryptor(ctx, sk)
    ev = seal.Evaluator(ctx)
    ct = seal.Ciphertext(ctx)
    enc.encrypt_zero_symmetric(ct)  # random c1, c0 = -c1*s + e, in NTT form (CKKS)
    L = ct.coeff_modulus_size()
    polys = ct.size()
    assert ct.is_ntt_form() and polys == 2 and ct.poly_modulus_degree() == n
    total = polys * L * n

    # correctness spot check: inverse then forward restores the data exactly, and values are < q_i
    rng = random.Random(1234)
    idx = sorted(rng.sample(range(total), 256))
    before = sample(ct, idx)
    ev.transform_from_ntt_inplace(ct)
    assert not ct.is_ntt_form()
    mid = sample(ct, idx)
    ev.transform_to_ntt_inplace(ct)
    after = sample(ct, idx)
    assert before == after, "SEAL NTT round trip mismatch"
    assert mid != before
    qs = [m.value() for m in ctx.first_context_data().parms().coeff_modulus()]
    assert all(v < qs[(k // n) % L] for v, k in zip(after, idx))

    # warm-up, then alternate inverse / forward (both in place), timing each call
    for _ in range(3):
        ev.transform_from_ntt_inplace(ct)
        ev.transform_to_ntt_inplace(ct)
    t_inv, t_fwd = [], []
    t_start = time.perf_counter()
    while len(t_fwd) < min_reps or time.perf_counter() - t_start < target_s:
        t0 = time.perf_counter()
        ev.transform_from_ntt_inplace(ct)
        t1 = time.perf_counter()
        ev.transform_to_ntt_inplace(ct)
        t2 = time.perf_counter()
        t_inv.append(t1 - t0)
        t_fwd.append(t2 - t1)
        if len(t_fwd) >= 100000:
            break
    assert sample(ct, idx) == before
    per = polys * L
    fwd = statistics.median(t_fwd) / per
    inv = statistics.median(t_inv) / per
    tag = f"N2^{logn}_{bits}bit"
    t_us(rep, f"ntt_fwd_per_limb_{tag}", fwd)
    t_us(rep, f"ntt_inv_per_limb_{tag}", inv)
    rep.i(f"detail_{tag}", {
        "primes_in_ct": L, "polys": polys, "runs": len(t_fwd),
        "ct_fwd_median_ms": round(statistics.median(t_fwd) * 1e3, 4),
        "ct_inv_median_ms": round(statistics.median(t_inv) * 1e3, 4),
        "fwd_per_limb_min_us": round(min(t_fwd) / per * 1e6, 3),
        "inv_per_limb_min_us": round(min(t_inv) / per * 1e6, 3),
        "fwd_per_limb_median_us": round(fwd * 1e6, 3),
        "inv_per_limb_median_us": round(inv * 1e6, 3),
    })


def main():
    logns = [int(x) for x in arg("logn", "12,14,16").split(",")]
    bitss = [int(x) for x in arg("bits", "50,60").split(",")]
    primes = arg("primes", 30, int)
    min_reps = arg("min-reps", 30, int)
    target_s = arg("target-s", 2.0, float)
    out = arg("out", None)
    model, flags = cpu_info()
    rep = Report("SEAL (tenseal.sealapi)", tenseal_version=tenseal.__version__, threads=1,
                 primes_in_ct=primes, unit_note="times_s are per single-prime NTT of one polynomial")
    rep.i("cpu", model)
    rep.i("cpu_flags", flags)
    rep.i("python", platform.python_version())
    rep.i("hexl", "not built in (no hexl symbol/string, no zmm instructions in _sealapi_cpp)")
    print(f"SEAL NTT, tenseal {tenseal.__version__}, {primes} primes per ciphertext, 1 thread",
          flush=True)
    for logn in logns:
        for bits in bitss:
            print(f"N = 2^{logn}, {bits}-bit primes", flush=True)
            bench_one(logn, bits, primes, min_reps, target_s, rep)
    rep.dump(out)


if __name__ == "__main__":
    main()
