//! `because serve`: a model folder over HTTP.

use crate::args::{flags, ServeArgs};
use anyhow::Context;

/// `because serve`.
pub fn run(args: &ServeArgs) -> anyhow::Result<()> {
    let a = args.settings()?;
    let key = a
        .api_key_file
        .as_deref()
        .map(because_server::read_api_key)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--api-key-file: {e}"))?;
    let keyed = key.is_some();
    if a.protect_reads && !keyed {
        anyhow::bail!("--protect-reads: give the key with --api-key-file");
    }
    let mut state = because_server::State::open(a.model.clone(), key, a.database.clone())?
        .protect_reads(a.protect_reads)
        .approximate(!args.exact);
    if let Some(ctx) = a.context.clone() {
        state = state.with_context(ctx).map_err(flags)?;
    }
    let listener = std::net::TcpListener::bind(a.listen)
        .with_context(|| format!("--listen: cannot listen on {}", a.listen))?;
    println!(
        "serving {} ({}) on http://{}{}",
        a.model.display(),
        state.model().info().spec,
        listener.local_addr()?,
        if keyed {
            ""
        } else {
            " (no API key: writes and admin routes are closed; give --api-key-file)"
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
