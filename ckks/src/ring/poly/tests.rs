use super::*;
use crate::math::ntt::reference::negacyclic_mul;
use crate::math::primes::ntt_primes_below;
use crate::ring::sampling::uniform;
use num_bigint::BigInt;
use num_traits::{Signed, Zero};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn ring(n: usize, limbs: usize, bits: u32) -> Arc<RingBasis> {
    RingBasis::new(n, &ntt_primes_below(bits, n, limbs).unwrap()).unwrap()
}

fn random<R: Repr>(basis: &Arc<RingBasis>, seed: u64) -> RnsPoly<R> {
    uniform(basis, &mut ChaCha20Rng::seed_from_u64(seed))
}

/// Floor division rounding half up, the convention of `TailDivider`: floor((x + floor(p/2)) / p).
fn round_div(x: &BigInt, p: &BigInt) -> BigInt {
    let half: BigInt = p >> 1;
    let y = x + half;
    let (d, r) = (&y / p, &y % p);
    if r.is_negative() {
        d - 1
    } else {
        d
    }
}

#[test]
fn ntt_form_product_is_negacyclic_product_mod_q() {
    let basis = ring(32, 3, 55);
    let a: RnsPoly<Coeff> = random(&basis, 1);
    let b: RnsPoly<Coeff> = random(&basis, 2);
    let prod = a
        .clone()
        .into_ntt()
        .mul(&b.clone().into_ntt())
        .unwrap()
        .into_coeff();
    for (i, m) in basis.moduli().iter().enumerate() {
        let expected = negacyclic_mul(a.limb(i).unwrap(), b.limb(i).unwrap(), m);
        assert_eq!(prod.limb(i).unwrap(), &expected[..]);
    }
    // mul_then_add agrees with mul followed by add.
    let (an, bn) = (a.into_ntt(), b.into_ntt());
    let mut acc = an.clone();
    acc.mul_then_add_assign(&an, &bn).unwrap();
    assert_eq!(acc, an.add(&an.mul(&bn).unwrap()).unwrap());
}

#[test]
fn signed_and_bigint_constructors_agree_with_crt() {
    let basis = ring(16, 4, 50);
    let coeffs: Vec<i64> = (0..16).map(|i| (i as i64 - 8) * 1_000_000_007).collect();
    let p = RnsPoly::from_signed(&basis, &coeffs).unwrap();
    let centered = p.to_centered_bigint();
    assert_eq!(
        centered,
        coeffs.iter().map(|&c| BigInt::from(c)).collect::<Vec<_>>()
    );
    let q = BigInt::from(basis.rns().product());
    let big: Vec<BigInt> = (0..16).map(|i| &q / 3 - BigInt::from(i) * &q / 7).collect();
    let p2 = RnsPoly::from_bigint(&basis, &big).unwrap();
    let back = p2.to_centered_bigint();
    for (x, y) in big.iter().zip(&back) {
        assert!(((x - y) % &q).is_zero());
    }
}

#[test]
fn bad_input_is_an_error() {
    let a3 = ring(16, 3, 40);
    let b3 = ring(16, 3, 41);
    let x: RnsPoly<Ntt> = random(&a3, 1);
    let y: RnsPoly<Ntt> = random(&b3, 2);
    assert!(matches!(x.add(&y), Err(Error::BasisMismatch { .. })));
    assert!(matches!(x.mul(&y), Err(Error::BasisMismatch { .. })));
    assert!(matches!(
        x.automorphism(4),
        Err(Error::InvalidGaloisElement { .. })
    ));
    assert!(matches!(
        RnsPoly::<Coeff>::from_limbs(&a3, vec![0; 47]),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        RnsPoly::<Coeff>::from_limbs(&a3, vec![u64::MAX; 48]),
        Err(Error::OutOfRange { .. })
    ));
    assert!(matches!(
        RnsPoly::from_signed(&a3, &[1, 2]),
        Err(Error::LengthMismatch { .. })
    ));
    let mut z = x.clone();
    assert!(z.drop_last_limbs(3).is_err());
    assert!(z.truncate_to(&b3).is_err());
    assert!(TailDivider::new(&a3, 0).is_err());
    assert!(TailDivider::new(&a3, 3).is_err());
    let d = TailDivider::new(&a3, 1).unwrap();
    assert!(matches!(d.divide_round_ntt(&y), Err(Error::BasisMismatch { .. })));
    let other_degree = ring(32, 3, 40);
    let w: RnsPoly<Ntt> = random(&other_degree, 3);
    assert!(x.add(&w).is_err());
}

