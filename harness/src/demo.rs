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
    println!("\nThe CKKS scheme (encoding, keys, evaluator) builds on this layer next; see the open issues.");
    Ok(())
}
