//! Exponential back-off between retries of a failing operation.

use std::time::Duration;

/// First wait after a failure.
pub(crate) const INITIAL: Duration = Duration::from_millis(100);
/// Longest wait between retries.
pub(crate) const MAX: Duration = Duration::from_secs(5);

/// Doubles the wait after each failure, up to [`MAX`]; [`Backoff::reset`] after a success.
#[derive(Debug)]
pub(crate) struct Backoff {
    current: Duration,
}

impl Backoff {
    pub(crate) fn new() -> Self {
        Self { current: INITIAL }
    }

    /// The wait before the next retry.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.current;
        self.current = (self.current * 2).min(MAX);
        delay
    }

    pub(crate) fn reset(&mut self) {
        self.current = INITIAL;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_maximum_and_resets() {
        let mut backoff = Backoff::new();
        let delays: Vec<u128> = (0..8).map(|_| backoff.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), INITIAL);
    }
}
