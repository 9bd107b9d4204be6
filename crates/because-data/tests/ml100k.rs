//! MovieLens-100k: the loader, the splits and the filters on real data.

use because_core::filter::kcore;
use because_core::{Part, Split, SplitMethod};
use because_data::testing::ml100k_dir;
use because_data::{read_interactions, ReadOptions};

#[test]
fn loads_exactly() {
    let Some(dir) = ml100k_dir() else { return };
    let l = read_interactions(&dir.join("ratings.csv"), &ReadOptions::default()).unwrap();
    assert_eq!(l.report.rows_read, 100_000);
    assert_eq!(l.report.rows_kept, 100_000);
    assert!(l.report.dropped.is_empty());
    assert_eq!(l.dataset.users.len(), 943);
    assert_eq!(l.dataset.items.len(), 1682);
    assert!(l.dataset.has_ratings && l.dataset.has_time);
    let f = because_data::features::read_features(&dir.join("items.csv"), &l.dataset.items, None)
        .unwrap();
    assert_eq!(f.report.matched, 1682);
    assert_eq!(
        f.title(l.dataset.items.get("1").unwrap()),
        Some("Toy Story")
    );
    assert_eq!(f.genre_like().unwrap().levels.len(), 19);
}

#[test]
fn per_user_temporal_split_is_complete_and_leak_free() {
    let Some(dir) = ml100k_dir() else { return };
    let l = read_interactions(&dir.join("ratings.csv"), &ReadOptions::default()).unwrap();
    let x = &l.dataset.interactions;
    let s = Split::new(
        x,
        SplitMethod::UserTemporal {
            validation: 0.1,
            test: 0.1,
        },
        42,
        true,
    )
    .unwrap();
    let (train, val, test) = (
        s.part(x, Part::Train),
        s.part(x, Part::Validation),
        s.part(x, Part::Test),
    );
    assert_eq!(train.len() + val.len() + test.len(), 100_000);
    for u in 0..x.n_users() as u32 {
        if x.range(u).len() >= 3 {
            assert!(
                !val.range(u).is_empty() && !test.range(u).is_empty(),
                "user {u}"
            );
        }
        let known: std::collections::HashSet<u32> = train.user_items(u).iter().copied().collect();
        assert!(
            val.user_items(u)
                .iter()
                .chain(test.user_items(u))
                .all(|i| !known.contains(i)),
            "user {u} leaks"
        );
        // Everything in test is at least as late as everything in train.
        let last_train = train.user_times(u).iter().max();
        let first_test = test.user_times(u).iter().min();
        if let (Some(a), Some(b)) = (last_train, first_test) {
            assert!(a <= b);
        }
    }
    let r = s.report(x);
    assert_eq!(r.leaked_pairs, 0);
    assert_eq!(r.unknown_users_test, 0);
}

#[test]
fn kcore_on_real_data() {
    let Some(dir) = ml100k_dir() else { return };
    let l = read_interactions(&dir.join("ratings.csv"), &ReadOptions::default()).unwrap();
    let x = &l.dataset.interactions;
    let keep = kcore(x, 50, 50);
    let core = l.dataset.retain(&keep);
    let c = &core.interactions;
    assert!(c.user_counts().iter().all(|&n| n >= 50));
    assert!(c.item_counts().iter().all(|&n| n >= 50));
    assert!(c.len() < x.len() && !c.is_empty());
    // The same set as naive rounds of "drop every user and item below the bound" to a fixed point.
    let users = x.users();
    let mut alive = vec![true; x.len()];
    loop {
        let mut ud = vec![0u32; x.n_users()];
        let mut id = vec![0u32; x.n_items()];
        for k in (0..x.len()).filter(|&k| alive[k]) {
            ud[users[k] as usize] += 1;
            id[x.items()[k] as usize] += 1;
        }
        let mut changed = false;
        for k in 0..x.len() {
            if alive[k] && (ud[users[k] as usize] < 50 || id[x.items()[k] as usize] < 50) {
                alive[k] = false;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    assert_eq!(alive, keep);
}
