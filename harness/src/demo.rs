//! The demo: the ring layer of `ckks` at N = 2^16 with a 30-prime RNS basis. It checks what it shows
//! (round trips, products against a schoolbook reference) and prints timings per SIMD backend.

use anyhow::{ensure, Context, Result};
use ckks::math::ntt::reference::negacyclic_mul;
use ckks::math::ntt::NttTable;
use ckks::math::primes::ntt_primes_near;
use ckks::math::simd::Backend;
use ckks::ring::poly::{galois_element_for_rotation, TailDivider};
use ckks::ring::sampling::{gaussian, os_seeded_rng, ternary_hamming, uniform};
use ckks::ring::{Coeff, Ntt, RingBasis, RnsPoly};
use std::time::Instant;

fn time<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let t = Instant::now();
    let out = f();
    (out, t.elapsed().as_secs_f64() * 1e3)
}

/// Median of `reps` timings of `f`, in milliseconds.
fn median_ms(reps: usize, mut f: impl FnMut()) -> f64 {
    let mut v: Vec<f64> = (0..reps).map(|_| time(&mut f).1).collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub fn run(log_n: u32, limbs: usize) -> Result<()> {
    ensure!((10..=17).contains(&log_n), "--log-n must be in 10..=17");
    ensure!((1..=60).contains(&limbs), "--limbs must be in 1..=60");
    let n = 1usize << log_n;
    let cpu: Vec<&str> = Backend::ALL
        .iter()
        .filter(|b| b.is_available())
        .map(|b| b.name())
        .collect();
    println!("== ckks ring layer demo: N = 2^{log_n}, {limbs} primes ==");
    println!(
        "SIMD backends on this CPU: {} (using {})",
        cpu.join(", "),
        Backend::detect().name()
    );
    println!("threads (rayon): {}", rayon::current_num_threads());

    // 1. A modulus chain as CKKS uses it: primes near 2^49 (below 2^50, so the IFMA kernel takes them).
    let (built, ms) = time(|| -> Result<_> {
        let primes = ntt_primes_near(49, n, limbs, &[])?;
        let basis = RingBasis::new(n, &primes)?;
        Ok((primes, basis))
    });
    let (primes, basis) = built.context("building the modulus chain")?;
    let log_q: f64 = primes.iter().map(|&q| (q as f64).log2()).sum();
    println!("\n1. {limbs} NTT-friendly primes near 2^49 (log2 Q = {log_q:.1}) + NTT tables: {ms:.1} ms");
    println!("   first primes: {:?}", &primes[..primes.len().min(3)]);

    // 2. NTT round trip and timings per backend, on one prime and on the whole RNS polynomial.
    let mut rng = os_seeded_rng();
    let a: RnsPoly<Coeff> = uniform(&basis, &mut rng);
    println!("\n2. NTT of one limb (N = {n}), median of 21 runs, single thread:");
    for backend in Backend::ALL.into_iter().filter(|b| b.is_available()) {
        let t = NttTable::with_backend(primes[0], n, backend)?;
        let mut x = a.limb(0).context("limb 0")?.to_vec();
        let fwd = median_ms(21, || {
            let _ = t.forward(&mut x);
            let _ = t.inverse(&mut x);
        });
        ensure!(
            x == a.limb(0).context("limb 0")?,
            "round trip failed on {}",
            backend.name()
        );
        let mut y = x.clone();
        let f = median_ms(21, || {
            let _ = t.forward(&mut y);
        });
        println!(
            "   {:>10}: forward {:7.3} ms, forward+inverse {:7.3} ms, round trip exact{}",
            backend.name(),
            f,
            fwd,
            if t.backend() == backend {
                String::new()
            } else {
                format!(" (ran as {})", t.backend().name())
            }
        );
    }
    let (an, ms_fwd) = time(|| a.clone().into_ntt());
    let (back, ms_inv) = time(|| an.clone().into_coeff());
    ensure!(back == a, "RNS round trip failed");
    println!("   whole RNS polynomial ({limbs} limbs, all threads): forward {ms_fwd:.1} ms, inverse {ms_inv:.1} ms");

    // 3. The NTT product is the negacyclic product: check one limb against the schoolbook at N = 2^10.
    let small = RingBasis::new(1024, &ntt_primes_near(50, 1024, 2, &[])?)?;
    let (x, y): (RnsPoly<Coeff>, RnsPoly<Coeff>) = (uniform(&small, &mut rng), uniform(&small, &mut rng));
    let prod = x.clone().into_ntt().mul(&y.clone().into_ntt())?.into_coeff();
    let m = small.moduli()[0];
    let school = negacyclic_mul(x.limb(0).context("limb")?, y.limb(0).context("limb")?, &m);
    ensure!(
        prod.limb(0).context("limb")? == &school[..],
        "NTT product differs from schoolbook"
    );
    println!("\n3. NTT product == schoolbook negacyclic product (N = 1024): yes");

    // 4. Automorphisms (slot rotations and conjugation act through these) commute with the NTT.
    let g = galois_element_for_rotation(1, n);
    let (rot_ntt, ms_aut) = time(|| an.automorphism(g));
    let rot_ntt = rot_ntt?;
    ensure!(
        a.automorphism(g)?.into_ntt() == rot_ntt,
        "automorphism does not commute with the NTT"
    );
    println!(
        "\n4. X -> X^5 (rotation by one slot): NTT-form permutation {ms_aut:.1} ms; commutes with NTT: yes"
    );

    // 5. Rescaling: exact rounding division by the last prime, in NTT form.
    let div = TailDivider::new(&basis, 1)?;
    let (_r, ms_rs): (RnsPoly<Ntt>, f64) = {
        let (r, ms) = time(|| div.divide_round_ntt(&an));
        (r?, ms)
    };
    println!(
        "\n5. Rescale (divide by q_last with rounding, NTT form, {limbs} -> {} limbs): {ms_rs:.1} ms",
        limbs - 1
    );

    // 6. Samplers from the OS-seeded ChaCha20.
    let e = gaussian(n, &mut rng);
    let mean = e.iter().sum::<i64>() as f64 / n as f64;
    let var = e.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n as f64;
    let s = ternary_hamming(n, 192, &mut rng)?;
    println!(
        "\n6. Gaussian (sigma 3.2, |e| <= 19): mean {mean:+.3}, std {:.3}, max |e| {}; sparse ternary secret: weight {}",
        var.sqrt(),
        e.iter().map(|v| v.abs()).max().unwrap_or(0),
        s.iter().filter(|&&v| v != 0).count()
    );
    encrypted_demo()
}

/// An encrypted computation at the secure N = 2^16 preset: (x * y) rotated by one slot.
fn encrypted_demo() -> Result<()> {
    use ckks::params::Parameters;
    use ckks::rlwe::{Encryptor, KeyGenerator};
    use ckks::scheme::evaluator::{decrypt_ckks, CkksEncoder, CkksEncryptor, EvaluationKeys, Evaluator};
    use rustfft::num_complex::Complex64;
    use std::sync::Arc;

    let (params, ms) = time(Parameters::n16_depth24);
    let params = params?;
    println!(
        "\n7. CKKS at the secure preset: N = 2^16, {} levels, scale 2^45, log2 QP = {:.0} <= 1747 (128-bit): {ms:.0} ms",
        params.max_level(),
        params.log_qp()
    );
    let mut rng = os_seeded_rng();
    let kg = KeyGenerator::new(&params);
    let (generated, ms_keys) = time(|| -> Result<_> {
        let sk = kg.gen_secret_key(&mut rng)?;
        let pk = kg.gen_public_key(&sk, &mut rng)?;
        let g = galois_element_for_rotation(1, params.n());
        let mut keys = EvaluationKeys {
            relin: Some(kg.gen_relin_key(&sk, &mut rng)?),
            ..Default::default()
        };
        keys.galois.insert(g, kg.gen_galois_key(&sk, g, &mut rng)?);
        Ok((sk, pk, keys))
    });
    let (sk, pk, keys) = generated?;
    let eval = Evaluator::new(&params, Arc::new(keys));
    let enc = CkksEncoder::new(&params)?;
    let slots = params.max_slots();
    let x: Vec<Complex64> = (0..slots)
        .map(|i| Complex64::new((i as f64 * 0.001).sin(), 0.0))
        .collect();
    let y: Vec<Complex64> = (0..slots)
        .map(|i| Complex64::new((i as f64 * 0.002).cos(), 0.0))
        .collect();
    let encryptor = CkksEncryptor(Encryptor::Public(pk));
    let level = params.max_level();
    let (cts, ms_enc) = time(|| -> Result<_> {
        let cx = encryptor.encrypt(&enc.encode(&x, level, params.default_scale())?, &mut rng)?;
        let cy = encryptor.encrypt(&enc.encode(&y, level, params.default_scale())?, &mut rng)?;
        Ok((cx, cy))
    });
    let (cx, cy) = cts?;
    let (prod, ms_mul) = time(|| eval.mul_relin(&cx, &cy));
    let (prod, ms_rs) = time(|| eval.rescale(&prod?));
    let (rot, ms_rot) = time(|| eval.rotate(&prod?, 1));
    let (got, ms_dec) = time(|| -> Result<_> { Ok(enc.decode(&decrypt_ckks(&sk, &rot?)?)?) });
    let got = got?;
    let err = (0..slots)
        .map(|i| (x[(i + 1) % slots] * y[(i + 1) % slots] - got[i]).norm())
        .fold(0.0f64, f64::max);
    println!(
        "   keys: secret, public, relinearization, rotation by 1 (dnum = {}): {ms_keys:.0} ms",
        (level + 1).div_ceil(params.p().len())
    );
    println!("   encode + encrypt two vectors of {slots} slots: {ms_enc:.0} ms");
    println!("   ct x ct + relinearize: {ms_mul:.0} ms; rescale: {ms_rs:.0} ms; rotate by 1: {ms_rot:.0} ms");
    println!("   decrypt + decode: {ms_dec:.0} ms");
    println!(
        "   slot 0: got {:+.8}, expected {:+.8}",
        got[0].re,
        (x[1] * y[1]).re
    );
    println!(
        "   precision of (x * y) rotated by 1 over all slots: {:.1} bits (max error 2^{:.1})",
        -err.log2(),
        err.log2()
    );
    println!(
        "\nBootstrapping at this ring size: `cargo run --release -p harness -- run bootstrap --preset cpu`."
    );
    println!("Next: training the polynomial transformers and running them encrypted (see the open issues).");
    Ok(())
}
