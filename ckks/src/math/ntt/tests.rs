use super::*;
use crate::math::ntt::reference::{evaluate, negacyclic_mul};
use crate::math::primes::ntt_primes_below;
use proptest::prelude::*;

/// Primes of every size we ship: small (IFMA-eligible) and full 61-bit ones.
fn primes_for(n: usize) -> Vec<u64> {
    let mut v = Vec::new();
    for bits in [20u32, 30, 40, 50, 55, 60, 61] {
        if (1u64 << bits) > 4 * n as u64 {
            if let Ok(p) = ntt_primes_below(bits, n, 1) {
                v.extend(p);
            }
        }
    }
    v
}

fn available_backends() -> Vec<Backend> {
    let v: Vec<_> = Backend::ALL.into_iter().filter(|b| b.is_available()).collect();
    eprintln!("NTT backends under test: {:?}", v);
    v
}

fn poly_with_edges(seed: u64, n: usize, q: u64) -> Vec<u64> {
    // Random values, with 0 and q-1 sprinkled in (the edge values of the lazy bounds).
    let mut s = seed | 1;
    (0..n)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            match i % 7 {
                0 => 0,
                1 => q - 1,
                _ => s % q,
            }
        })
        .collect()
}

#[test]
fn forward_is_evaluation_at_odd_powers_of_psi_in_bit_reversed_order() {
    for log_n in [1u32, 2, 3, 4, 5, 6] {
        let n = 1 << log_n;
        for q in primes_for(n) {
            let t = NttTable::with_backend(q, n, Backend::Scalar).unwrap();
            let m = *t.modulus();
            let a = poly_with_edges(q ^ n as u64, n, q);
            let mut f = a.clone();
            t.forward(&mut f).unwrap();
            for (k, &fk) in f.iter().enumerate() {
                let e = 2 * bit_reverse(k, log_n) as u64 + 1;
                assert_eq!(fk, evaluate(&a, m.pow(t.psi(), e), &m), "n={n} q={q} k={k}");
            }
        }
    }
}

#[test]
fn all_backends_agree_bit_for_bit_on_every_size() {
    for backend in available_backends() {
        for log_n in 1..=17u32 {
            let n = 1usize << log_n;
            for q in primes_for(n) {
                let reference = NttTable::with_backend(q, n, Backend::Scalar).unwrap();
                let t = NttTable::with_backend(q, n, backend).unwrap();
                let a = poly_with_edges(q.rotate_left(log_n), n, q);
                let (mut x, mut y) = (a.clone(), a.clone());
                reference.forward(&mut x).unwrap();
                t.forward(&mut y).unwrap();
                assert_eq!(x, y, "forward {backend:?} n={n} q={q}");
                reference.inverse(&mut x).unwrap();
                t.inverse(&mut y).unwrap();
                assert_eq!(x, y, "inverse {backend:?} n={n} q={q}");
                assert_eq!(x, a, "round trip {backend:?} n={n} q={q}");
            }
        }
    }
}

#[test]
fn inverse_accepts_lazy_input_below_2q() {
    let n = 64;
    for backend in available_backends() {
        for q in primes_for(n) {
            let t = NttTable::with_backend(q, n, backend).unwrap();
            let a = poly_with_edges(7, n, q);
            let mut lazy: Vec<u64> = a
                .iter()
                .enumerate()
                .map(|(i, &x)| if i % 2 == 0 { x + q } else { x })
                .collect();
            let mut exact = a.clone();
            t.inverse(&mut lazy).unwrap();
            t.inverse(&mut exact).unwrap();
            assert_eq!(lazy, exact);
        }
    }
}

#[test]
fn bad_input_is_an_error() {
    assert!(matches!(
        NttTable::new(12289, 1000),
        Err(Error::InvalidRingDegree { .. })
    ));
    assert!(matches!(
        NttTable::new(12289, 1 << 18),
        Err(Error::InvalidRingDegree { .. })
    ));
    assert!(matches!(
        NttTable::new(97, 1024),
        Err(Error::NotNttFriendly { .. })
    ));
    assert!(matches!(NttTable::new(12288, 1024), Err(Error::NotPrime { .. })));
    let t = NttTable::new(12289, 1024).unwrap();
    let mut short = vec![0u64; 1023];
    assert!(matches!(
        t.forward(&mut short),
        Err(Error::LengthMismatch {
            expected: 1024,
            got: 1023
        })
    ));
    assert!(matches!(t.inverse(&mut short), Err(Error::LengthMismatch { .. })));
}

#[test]
fn ifma_falls_back_for_large_primes() {
    if !Backend::Avx512Ifma.is_available() {
        eprintln!("no AVX-512 IFMA on this CPU: fallback check skipped");
        return;
    }
    let big = ntt_primes_below(60, 1024, 1).unwrap()[0];
    let small = ntt_primes_below(50, 1024, 1).unwrap()[0];
    assert_eq!(
        NttTable::with_backend(big, 1024, Backend::Avx512Ifma)
            .unwrap()
            .backend(),
        Backend::Avx2
    );
    assert_eq!(
        NttTable::with_backend(small, 1024, Backend::Avx512Ifma)
            .unwrap()
            .backend(),
        Backend::Avx512Ifma
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn ntt_product_equals_schoolbook(log_n in 1u32..=7, bits in prop::sample::select(vec![20u32, 40, 50, 60, 61]),
                                     seed_a: u64, seed_b: u64) {
        let n = 1usize << log_n;
        let q = ntt_primes_below(bits, n, 1).unwrap()[0];
        let a = poly_with_edges(seed_a, n, q);
        let b = poly_with_edges(seed_b, n, q);
        let expected = negacyclic_mul(&a, &b, &Modulus::new(q).unwrap());
        for backend in Backend::ALL.into_iter().filter(|b| b.is_available()) {
            let t = NttTable::with_backend(q, n, backend).unwrap();
            let (mut fa, mut fb) = (a.clone(), b.clone());
            t.forward(&mut fa).unwrap();
            t.forward(&mut fb).unwrap();
            let mut prod: Vec<u64> = fa.iter().zip(&fb).map(|(&x, &y)| t.modulus().mul(x, y)).collect();
            t.inverse(&mut prod).unwrap();
            prop_assert_eq!(&prod, &expected, "backend {:?}", backend);
        }
    }

    #[test]
    fn simd_equals_scalar_on_random_input(log_n in 3u32..=12, bits in prop::sample::select(vec![30u32, 45, 50, 58, 61]),
                                          values in prop::collection::vec(any::<u64>(), 4096)) {
        let n = 1usize << log_n;
        let q = ntt_primes_below(bits, n, 1).unwrap()[0];
        let a: Vec<u64> = values[..n].iter().map(|v| v % q).collect();
        let reference = NttTable::with_backend(q, n, Backend::Scalar).unwrap();
        let (mut x, mut xi) = (a.clone(), a.clone());
        reference.forward(&mut x).unwrap();
        reference.inverse(&mut xi).unwrap();
        for backend in Backend::ALL.into_iter().filter(|b| b.is_available()) {
            let t = NttTable::with_backend(q, n, backend).unwrap();
            let (mut y, mut yi) = (a.clone(), a.clone());
            t.forward(&mut y).unwrap();
            t.inverse(&mut yi).unwrap();
            prop_assert_eq!(&x, &y);
            prop_assert_eq!(&xi, &yi);
        }
    }
}
