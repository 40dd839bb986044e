//! Per-client token bucket for hub → client DATA (SPEC B.5): it paces one client's writer and
//! never the shared tunnel.

use std::time::Duration;

use tokio::time::Instant;

/// A token bucket in bytes.
#[derive(Debug)]
pub struct TokenBucket {
    /// Bytes per second; 0 = unlimited.
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A bucket for `bits_per_second` (0 = unlimited) with one second (≥ 64 KiB) of burst.
    #[must_use]
    pub fn new(bits_per_second: i64) -> Self {
        let rate = if bits_per_second > 0 {
            bits_per_second as f64 / 8.0
        } else {
            0.0
        };
        let burst = rate.max(64.0 * 1024.0);
        Self {
            rate,
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    /// How long to wait before sending `bytes` (zero when unlimited or within budget); the
    /// bytes are taken from the bucket now.
    pub fn take(&mut self, bytes: usize) -> Duration {
        if self.rate <= 0.0 {
            return Duration::ZERO;
        }
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.tokens -= bytes as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TokenBucket;

    #[tokio::test]
    async fn the_bucket_paces_to_its_rate_after_the_burst() {
        let mut bucket = TokenBucket::new(8_000_000); // 1 MB/s
        assert_eq!(bucket.take(1_000_000).as_millis(), 0, "one second of burst");
        let wait = bucket.take(500_000);
        assert!((480..=510).contains(&wait.as_millis()), "{wait:?}");
        assert_eq!(
            TokenBucket::new(0).take(usize::MAX).as_millis(),
            0,
            "0 = unlimited"
        );
    }
}
