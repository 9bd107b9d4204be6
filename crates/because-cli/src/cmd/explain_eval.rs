//! `because explain-eval`: how faithful a model's explanations are,
//! measured, with the global view of what drives them.

use crate::args::{ExplainEvalArgs, FidelityData};
use crate::io::{create_dir, given_parts, load_with, optional_features, write_json};
use crate::{print, progress};
use anyhow::bail;
use because_core::{Interactions, Vocab};
use because_eval::experiment::{meta_for, Values};
use because_explain::fidelity;
use because_report::{deletion_figure, figures, reach_figure, save_figures};
use because_service::{Context, ModelHandle};
use std::time::Instant;

/// `because explain-eval`.
pub fn run(a: &ExplainEvalArgs) -> anyhow::Result<()> {
    let (spec, opts) = a.checked()?;
    let (x, users, items, how) = fidelity_data(&a.data, a.values.into())?;
    println!(
        "explaining the top {} for up to {} users ({spec}, values {how})",
        opts.n, opts.users
    );
    let start = Instant::now();
    let spinner = progress::spinner(format!(
        "training {spec} and measuring its explanations for {} users",
        opts.users
    ));
    let mut f = fidelity::measure_spec(&spec, &x, &opts)?;
    spinner.finish_and_clear();
    println!(
        "\n{} explained recommendations of {} in {:.1}s; means with 95% bootstrap intervals:",
        f.summary.recommendations,
        f.summary.model,
        start.elapsed().as_secs_f64()
    );
    print::fidelity(&f.summary);
    // The global view (popularity bias, what drives recommendations,
    // themes), as a served model gives it, with the item features given.
    let features = optional_features(a.items.as_deref(), &items, true)?;
    let genre = features
        .as_ref()
        .and_then(|f| f.genre_like())
        .map(|g| g.name.clone());
    let meta = meta_for(
        &users,
        &items,
        &x,
        Default::default(),
        Vec::new(),
        Vec::new(),
    );
    let handle = ModelHandle::new(f.model.clone(), meta)?.with_context(Context {
        items: features,
        ..Context::default()
    });
    let global = handle.global_view(&f.measured, opts.n)?;
    print::global(&global, genre.as_deref(), 6);
    let s = &f.summary;
    let mut figs = vec![
        (
            "deletion",
            deletion_figure(
                s.k,
                s.deletion_rank_drop_named.mean,
                s.deletion_rank_drop_random.mean,
            ),
        ),
        ("diversity_across_users", reach_figure(s.n, &global.reach)),
    ];
    let genres = handle.context().items.as_ref().and_then(|f| f.genre_like());
    if let Some(map) = figures::embedding(&f.model, genres) {
        figs.push(("embedding_map", map));
    }
    // For attention models: where the first measured recommendation's
    // attention went.
    if let Some(first) = f.measured.first() {
        let name = |i: u32| handle.item_ref(i).title;
        if let Some(att) = figures::attention(&f.model, first.user, first.item, &name) {
            figs.push(("attention", att));
        }
    }
    f.summary.global = Some(global);
    create_dir(&a.out)?;
    write_json(&a.out.join("fidelity.json"), &f.summary)?;
    save_figures(&figs, &a.out.join("figures"))?;
    println!(
        "\nwrote {} and {}",
        a.out.join("fidelity.json").display(),
        a.out.join("figures/deletion.png").display()
    );
    Ok(())
}

/// The data `explain-eval` trains on, with its vocabularies and a
/// description of its values.
fn fidelity_data(
    data: &FidelityData,
    values: Values,
) -> anyhow::Result<(Interactions, Vocab, Vocab, &'static str)> {
    match (&data.data, &data.train, &data.validation, &data.test) {
        (Some(path), None, _, _) => {
            let (read, filters) = data.read.options()?;
            let loaded = load_with(path, &read, &filters)?;
            let d = loaded.dataset;
            let (x, how) = values.apply(d.interactions, d.has_ratings);
            Ok((x, d.users, d.items, how))
        }
        (None, Some(train), Some(validation), Some(test)) => {
            let files = [train.as_path(), validation.as_path(), test.as_path()];
            let parts = given_parts(files, &data.read, values)?;
            print::parts(&parts);
            println!("explaining the model trained on the training part");
            let x = parts.training().train.clone();
            Ok((x, parts.users, parts.items, parts.values))
        }
        _ => bail!("give either --data or --train, --validation and --test"),
    }
}