#[test]
fn drop_last_limbs_keeps_residues() {
    let basis = ring(16, 4, 40);
    let x: RnsPoly<Ntt> = random(&basis, 9);
    let mut y = x.clone();
    y.drop_last_limbs(2).unwrap();
    assert_eq!(y.num_limbs(), 2);
    assert_eq!(y.as_slice(), &x.as_slice()[..32]);
}

#[test]
fn rotation_galois_elements() {
    let n = 1 << 10;
    assert_eq!(galois_element_for_rotation(0, n), 1);
    assert_eq!(galois_element_for_rotation(1, n), 5);
    // 5 has order N/2 mod 2N: rotating by N/2 is the identity, by -1 is 5^(N/2 - 1).
    assert_eq!(galois_element_for_rotation((n / 2) as i64, n), 1);
    let g_minus = galois_element_for_rotation(-1, n);
    assert_eq!(g_minus * 5 % (2 * n as u64), 1);
    assert_eq!(galois_element_for_conjugation(n), 2 * n as u64 - 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn ntt_round_trip(log_n in 1u32..=11, limbs in 1usize..4, seed: u64) {
        let basis = ring(1 << log_n, limbs, 45);
        let a: RnsPoly<Coeff> = random(&basis, seed);
        prop_assert_eq!(a.clone().into_ntt().into_coeff(), a);
    }

    #[test]
    fn automorphisms_compose_and_commute_with_ntt(log_n in 2u32..=10, g in any::<u64>(), h in any::<u64>(), seed: u64) {
        let n = 1usize << log_n;
        let two_n = 2 * n as u64;
        let (g, h) = ((g % two_n) | 1, (h % two_n) | 1);
        let basis = ring(n, 2, 40);
        let a: RnsPoly<Coeff> = random(&basis, seed);
        // sigma_g then NTT == NTT then sigma_g
        let lhs = a.automorphism(g).unwrap().into_ntt();
        let rhs = a.clone().into_ntt().automorphism(g).unwrap();
        prop_assert_eq!(&lhs, &rhs);
        // sigma_h(sigma_g(a)) == sigma_{gh}(a): (a(X^g))(X^h) = a(X^{gh})
        let gh = (g as u128 * h as u128 % two_n as u128) as u64;
        prop_assert_eq!(a.automorphism(g).unwrap().automorphism(h).unwrap(), a.automorphism(gh).unwrap());
        let an = a.clone().into_ntt();
        prop_assert_eq!(an.automorphism(g).unwrap().automorphism(h).unwrap(), an.automorphism(gh).unwrap());
        // Conjugation is an involution; sigma_1 is the identity.
        let c = galois_element_for_conjugation(n);
        prop_assert_eq!(a.automorphism(c).unwrap().automorphism(c).unwrap(), a.clone());
        prop_assert_eq!(a.automorphism(1).unwrap(), a.clone());
        // Automorphisms are ring homomorphisms: sigma(a b) = sigma(a) sigma(b).
        let b: RnsPoly<Coeff> = random(&basis, seed ^ 1);
        let ab = an.mul(&b.clone().into_ntt()).unwrap();
        prop_assert_eq!(ab.automorphism(g).unwrap(),
            an.automorphism(g).unwrap().mul(&b.into_ntt().automorphism(g).unwrap()).unwrap());
    }

    #[test]
    fn automorphism_matches_bigint_definition(log_n in 1u32..=6, g in any::<u64>(), seed: u64) {
        let n = 1usize << log_n;
        let g = (g % (2 * n as u64)) | 1;
        let basis = ring(n, 2, 40);
        let a: RnsPoly<Coeff> = random(&basis, seed);
        let coeffs = a.to_centered_bigint();
        let mut expected = vec![BigInt::zero(); n];
        for (i, c) in coeffs.iter().enumerate() {
            let e = (i as u64 * g) % (2 * n as u64);
            if (e as usize) < n { expected[e as usize] += c; } else { expected[e as usize - n] -= c; }
        }
        prop_assert_eq!(a.automorphism(g).unwrap(), RnsPoly::from_bigint(&basis, &expected).unwrap());
    }

    #[test]
    fn rescale_by_last_prime_is_exact_rounding(limbs in 2usize..5, seed: u64) {
        let basis = ring(16, limbs, 50);
        let x: RnsPoly<Coeff> = random(&basis, seed);
        let d = TailDivider::new(&basis, 1).unwrap();
        let y = d.divide_round(&x).unwrap();
        let ql = BigInt::from(basis.moduli()[limbs - 1].value());
        let expected: Vec<BigInt> = x.to_biguint().iter().map(|v| round_div(&BigInt::from(v.clone()), &ql)).collect();
        prop_assert_eq!(&y, &RnsPoly::from_bigint(d.head(), &expected).unwrap());
        // The NTT-form path gives the same polynomial.
        let yn = d.divide_round_ntt(&x.clone().into_ntt()).unwrap().into_coeff();
        prop_assert_eq!(yn, y);
    }

    #[test]
    fn mod_down_by_special_primes_is_exact_rounding(q_limbs in 1usize..4, p_limbs in 1usize..4, seed: u64) {
        let n = 16;
        let basis = ring(n, q_limbs + p_limbs, 55);
        let x: RnsPoly<Coeff> = random(&basis, seed);
        let d = TailDivider::new(&basis, p_limbs).unwrap();
        let y = d.divide_round(&x).unwrap();
        let p: BigInt = basis.moduli()[q_limbs..].iter().fold(BigInt::from(1), |acc, m| acc * m.value());
        let q_head = BigInt::from(d.head().rns().product());
        let got = y.to_biguint();
        for (xv, yv) in x.to_biguint().iter().zip(&got) {
            let r = round_div(&BigInt::from(xv.clone()), &p);
            prop_assert!(((&r - BigInt::from(yv.clone())) % &q_head).is_zero());
        }
        let yn = d.divide_round_ntt(&x.into_ntt()).unwrap().into_coeff();
        prop_assert_eq!(yn, y);
    }

    #[test]
    fn basis_extension_of_polys(q_limbs in 1usize..4, p_limbs in 1usize..3, seed: u64) {
        let n = 8;
        let all = ring(n, q_limbs + p_limbs, 52);
        let q = all.sub_basis(0..q_limbs).unwrap();
        let p = all.sub_basis(q_limbs..q_limbs + p_limbs).unwrap();
        let x: RnsPoly<Coeff> = random(&q, seed);
        let ext = q.extender_to(&p).unwrap();
        let y = x.extend_basis(&ext, &p).unwrap();
        let qv = q.rns().product();
        for (xv, yv) in x.to_biguint().iter().zip(y.to_biguint()) {
            // y = x + alpha Q (as residues mod P) for some 0 <= alpha < |Q|
            let ok = (0..q_limbs as u64).any(|alpha| p.rns().decompose(&(xv + &qv * alpha)) == p.rns().decompose(&yv));
            prop_assert!(ok);
        }
        // Wrong target ring: typed error.
        prop_assert!(x.extend_basis(&ext, &q).is_err());
    }

    #[test]
    fn add_sub_neg_scalar_are_consistent(limbs in 1usize..4, c: u64, seed: u64) {
        let basis = ring(64, limbs, 60);
        let a: RnsPoly<Ntt> = random(&basis, seed);
        let b: RnsPoly<Ntt> = random(&basis, seed ^ 7);
        prop_assert_eq!(a.add(&b).unwrap().sub(&b).unwrap(), a.clone());
        let mut na = a.clone();
        na.neg_assign();
        prop_assert_eq!(na.add(&a).unwrap(), RnsPoly::zero(&basis));
        let mut s = a.clone();
        s.mul_scalar_assign(c);
        let mut s2 = a.clone();
        let residues: Vec<u64> = basis.moduli().iter().map(|m| c % m.value()).collect();
        s2.mul_rns_scalar_assign(&residues).unwrap();
        prop_assert_eq!(&s, &s2);
        for (i, m) in basis.moduli().iter().enumerate() {
            for (x, y) in s.limb(i).unwrap().iter().zip(a.limb(i).unwrap()) {
                prop_assert_eq!(*x, m.mul(*y, c));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The fast small-coefficient reconstruction agrees with the big-integer twin, answers for small
    /// coefficients whatever the limb count, and refuses (None) when a coefficient is too large.
    #[test]
    fn small_reconstruction_matches_bigint(limbs in 1usize..6, seed: u64, big in any::<bool>()) {
        let basis = ring(16, limbs, 50);
        let mut s = seed | 1;
        let coeffs: Vec<i64> = (0..16).map(|i| {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            match i { 0 => 0, 1 => -1, 2 => i64::MIN + 1, 3 => i64::MAX, _ => s as i64 }
        }).collect();
        let p = RnsPoly::from_signed(&basis, &coeffs).unwrap();
        let reference = p.to_centered_bigint();
        if limbs >= 2 {
            // 64-bit coefficients fit two 50-bit primes: always answered, and exactly.
            let fast = p.to_centered_small().unwrap();
            prop_assert_eq!(fast.iter().map(|&x| BigInt::from(x)).collect::<Vec<_>>(), reference.clone());
        }
        if big && limbs >= 3 {
            // One coefficient near Q/3 does not fit q0 q1: the fast path must refuse.
            let q = BigInt::from(basis.rns().product());
            let mut bigs: Vec<BigInt> = coeffs.iter().map(|&c| BigInt::from(c)).collect();
            bigs[5] = &q / 3;
            let pb = RnsPoly::from_bigint(&basis, &bigs).unwrap();
            prop_assert!(pb.to_centered_small().is_none());
        }
        if limbs == 1 {
            let fast = p.to_centered_small().unwrap();
            prop_assert_eq!(fast.iter().map(|&x| BigInt::from(x)).collect::<Vec<_>>(), reference);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// The fused pair of sums of products equals a loop of fused multiply-adds (its reference twin),
    /// for term counts on both sides of the IFMA kernel's group size, with 50-bit (IFMA) and 60-bit
    /// (scalar) primes.
    #[test]
    fn dot_pair_matches_multiply_add_loop(terms in 1usize..36, wide: bool, seed: u64) {
        let basis = ring(64, 3, if wide { 60 } else { 50 });
        let poly = |k: u64| -> RnsPoly<Ntt> { random(&basis, seed.wrapping_add(k)) };
        let (a, b, e): (Vec<_>, Vec<_>, Vec<_>) = (
            (0..terms as u64).map(poly).collect(),
            (100..100 + terms as u64).map(poly).collect(),
            (200..200 + terms as u64).map(poly).collect(),
        );
        fn refs(v: &[RnsPoly<Ntt>]) -> Vec<&RnsPoly<Ntt>> {
            v.iter().collect()
        }
        let (r0, r1) = RnsPoly::dot_pair(&refs(&a), &refs(&b), &refs(&e)).unwrap();
        let (mut t0, mut t1) = (RnsPoly::<Ntt>::zero(&basis), RnsPoly::<Ntt>::zero(&basis));
        for i in 0..terms {
            t0.mul_then_add_assign(&a[i], &b[i]).unwrap();
            t1.mul_then_add_assign(&a[i], &e[i]).unwrap();
        }
        prop_assert_eq!(r0, t0);
        prop_assert_eq!(r1, t1);
    }
}

#[test]
fn dot_pair_refuses_mismatches() {
    let basis = ring(16, 2, 50);
    let other = ring(16, 3, 50);
    let (x, y): (RnsPoly<Ntt>, RnsPoly<Ntt>) = (random(&basis, 1), random(&other, 2));
    assert!(RnsPoly::dot_pair(&[], &[], &[]).is_err());
    assert!(RnsPoly::dot_pair(&[&x], &[&x, &x], &[&x]).is_err());
    assert!(RnsPoly::dot_pair(&[&x], &[&y], &[&x]).is_err());
}
