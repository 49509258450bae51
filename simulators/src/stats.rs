//! Latency statistics: a log-linear [`Histogram`] of microseconds that worker processes can
//! ship to their parent and that merges exactly, and the [`Percentiles`] a report prints.
//!
//! # Invariants (tested)
//! - values below 256 µs are kept exactly; above, each power of two is split into 128 equal
//!   buckets, so a bucket's width is at most 1/128 of its lower bound and a quantile, reported
//!   as its bucket's midpoint (clamped to the exact min and max), is within 0.4 % of the exact
//!   value at the same rank;
//! - merging two histograms gives exactly the histogram of recording both sets of values;
//! - the serialised form lists only non-empty buckets and is validated when read back.

use serde::{Deserialize, Serialize};

/// Sub-buckets per power of two: the relative width of a bucket is at most `1 / SUB`.
const SUB_BITS: u32 = 7;
const SUB: u64 = 1 << SUB_BITS;
/// Buckets needed for every `u64`: the exact range `[0, 2 * SUB)`, then `SUB` per doubling.
const BUCKETS: usize = ((65 - SUB_BITS) as usize) * SUB as usize;

/// Counts of latencies in microseconds, log-linear buckets (relative error below 1 %).
///
/// The bucket array grows to the largest bucket used (about 20 KiB for latencies up to a
/// minute), so keep one per shard of devices rather than one per device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "Sparse", try_from = "Sparse")]
pub struct Histogram {
    counts: Vec<u64>,
    count: u64,
    min: u64,
    max: u64,
    sum: u64,
}

/// Quantiles of a histogram in milliseconds; `None` when it is empty.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

/// The index of the bucket holding `v`.
fn bucket(v: u64) -> usize {
    if v < 2 * SUB {
        return v as usize;
    }
    let shift = 63 - v.leading_zeros() - SUB_BITS;
    (u64::from(shift) * SUB + (v >> shift)) as usize
}

/// The smallest value in bucket `i`, and the bucket's width.
fn bucket_range(i: usize) -> (u64, u64) {
    let i = i as u64;
    if i < 2 * SUB {
        return (i, 1);
    }
    let shift = i / SUB - 1;
    ((i - shift * SUB) << shift, 1 << shift)
}

impl Histogram {
    pub fn new() -> Histogram {
        Histogram::default()
    }

    /// Records one latency, microseconds.
    pub fn record(&mut self, us: u64) {
        let i = bucket(us);
        if self.counts.len() <= i {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] += 1;
        if self.count == 0 || us < self.min {
            self.min = us;
        }
        self.max = self.max.max(us);
        self.count += 1;
        self.sum = self.sum.saturating_add(us);
    }

    /// Adds every value recorded in `other`.
    pub fn merge(&mut self, other: &Histogram) {
        if other.count == 0 {
            return;
        }
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.min = if self.count == 0 {
            other.min
        } else {
            self.min.min(other.min)
        };
        self.max = self.max.max(other.max);
        self.count += other.count;
        self.sum = self.sum.saturating_add(other.sum);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The largest value recorded (exact), `None` if empty.
    pub fn max(&self) -> Option<u64> {
        (self.count > 0).then_some(self.max)
    }

    /// The smallest value recorded (exact), `None` if empty.
    pub fn min(&self) -> Option<u64> {
        (self.count > 0).then_some(self.min)
    }

    /// The mean (exact), `None` if empty.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum as f64 / self.count as f64)
    }

    /// The value at rank `ceil(q * count)` (1-based, at least 1) of the sorted values, within
    /// 1 %; `q` is clamped to `[0, 1]`. `None` if empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let q = if q.is_nan() { 0.0 } else { q.clamp(0.0, 1.0) };
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let (low, width) = bucket_range(i);
                return Some((low + width / 2).clamp(self.min, self.max));
            }
        }
        Some(self.max)
    }

    /// p50, p95, p99 and max in milliseconds.
    pub fn percentiles_ms(&self) -> Percentiles {
        let ms = |us: Option<u64>| us.map(|us| us as f64 / 1000.0);
        Percentiles {
            p50: ms(self.quantile(0.50)),
            p95: ms(self.quantile(0.95)),
            p99: ms(self.quantile(0.99)),
            max: ms(self.max()),
        }
    }
}

/// The wire form: only non-empty buckets, as `[index, count]` pairs in index order.
#[derive(Serialize, Deserialize)]
struct Sparse {
    min: u64,
    max: u64,
    sum: u64,
    buckets: Vec<(u32, u64)>,
}

impl From<Histogram> for Sparse {
    fn from(h: Histogram) -> Sparse {
        Sparse {
            min: h.min,
            max: h.max,
            sum: h.sum,
            buckets: h
                .counts
                .iter()
                .enumerate()
                .filter(|(_, &n)| n > 0)
                .map(|(i, &n)| (i as u32, n))
                .collect(),
        }
    }
}

