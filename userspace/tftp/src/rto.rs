//! The retransmission timeout of one transfer. RFC 6298's estimator (SRTT/RTTVAR) over the round
//! trips of DATA→ACK, fed only by packets sent once (Karn's rule: the ACK of a retransmitted
//! packet could answer either copy), doubled on every timeout. A client that asked for a
//! `timeout` (RFC 2349) gets exactly that, every time: the option says when the server must
//! retransmit, and a longer wait could outlast the client's own patience.

/// Bounds and starting value, in milliseconds, from the server config.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RtoBounds {
    pub initial: u32,
    pub min: u32,
    pub max: u32,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Rto {
    /// Smoothed RTT in 1/8 ms (Jacobson's fixed point).
    srtt8: u32,
    /// RTT variation in 1/4 ms.
    rttvar4: u32,
    /// The timeout now in force, in ms.
    current: u32,
    sampled: bool,
    fixed: bool,
}

impl Rto {
    pub(crate) fn adaptive(bounds: &RtoBounds) -> Self {
        Rto {
            srtt8: 0,
            rttvar4: 0,
            current: bounds.initial.clamp(bounds.min, bounds.max),
            sampled: false,
            fixed: false,
        }
    }

    /// The client's `timeout` option: that many seconds, no adaptation, no backoff.
    pub(crate) fn fixed(seconds: u8) -> Self {
        Rto {
            srtt8: 0,
            rttvar4: 0,
            current: u32::from(seconds) * 1000,
            sampled: false,
            fixed: true,
        }
    }

    pub(crate) fn current_ms(&self) -> u32 {
        self.current
    }

    /// One round trip measured on a packet sent once. Also ends any backoff, as RFC 6298 §5
    /// does once a fresh sample arrives.
    pub(crate) fn on_sample(&mut self, rtt_ms: u64, bounds: &RtoBounds) {
        if self.fixed {
            return;
        }
        let r = u32::try_from(rtt_ms).unwrap_or(u32::MAX).min(bounds.max);
        if self.sampled {
            let srtt = self.srtt8 / 8;
            let delta = srtt.abs_diff(r);
            self.rttvar4 = self.rttvar4 - self.rttvar4 / 4 + delta;
            self.srtt8 = self.srtt8 - self.srtt8 / 8 + r;
        } else {
            self.srtt8 = r.saturating_mul(8);
            self.rttvar4 = r.saturating_mul(2);
            self.sampled = true;
        }
        // RTO = SRTT + max(G, 4·RTTVAR) with a clock granularity G of 1 ms.
        let rto = (self.srtt8 / 8).saturating_add(self.rttvar4.max(1));
        self.current = rto.clamp(bounds.min, bounds.max);
    }

    /// A timeout fired: wait twice as long for the next one (RFC 6298 §5.5).
    pub(crate) fn back_off(&mut self, bounds: &RtoBounds) {
        if !self.fixed {
            self.current = self.current.saturating_mul(2).min(bounds.max);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: RtoBounds = RtoBounds {
        initial: 1000,
        min: 200,
        max: 30_000,
    };

    #[test]
    fn first_sample_sets_srtt_plus_four_rttvar() {
        let mut r = Rto::adaptive(&B);
        assert_eq!(r.current_ms(), 1000);
        r.on_sample(100, &B);
        // SRTT 100, RTTVAR 50 → 100 + 200.
        assert_eq!(r.current_ms(), 300);
    }

    #[test]
    fn steady_samples_converge_and_the_floor_holds() {
        let mut r = Rto::adaptive(&B);
        for _ in 0..50 {
            r.on_sample(400, &B);
        }
        assert!((400..=420).contains(&r.current_ms()), "{}", r.current_ms());
        for _ in 0..50 {
            r.on_sample(1, &B);
        }
        assert_eq!(r.current_ms(), 200);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_a_sample_resets_it() {
        let mut r = Rto::adaptive(&B);
        r.on_sample(100, &B);
        let mut seen = vec![];
        for _ in 0..9 {
            r.back_off(&B);
            seen.push(r.current_ms());
        }
        assert_eq!(
            seen,
            [600, 1200, 2400, 4800, 9600, 19200, 30000, 30000, 30000]
        );
        r.on_sample(100, &B);
        assert!(r.current_ms() < 1000);
    }

    #[test]
    fn the_clients_timeout_is_fixed() {
        let mut r = Rto::fixed(5);
        r.on_sample(10, &B);
        r.back_off(&B);
        assert_eq!(r.current_ms(), 5000);
    }
}
