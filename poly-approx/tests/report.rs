//! Prints the headline numbers (not a check): run with
//! `cargo test -p poly-approx --test report -- --ignored --nocapture`.

use poly_approx::composite::{CompositeSign, Objective};
use poly_approx::functions::Target;
use poly_approx::newton::{NewtonApprox, NewtonKind};
use poly_approx::table::target_error_table;
use poly_approx::Interval;

#[test]
#[ignore = "prints a report"]
fn report() {
    for target in Target::NON_POLYNOMIAL {
        let i = target.recommended_interval();
        println!("{} on [{}, {}]", target.name(), i.a(), i.b());
        for r in target_error_table(target, &[3, 7, 15, 31, 63, 127]).unwrap() {
            println!(
                "  d={:3} depth={}+{} mults={:2} chebyshev={:.3e} remez={}",
                r.degree,
                r.depth,
                r.input_map_depth,
                r.nonscalar_mults,
                r.chebyshev_max_error,
                r.remez_max_error.map_or("-".to_string(), |e| format!("{e:.3e}"))
            );
        }
    }
    for (e, p) in [(-8, -10), (-6, -8), (-10, -20), (-12, -16)] {
        for obj in [Objective::Depth, Objective::Mults] {
            let s = CompositeSign::design(2f64.powi(e), 2f64.powi(p), obj).unwrap();
            println!(
                "sign eps=2^{e} precision=2^{p} {obj:?}: degrees {:?} depth {} mults {} error {:.3e}",
                s.degrees(),
                s.depth(),
                s.nonscalar_mults(),
                s.error_bound()
            );
        }
    }
    let i = Interval::new(0.01, 1.0).unwrap();
    for kind in [NewtonKind::InverseSqrt, NewtonKind::Inverse] {
        for t in [1e-3, 1e-6, 1e-9] {
            let a = NewtonApprox::design(kind, i, t).unwrap();
            println!(
                "{kind:?} on [0.01, 1] target {t:e}: degree {} + {} steps, error {:.3e}, depth {}, mults {}",
                a.initial().degree(),
                a.steps(),
                a.relative_error(),
                a.depth(),
                a.nonscalar_mults()
            );
        }
    }
}
