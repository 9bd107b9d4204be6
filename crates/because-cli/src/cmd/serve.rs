//! `because serve`: a model folder over HTTP.

use crate::args::{flags, ServeArgs};
use anyhow::Context;

/// `because serve`.
pub fn run(args: &ServeArgs) -> anyhow::Result<()> {
    let a = args.settings()?;
    if a.keys.read.is_some() && !a.protect_reads {
        anyhow::bail!("--read-key-file: read routes are open without --protect-reads; give it too");
    }
    let keys = a.keys.load().map_err(|e| anyhow::anyhow!("{e}"))?;
    let keyed = keys.count(because_server::Access::Write) > 0;
    if a.protect_reads && keys.is_empty() {
        anyhow::bail!("--protect-reads: give the keys with --api-key-file or --read-key-file");
    }
    let mut state = because_server::State::open(a.model.clone(), None, a.database.clone())?
        .with_key_files(a.keys.clone())
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .protect_reads(a.protect_reads)
        .approximate(!args.exact)
        .rate_limit(a.rate_limit)
        .shutdown_delay(a.shutdown_delay)
        .cors(&a.cors_origin)?;
    if let Some(ctx) = a.context.clone() {
        state = state.with_context(ctx).map_err(flags)?;
    }
    let listener = std::net::TcpListener::bind(a.listen)
        .with_context(|| format!("--listen: cannot listen on {}", a.listen))?;
    let (writers, readers) = (
        keys.count(because_server::Access::Write),
        keys.count(because_server::Access::Read),
    );
    println!(
        "serving {} ({}) on http://{}{}",
        a.model.display(),
        state.model().info().spec,
        listener.local_addr()?,
        if keyed {
            format!(
                " ({writers} write key{}{})",
                if writers == 1 { "" } else { "s" },
                match readers {
                    0 => String::new(),
                    1 => ", 1 read key".into(),
                    n => format!(", {n} read keys"),
                }
            )
        } else {
            " (no API key: writes and admin routes are closed; give --api-key-file)".into()
        }
    );
    let r = state.model().retrieval();
    match (&r.index, &r.index_problem) {
        (Some(i), _) if r.approximate => println!(
            "answering from its index: {} lists, {} scanned per request (recall@10 {:.4} against exact scoring when built); every candidate scored by the model",
            i.lists, i.probe, i.recall_at_10
        ),
        (_, Some(why)) => println!("its index is not used ({why}); every request scores every item"),
        _ => {}
    }
    use std::io::Write;
    std::io::stdout().flush()?;
    because_server::run(state, listener, args.watch)?;
    Ok(())
}
