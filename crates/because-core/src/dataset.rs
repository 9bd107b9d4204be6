use crate::{Columns, Interactions, Vocab};

/// An interaction log together with the vocabularies that name its users
/// and items and the names of its event types.
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    /// External user IDs.
    pub users: Vocab,
    /// External item IDs.
    pub items: Vocab,
    /// The interactions, indexed by `users` and `items`.
    pub interactions: Interactions,
    /// Names of the event codes (empty when the data has no event types).
    pub event_names: Vec<String>,
    /// Whether the times are real timestamps (otherwise they are row numbers).
    pub has_time: bool,
    /// Whether the values are explicit ratings.
    pub has_ratings: bool,
}

impl Dataset {
    /// The dataset restricted to interactions with `keep[k]` (row order),
    /// dropping users and items left with no interaction. IDs keep their
    /// relative order.
    pub fn retain(&self, keep: &[bool]) -> Dataset {
        let x = self.interactions.select(keep);
        let user_keep: Vec<bool> = x.user_counts().iter().map(|&c| c > 0).collect();
        let item_keep: Vec<bool> = x.item_counts().iter().map(|&c| c > 0).collect();
        let (users, umap) = self.users.retain(&user_keep);
        let (items, imap) = self.items.retain(&item_keep);
        let interactions = x.remap(&umap, &imap, users.len(), items.len());
        Dataset {
            users,
            items,
            interactions,
            ..self.clone_meta()
        }
    }

    /// The same dataset with other interactions (same index space).
    pub fn with_interactions(&self, interactions: Interactions) -> Dataset {
        Dataset {
            users: self.users.clone(),
            items: self.items.clone(),
            interactions,
            ..self.clone_meta()
        }
    }

    fn clone_meta(&self) -> Dataset {
        Dataset {
            event_names: self.event_names.clone(),
            has_time: self.has_time,
            has_ratings: self.has_ratings,
            ..Default::default()
        }
    }

    /// The interactions in another index space (a model's vocabularies),
    /// each user's rows still in time order; interactions of users or items
    /// `users` and `items` do not have are left out and counted.
    pub fn in_vocabulary(
        &self,
        users: &Vocab,
        items: &Vocab,
    ) -> crate::Result<(Interactions, usize)> {
        let x = &self.interactions;
        let umap: Vec<Option<u32>> = self.users.ids().map(|id| users.get(id)).collect();
        let imap: Vec<Option<u32>> = self.items.ids().map(|id| items.get(id)).collect();
        let mut cols = Columns::default();
        let mut dropped = 0;
        for u in 0..x.n_users() as u32 {
            for k in x.range(u) {
                match (umap[u as usize], imap[x.items()[k] as usize]) {
                    (Some(mu), Some(mi)) => cols.push(mu, mi, x.values()[k], x.times()[k], None),
                    _ => dropped += 1,
                }
            }
        }
        Ok((
            Interactions::from_columns(users.len(), items.len(), cols)?,
            dropped,
        ))
    }

    /// Several logs mapped to one vocabulary: the first's IDs first, then
    /// those only later ones have, in order; event types likewise. Returns
    /// the joined vocabularies and event names, and each log's interactions
    /// in the joint index space (event codes kept only if every log has
    /// them).
    pub fn in_one_vocabulary(datasets: &[&Dataset]) -> crate::Result<OneVocabulary> {
        let (mut users, mut items) = (Vocab::new(), Vocab::new());
        let mut events: Vec<String> = Vec::new();
        let with_events = datasets.iter().all(|d| d.interactions.events().is_some());
        let mut maps = Vec::with_capacity(datasets.len());
        for d in datasets {
            let u: Vec<u32> = d.users.ids().map(|id| users.intern(id)).collect();
            let i: Vec<u32> = d.items.ids().map(|id| items.intern(id)).collect();
            let mut e = Vec::with_capacity(d.event_names.len());
            for name in &d.event_names {
                let code = match events.iter().position(|n| n == name) {
                    Some(p) => p,
                    None => {
                        events.push(name.clone());
                        events.len() - 1
                    }
                };
                e.push(u8::try_from(code).map_err(|_| {
                    crate::Error::TooMany(format!(
                        "more than 255 distinct event types across {} logs",
                        datasets.len()
                    ))
                })?);
            }
            maps.push((u, i, e));
        }
        let mut interactions = Vec::with_capacity(datasets.len());
        for (d, (umap, imap, emap)) in datasets.iter().zip(&maps) {
            let mut cols = Columns::default();
            for r in d.interactions.iter() {
                let e = r.event.filter(|_| with_events).map(|e| emap[e as usize]);
                cols.push(
                    umap[r.user as usize],
                    imap[r.item as usize],
                    r.value,
                    r.time,
                    e,
                );
            }
            interactions.push(Interactions::from_columns(users.len(), items.len(), cols)?);
        }
        Ok(OneVocabulary {
            users,
            items,
            event_names: if with_events { events } else { Vec::new() },
            interactions,
        })
    }

    /// Share of the user-item matrix that is empty.
    pub fn sparsity(&self) -> f64 {
        let cells = self.users.len() as f64 * self.items.len() as f64;
        if cells == 0.0 {
            return 1.0;
        }
        1.0 - self.interactions.len() as f64 / cells
    }
}

/// Logs in one vocabulary: see [`Dataset::in_one_vocabulary`].
#[derive(Clone, Debug)]
pub struct OneVocabulary {
    /// Every log's users.
    pub users: Vocab,
    /// Every log's items.
    pub items: Vocab,
    /// Every log's event types (empty unless every log has them).
    pub event_names: Vec<String>,
    /// Each log's interactions, in the order given, in this index space.
    pub interactions: Vec<Interactions>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_moves_into_another_vocabulary_and_counts_what_it_leaves() {
        let x = Interactions::from_tuples(2, 2, [(0, 0, 1.0, 5), (0, 1, 2.0, 1), (1, 1, 3.0, 0)])
            .unwrap();
        let d = Dataset {
            users: Vocab::from_ids(["a", "b"]),
            items: Vocab::from_ids(["x", "y"]),
            interactions: x,
            ..Default::default()
        };
        // The model knows user a (as 1) and item y (as 0) only.
        let (m, dropped) = d
            .in_vocabulary(&Vocab::from_ids(["c", "a"]), &Vocab::from_ids(["y", "z"]))
            .unwrap();
        assert_eq!(dropped, 2);
        assert_eq!((m.n_users(), m.n_items()), (2, 2));
        assert_eq!(m.user_items(1), &[0]);
        assert_eq!(m.user_values(1), &[2.0]);
        assert!(m.user_items(0).is_empty());
    }

    #[test]
    fn retain_compacts_ids() {
        let x = Interactions::from_tuples(
            3,
            3,
            [
                (0, 0, 1.0, 0),
                (1, 1, 1.0, 0),
                (2, 2, 1.0, 0),
                (2, 0, 1.0, 1),
            ],
        )
        .unwrap();
        let d = Dataset {
            users: Vocab::from_ids(["a", "b", "c"]),
            items: Vocab::from_ids(["x", "y", "z"]),
            interactions: x,
            ..Default::default()
        };
        let r = d.retain(&[true, false, true, true]);
        assert_eq!(r.users.ids().collect::<Vec<_>>(), ["a", "c"]);
        assert_eq!(r.items.ids().collect::<Vec<_>>(), ["x", "z"]);
        assert_eq!(r.interactions.user_items(1), &[1, 0]);
        assert_eq!(r.interactions.n_users(), 2);
    }
}
