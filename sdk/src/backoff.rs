//! Reconnect delays: exponential backoff with full jitter (AWS architecture
//! blog, "Exponential Backoff And Jitter"): a uniform draw between zero and
//! `min(max, base * 2^attempt)`, so that many clients that lost the same
//! server do not come back at the same instant.

/// The schedule; `attempt` counts from 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub base_ms: f64,
    pub max_ms: f64,
}

impl Backoff {
    /// The ceiling of the delay before attempt `attempt`.
    pub fn ceiling(&self, attempt: u32) -> f64 {
        let growth = 2f64.powi(attempt.min(30) as i32);
        (self.base_ms * growth).min(self.max_ms)
    }

    /// The delay before attempt `attempt`, given a uniform draw in [0, 1).
    /// Never below a tenth of the base, so a run of small draws cannot turn
    /// into a busy loop.
    pub fn delay(&self, attempt: u32, unit: f64) -> f64 {
        let ceiling = self.ceiling(attempt);
        (ceiling * unit.clamp(0.0, 1.0)).max((self.base_ms / 10.0).min(ceiling))
    }
}

#[cfg(test)]
mod tests {
    use super::Backoff;

    const B: Backoff = Backoff {
        base_ms: 1000.0,
        max_ms: 30_000.0,
    };

    #[test]
    fn the_ceiling_doubles_up_to_the_maximum() {
        let ceilings: Vec<f64> = (0..7).map(|a| B.ceiling(a)).collect();
        assert_eq!(
            ceilings,
            [1000.0, 2000.0, 4000.0, 8000.0, 16000.0, 30000.0, 30000.0]
        );
        assert_eq!(B.ceiling(u32::MAX), 30_000.0);
    }

    #[test]
    fn full_jitter_spans_the_range_with_a_floor() {
        assert_eq!(B.delay(3, 0.5), 4000.0);
        assert_eq!(B.delay(3, 0.999_999), 7999.992);
        assert_eq!(B.delay(3, 0.0), 100.0);
        assert_eq!(B.delay(10, 1.5), 30_000.0);
    }
}
