//! Remez against Chebyshev interpolation on every target function, and the depth claims of the
//! evaluation plans on the degrees the models use.

use poly_approx::eval::{EvalPlan, LevelModel, PlainEvaluator, SimEvaluator};
use poly_approx::functions::Target;
use poly_approx::poly::depth_for_degree;
use poly_approx::remez::minimax;
use poly_approx::table::target_error_table;

#[test]
fn remez_beats_or_equals_chebyshev_on_every_target() {
    for target in Target::NON_POLYNOMIAL {
        let rows = target_error_table(target, &[3, 7, 15, 31]).unwrap();
        let scale = {
            let i = target.recommended_interval();
            target.eval(i.a()).abs().max(target.eval(i.b()).abs())
        };
        for r in rows {
            let remez = r
                .remez_max_error
                .unwrap_or_else(|| panic!("{} degree {}: no convergence", target.name(), r.degree));
            // Equal up to f64 noise once both are at the rounding floor.
            assert!(
                remez <= r.chebyshev_max_error * (1.0 + 1e-9) + 1e-13 * scale,
                "{} degree {}: remez {remez:e} vs chebyshev {:e}",
                target.name(),
                r.degree,
                r.chebyshev_max_error
            );
        }
    }
}

#[test]
fn plans_for_model_degrees_meet_depth_and_match_clenshaw() {
    let gelu = Target::Gelu;
    let interval = gelu.recommended_interval();
    for degree in [3, 7, 15, 27, 31, 63, 127, 255] {
        let m = match minimax(|x| gelu.eval(x), interval, degree.min(127)) {
            Ok(m) => m.poly,
            Err(e) => panic!("degree {degree}: {e}"),
        };
        // Degree 255 reuses the 127 approximation padded with a small tail to exercise the plan.
        let poly = if degree > 127 {
            let mut c = m.coeffs().to_vec();
            c.resize(degree + 1, 1e-12);
            poly_approx::ChebyshevPoly::new(c, interval).unwrap()
        } else {
            m
        };
        let plan = EvalPlan::new(&poly).unwrap();
        assert_eq!(plan.poly_depth(), depth_for_degree(degree));
        let (used, sim_counts) = plan.simulate(LevelModel::default()).unwrap();
        assert_eq!(used, plan.depth());
        let mut ev = PlainEvaluator::<Vec<f64>>::default();
        let xs: Vec<f64> = (0..=64)
            .map(|k| interval.a() + interval.width() * k as f64 / 64.0)
            .collect();
        let v = ev.encode(xs.clone(), plan.depth());
        let out = plan.evaluate(&mut ev, &v).unwrap();
        assert_eq!(v.level - out.level, used);
        assert_eq!(ev.counts().nonscalar_mults, sim_counts.nonscalar_mults);
        let norm: f64 = poly.coeffs().iter().map(|c| c.abs()).sum();
        for (x, got) in xs.iter().zip(&out.value) {
            assert!(
                (got - poly.eval(*x)).abs() <= 1e-9 * norm,
                "degree {degree} x {x}"
            );
        }
        let mut sim = SimEvaluator::default();
        let s = sim.fresh(plan.depth());
        assert_eq!(plan.evaluate(&mut sim, &s).unwrap().level, 0);
    }
}
