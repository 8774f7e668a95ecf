//! Operation costs measured on the spot, and the time predictions made from them: the planner's
//! operation counts times these costs, before anything runs.

use anyhow::Result;
use ckks::params::Parameters;
use ckks::scheme::evaluator::{LeveledOpCounts, OpCounts};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

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

/// [`OpCosts`] measured at two levels and interpolated linearly in the level between them (and
/// beyond): key switching, products and rescales each cost about in proportion to the limbs.
#[derive(Debug, Clone, Copy)]
pub struct CostModel {
    /// Costs at the lower level.
    pub low: OpCosts,
    /// Costs at the higher level.
    pub high: OpCosts,
}

impl CostModel {
    /// Measures [`OpCosts`] at `low` and `high` (see [`calibrate`]).
    ///
    /// # Errors
    /// As [`calibrate`]; `low >= high`.
    pub fn calibrate(
        params: &std::sync::Arc<Parameters>,
        low: usize,
        high: usize,
        reps: usize,
    ) -> Result<Self> {
        anyhow::ensure!(low < high, "cost model: levels {low} and {high}");
        Ok(Self {
            low: calibrate(params, low, reps)?,
            high: calibrate(params, high, reps)?,
        })
    }

    /// The costs at `level`, interpolated (never negative).
    pub fn at(&self, level: usize) -> OpCosts {
        let (a, b) = (&self.low, &self.high);
        let t = (level as f64 - a.level as f64) / (b.level as f64 - a.level as f64);
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
        let m = CostModel::calibrate(&params, 1, 3, 1).unwrap();
        let mid = m.at(2);
        assert!((mid.rotation - (m.low.rotation + m.high.rotation) / 2.0).abs() < 1e-12);
        let mut counts = LeveledOpCounts::default();
        counts.add(1, one);
        counts.add(3, one * 2);
        let want = m.low.rotation + 2.0 * m.high.rotation;
        assert!((m.predict(&counts) - want).abs() < 1e-12);
    }
}
