//! Operation costs measured on the spot, and the time predictions made from them: the planner's
//! operation counts times these costs, before anything runs.

use anyhow::Result;
use ckks::params::Parameters;
use ckks::scheme::evaluator::{LeveledOpCounts, OpCounts};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use transformer::encrypted::{ForwardProfile, WorkKind};

/// Seconds per operation at one level, measured on throwaway keys (see [`calibrate`]).
#[derive(Debug, Clone, Copy)]
pub struct OpCosts {
    /// The level measured at.
    pub level: usize,
    /// A rotation: one decomposition and one key switch.
    pub rotation: f64,
    /// Each further rotation of a hoisted batch (its key switch without the decomposition).
    pub hoisted_extra: f64,
    /// A ciphertext product with relinearization.
    pub mul_relin: f64,
    /// A ciphertext-plaintext product.
    pub mul_plain: f64,
    /// A rescale.
    pub rescale: f64,
}

impl OpCosts {
    /// Predicted seconds for `c`: each decomposition at the price of a rotation minus a hoisted
    /// key switch, each key switch at the hoisted price, each product's tensoring at a product minus a
    /// rotation (a relinearization is a key switch), and the products by plaintexts and rescales.
    pub fn predict(&self, c: &OpCounts) -> f64 {
        let modup = (self.rotation - self.hoisted_extra).max(0.0);
        let tensor = (self.mul_relin - self.rotation).max(0.0);
        c.decompositions as f64 * modup
            + c.key_switches as f64 * self.hoisted_extra
            + c.ct_mults as f64 * tensor
            + c.pt_mults as f64 * self.mul_plain
            + c.rescales as f64 * self.rescale
    }
}

/// Measures [`OpCosts`] at `level` of `params` with a throwaway secret, a relinearization key and two
/// Galois keys (median of `reps` runs).
///
/// # Errors
/// Key generation and evaluation errors.
pub fn calibrate(params: &std::sync::Arc<Parameters>, level: usize, reps: usize) -> Result<OpCosts> {
    use ckks::ring::poly::galois_element_for_rotation;
    use ckks::rlwe::{Encryptor, KeyGenerator};
    use ckks::scheme::evaluator::{CkksEncoder, CkksEncryptor, EvaluationKeys, Evaluator};
    use rustfft::num_complex::Complex64;
    let mut rng = ChaCha20Rng::from_os_rng();
    let kg = KeyGenerator::new(params);
    let sk = kg.gen_secret_key(&mut rng)?;
    let mut keys = EvaluationKeys {
        relin: Some(kg.gen_relin_key(&sk, &mut rng)?),
        ..Default::default()
    };
    for k in [1i64, 2] {
        let g = galois_element_for_rotation(k, params.n());
        keys.galois.insert(g, kg.gen_galois_key(&sk, g, &mut rng)?);
    }
    let eval = Evaluator::new(params, std::sync::Arc::new(keys));
    let enc = CkksEncoder::new(params)?;
    let v: Vec<Complex64> = (0..params.max_slots())
        .map(|i| Complex64::new((i % 7) as f64 / 7.0, 0.0))
        .collect();
    let pt = enc.encode(&v, level, params.default_scale())?;
    let ct = CkksEncryptor(Encryptor::Secret(std::sync::Arc::new(sk))).encrypt(&pt, &mut rng)?;
    let time = |f: &dyn Fn() -> Result<()>| -> Result<f64> {
        let mut t = Vec::with_capacity(reps);
        for _ in 0..reps.max(1) {
            let s = std::time::Instant::now();
            f()?;
            t.push(s.elapsed().as_secs_f64());
        }
        t.sort_by(f64::total_cmp);
        Ok(t[t.len() / 2])
    };
    let rotation = time(&|| {
        eval.rotate(&ct, 1)?;
        Ok(())
    })?;
    let hoisted_two = time(&|| {
        eval.rotate_hoisted(&ct, &[1, 2])?;
        Ok(())
    })?;
    let mul_relin = time(&|| {
        eval.mul_relin(&ct, &ct)?;
        Ok(())
    })?;
    let mul_plain = time(&|| {
        eval.mul_plain(&ct, &pt)?;
        Ok(())
    })?;
    let rescale = if level > 0 {
        time(&|| {
            eval.rescale(&ct)?;
            Ok(())
        })?
    } else {
        0.0
    };
    Ok(OpCosts {
        level,
        rotation,
        // A further rotation of a hoisted batch cannot cost more than a whole one; noisy timings on
        // a loaded machine can say otherwise.
        hoisted_extra: (hoisted_two - rotation).clamp(0.0, rotation),
        mul_relin,
        mul_plain,
        rescale,
    })
}

/// [`OpCosts`] measured at a few levels and interpolated linearly in the level between neighbouring
/// ones (extrapolated from the nearest pair beyond them): key switching, products and rescales each
/// cost roughly in proportion to the limbs, but not exactly (fixed costs weigh more at low levels).
#[derive(Debug, Clone)]
pub struct CostModel {
    /// Costs at each measured level, lowest level first.
    pub knots: Vec<OpCosts>,
}

