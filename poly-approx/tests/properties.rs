//! Property tests: Clenshaw, monomial conversion and the BSGS plan agree on random polynomials.

use poly_approx::eval::{EvalPlan, LevelModel, SimEvaluator};
use poly_approx::{ChebyshevPoly, Interval};
use proptest::prelude::*;

fn horner(m: &[f64], x: f64) -> f64 {
    m.iter().rev().fold(0.0, |acc, &c| acc * x + c)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn clenshaw_monomial_and_bsgs_agree(
        coeffs in prop::collection::vec(-1.0f64..1.0, 1..40),
        a in -5.0f64..5.0,
        width in 0.1f64..10.0,
        ts in prop::collection::vec(0.0f64..=1.0, 1..8),
    ) {
        let interval = Interval::new(a, a + width).unwrap();
        let p = ChebyshevPoly::new(coeffs.clone(), interval).unwrap();
        let plan = EvalPlan::new(&p).unwrap();
        let coeff_sum: f64 = coeffs.iter().map(|c| c.abs()).sum();
        let mono = p.to_unit_monomial();
        let mono_sum: f64 = mono.iter().map(|c| c.abs()).sum();
        for t in ts {
            let x = interval.from_unit(2.0 * t - 1.0);
            let clenshaw = p.eval(x);
            let bsgs = plan.eval_f64(x).unwrap();
            prop_assert!((bsgs - clenshaw).abs() <= 1e-9 * (1.0 + coeff_sum), "bsgs {} vs {}", bsgs, clenshaw);
            // The monomial basis loses accuracy in proportion to its coefficient size.
            let via_monomial = horner(&mono, interval.to_unit(x));
            prop_assert!(
                (via_monomial - clenshaw).abs() <= 1e-12 * (mono_sum + coeff_sum),
                "monomial {} vs {}", via_monomial, clenshaw
            );
        }
        // The simulator confirms the plan's depth and product count.
        let (used, counts) = plan.simulate(LevelModel::default()).unwrap();
        prop_assert_eq!(used, plan.depth());
        prop_assert_eq!(counts.nonscalar_mults, plan.nonscalar_mults());
        let mut sim = SimEvaluator::default();
        let x = sim.fresh(plan.depth());
        prop_assert!(plan.evaluate(&mut sim, &x).is_ok());
    }
}