impl TryFrom<Sparse> for Histogram {
    type Error = String;

    fn try_from(s: Sparse) -> Result<Histogram, String> {
        let mut h = Histogram::new();
        for (i, n) in s.buckets {
            let i = i as usize;
            if i >= BUCKETS {
                return Err(format!("histogram bucket {i} out of range"));
            }
            if h.counts.len() <= i {
                h.counts.resize(i + 1, 0);
            }
            h.counts[i] += n;
            h.count = h.count.checked_add(n).ok_or("histogram count overflows")?;
        }
        if h.count > 0 {
            if s.min > s.max || bucket(s.min) >= h.counts.len() || bucket(s.max) >= h.counts.len() {
                return Err("histogram min/max do not match its buckets".into());
            }
            (h.min, h.max, h.sum) = (s.min, s.max, s.sum);
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn exact(sorted: &[u64], q: f64) -> u64 {
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    #[test]
    fn buckets_are_contiguous_and_at_most_a_128th_wide() {
        let mut next = 0u64;
        for i in 0..BUCKETS {
            let (low, width) = bucket_range(i);
            assert_eq!(low, next, "bucket {i}");
            assert_eq!(bucket(low), i);
            assert_eq!(bucket(low + (width - 1)), i);
            if low > 0 {
                assert!(width * SUB <= low.max(SUB), "bucket {i}: {low} + {width}");
            }
            next = low.wrapping_add(width);
        }
        assert_eq!(next, 0, "the last bucket ends at u64::MAX");
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn an_empty_histogram_has_no_quantiles() {
        let h = Histogram::new();
        assert_eq!((h.count(), h.quantile(0.5), h.max()), (0, None, None));
        let p = h.percentiles_ms();
        assert_eq!(p, Percentiles::default());
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"p50":null,"p95":null,"p99":null,"max":null}"#
        );
    }

    #[test]
    fn small_values_are_exact_and_percentiles_are_milliseconds() {
        let mut h = Histogram::new();
        for us in 1..=100 {
            h.record(us);
        }
        assert_eq!(h.quantile(0.5), Some(50));
        assert_eq!(h.quantile(0.0), Some(1));
        assert_eq!(h.quantile(1.0), Some(100));
        let p = h.percentiles_ms();
        assert_eq!(
            (p.p50, p.p95, p.p99, p.max),
            (Some(0.05), Some(0.095), Some(0.099), Some(0.1))
        );
        assert_eq!(h.mean(), Some(50.5));
    }

    #[test]
    fn the_wire_form_lists_only_used_buckets_and_reads_back_equal() {
        let mut h = Histogram::new();
        for us in [5, 5, 1_000, 2_500_000] {
            h.record(us);
        }
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(json.matches('[').count(), 4, "{json}");
        let back: Histogram = serde_json::from_str(&json).unwrap();
        assert_eq!(back, h);
        let empty: Histogram =
            serde_json::from_str(&serde_json::to_string(&Histogram::new()).unwrap()).unwrap();
        assert_eq!(empty, Histogram::new());
        assert!(serde_json::from_str::<Histogram>(
            r#"{"min":0,"max":0,"sum":0,"buckets":[[999999,1]]}"#
        )
        .is_err());
    }

    proptest! {
        #[test]
        fn a_quantile_is_within_one_percent_of_the_exact_one(
            values in prop::collection::vec(prop_oneof![0u64..1_000, 0u64..100_000_000, any::<u64>()], 1..400),
            q in 0.0f64..=1.0,
        ) {
            let mut h = Histogram::new();
            for &v in &values {
                h.record(v);
            }
            let mut sorted = values.clone();
            sorted.sort_unstable();
            let want = exact(&sorted, q) as f64;
            let got = h.quantile(q).unwrap() as f64;
            prop_assert!((got - want).abs() <= want * 0.01, "q {} got {} want {}", q, got, want);
            prop_assert_eq!(h.max(), sorted.last().copied());
            prop_assert_eq!(h.count(), values.len() as u64);
        }

        #[test]
        fn merging_equals_recording_both(
            a in prop::collection::vec(0u64..10_000_000, 0..200),
            b in prop::collection::vec(0u64..10_000_000, 0..200),
        ) {
            let (mut ha, mut hb, mut both) = (Histogram::new(), Histogram::new(), Histogram::new());
            for &v in &a { ha.record(v); both.record(v); }
            for &v in &b { hb.record(v); both.record(v); }
            ha.merge(&hb);
            prop_assert_eq!(&ha, &both);
            let json = serde_json::to_string(&ha).unwrap();
            let back: Histogram = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(back, both);
        }
    }
}