impl CostModel {
    /// Measures [`OpCosts`] at each of `levels` (see [`calibrate`]).
    ///
    /// # Errors
    /// As [`calibrate`]; fewer than two distinct levels.
    pub fn calibrate(params: &std::sync::Arc<Parameters>, levels: &[usize], reps: usize) -> Result<Self> {
        let mut levels = levels.to_vec();
        levels.sort_unstable();
        levels.dedup();
        anyhow::ensure!(
            levels.len() >= 2,
            "cost model: at least two levels, got {levels:?}"
        );
        Ok(Self {
            knots: levels
                .into_iter()
                .map(|l| calibrate(params, l, reps))
                .collect::<Result<_>>()?,
        })
    }

    /// The costs at `level`, interpolated (never negative).
    pub fn at(&self, level: usize) -> OpCosts {
        let k = &self.knots;
        // The segment holding `level`, or the first / last one beyond the ends.
        let i = k
            .windows(2)
            .position(|w| level <= w[1].level)
            .unwrap_or(k.len().saturating_sub(2));
        let (a, b) = (&k[i], &k[(i + 1).min(k.len() - 1)]);
        let span = (b.level as f64 - a.level as f64).max(1.0);
        let t = (level as f64 - a.level as f64) / span;
        let f = |x: f64, y: f64| (x + t * (y - x)).max(0.0);
        OpCosts {
            level,
            rotation: f(a.rotation, b.rotation),
            hoisted_extra: f(a.hoisted_extra, b.hoisted_extra),
            mul_relin: f(a.mul_relin, b.mul_relin),
            mul_plain: f(a.mul_plain, b.mul_plain),
            rescale: f(a.rescale, b.rescale),
        }
    }

    /// Predicted seconds for `counts`, each level at its own costs.
    pub fn predict(&self, counts: &LeveledOpCounts) -> f64 {
        counts.iter().map(|(l, c)| self.at(l).predict(&c)).sum()
    }

    /// One line per measured level (milliseconds).
    pub fn describe(&self) -> String {
        self.knots
            .iter()
            .map(|c| {
                format!(
                    "level {}: rotation {:.1} ms, hoisted extra {:.1} ms, mul+relin {:.1} ms, mul plain {:.2} ms, rescale {:.2} ms",
                    c.level,
                    1e3 * c.rotation,
                    1e3 * c.hoisted_extra,
                    1e3 * c.mul_relin,
                    1e3 * c.mul_plain,
                    1e3 * c.rescale
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The levels a model's cost model is measured at: low, middle and top of the working levels
/// (`1..=working`), the middle of the bootstrapping levels and the top of the chain.
pub fn knots_for(working: usize, top: usize) -> Vec<usize> {
    vec![1, working.div_ceil(2), working, (working + top) / 2, top]
}

/// Predicted seconds next to measured ones, by kind of work: one line per kind, then the total
/// (weight encoding and residual additions are measured only).
pub fn breakdown(
    costs: &CostModel,
    by_kind: &std::collections::BTreeMap<WorkKind, LeveledOpCounts>,
    measured: &ForwardProfile,
) -> String {
    let mut out = String::from("kind           predicted  measured\n");
    let mut predicted_total = 0.0;
    for kind in WorkKind::ALL {
        let p = by_kind.get(&kind).map_or(0.0, |c| costs.predict(c));
        predicted_total += p;
        out.push_str(&format!(
            "{:<14} {p:>8.1} s {:>8.1} s\n",
            kind.name(),
            measured.seconds(kind)
        ));
    }
    out.push_str(&format!(
        "{:<14} {predicted_total:>8.1} s {:>8.1} s (without weight encoding, {:.1} s)\n",
        "total",
        measured.total() - measured.encode,
        measured.encode
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_is_positive_and_interpolates() {
        let params = Parameters::toy(10, 4).unwrap();
        let c = calibrate(&params, 2, 3).unwrap();
        assert!(
            c.rotation > 0.0 && c.mul_relin > 0.0 && c.mul_plain > 0.0 && c.rescale > 0.0,
            "{c:?}"
        );
        let one = OpCounts {
            key_switches: 1,
            decompositions: 1,
            ..Default::default()
        };
        // A lone rotation is predicted at its own measured cost.
        assert!((c.predict(&one) - c.rotation).abs() < 1e-12);
        let m = CostModel::calibrate(&params, &[3, 1], 1).unwrap();
        let (low, high) = (m.knots[0], m.knots[1]);
        assert_eq!((low.level, high.level), (1, 3));
        let mid = m.at(2);
        assert!((mid.rotation - (low.rotation + high.rotation) / 2.0).abs() < 1e-12);
        let mut counts = LeveledOpCounts::default();
        counts.add(1, one);
        counts.add(3, one * 2);
        let want = low.rotation + 2.0 * high.rotation;
        assert!((m.predict(&counts) - want).abs() < 1e-12);
    }
}
