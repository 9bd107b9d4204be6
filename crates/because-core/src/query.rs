//! What a score is asked for: a known user, a history or a sequence.

/// Whose scores are wanted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Query<'a> {
    /// A user known at training time, with their training history.
    User(u32),
    /// An ad-hoc history (a new user, or a known user with new interactions):
    /// items and their values. Scored without retraining (fold-in for factor
    /// models, directly for neighbourhood and EASE models).
    History {
        /// Item indices.
        items: &'a [u32],
        /// Values (ratings, weights or 1).
        values: &'a [f32],
    },
    /// An ordered sequence, oldest first (a session, or a user's latest
    /// events). Models that read order ([`Capabilities::ordered_sequences`](crate::Capabilities))
    /// use it; the others score it as the history of its items and values.
    Sequence(Sequence<'a>),
}

/// A user's interactions in time order, oldest first.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sequence<'a> {
    /// Item indices.
    pub items: &'a [u32],
    /// Values (event weights, ratings or 1).
    pub values: &'a [f32],
    /// Millisecond timestamps, if known.
    pub times: Option<&'a [i64]>,
    /// Event-type codes, if known.
    pub events: Option<&'a [u8]>,
}

impl<'a> Query<'a> {
    /// The items and values of an ad-hoc history or sequence (`None` for a known user).
    pub fn bag(&self) -> Option<(&'a [u32], &'a [f32])> {
        match *self {
            Query::User(_) => None,
            Query::History { items, values } => Some((items, values)),
            Query::Sequence(s) => Some((s.items, s.values)),
        }
    }
}
