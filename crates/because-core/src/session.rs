use crate::{Error, Interactions, Result};

/// Default inactivity gap that ends a session: 30 minutes.
pub const DEFAULT_SESSION_TIMEOUT_MS: i64 = 30 * 60 * 1000;

/// Sessions: maximal runs of a user's interactions in which consecutive
/// interactions are at most `timeout` apart.
///
/// Because each user's interactions are time-ordered, session `s` is the
/// contiguous range `ptr[s]..ptr[s + 1]` of the log, in time order; this is
/// the ordered sequence the sequential models consume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sessions {
    ptr: Vec<usize>,
    user: Vec<u32>,
    timeout_ms: i64,
}

impl Sessions {
    /// Splits each user's interactions at gaps longer than `timeout_ms`.
    pub fn build(x: &Interactions, timeout_ms: i64) -> Result<Sessions> {
        if timeout_ms <= 0 {
            return Err(Error::param("session-timeout", "must be positive"));
        }
        let mut ptr = vec![0usize];
        let mut user = Vec::new();
        let times = x.times();
        for u in 0..x.n_users() as u32 {
            let r = x.range(u);
            if r.is_empty() {
                continue;
            }
            for k in r.start + 1..r.end {
                if times[k] - times[k - 1] > timeout_ms {
                    ptr.push(k);
                    user.push(u);
                }
            }
            ptr.push(r.end);
            user.push(u);
        }
        Ok(Sessions {
            ptr,
            user,
            timeout_ms,
        })
    }

    /// Number of sessions.
    pub fn len(&self) -> usize {
        self.user.len()
    }
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.user.is_empty()
    }
    /// The timeout they were built with.
    pub fn timeout_ms(&self) -> i64 {
        self.timeout_ms
    }
    /// The user of session `s`.
    pub fn user(&self, s: usize) -> u32 {
        self.user[s]
    }
    /// The positions (in the log's row order) of session `s`.
    pub fn range(&self, s: usize) -> std::ops::Range<usize> {
        self.ptr[s]..self.ptr[s + 1]
    }
    /// The items of session `s` in time order.
    pub fn items<'a>(&self, x: &'a Interactions, s: usize) -> &'a [u32] {
        &x.items()[self.range(s)]
    }
    /// Length of every session.
    pub fn lengths(&self) -> Vec<u32> {
        self.ptr.windows(2).map(|w| (w[1] - w[0]) as u32).collect()
    }
    /// The session of each interaction, in row order.
    pub fn session_ids(&self) -> Vec<u32> {
        let mut ids = Vec::with_capacity(self.ptr.last().copied().unwrap_or(0));
        for s in 0..self.len() {
            ids.extend(std::iter::repeat_n(s as u32, self.ptr[s + 1] - self.ptr[s]));
        }
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_gaps() {
        let min = 60_000;
        let x = Interactions::from_tuples(
            2,
            5,
            [
                (0, 0, 1.0, 0),
                (0, 1, 1.0, 10 * min),
                (0, 2, 1.0, 45 * min),
                (0, 3, 1.0, 46 * min),
                (1, 4, 1.0, 0),
            ],
        )
        .unwrap();
        let s = Sessions::build(&x, DEFAULT_SESSION_TIMEOUT_MS).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s.lengths(), vec![2, 2, 1]);
        assert_eq!(s.items(&x, 1), &[2, 3]);
        assert_eq!(s.user(2), 1);
        assert_eq!(s.session_ids(), vec![0, 0, 1, 1, 2]);
        assert!(Sessions::build(&x, 0).is_err());
    }
}
