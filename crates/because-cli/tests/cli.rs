//! The `because` binary end to end.

use std::path::Path;
use std::process::{Command, Output};

fn because(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_because"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn ok(args: &[&str]) -> String {
    let out = because(args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "because {args:?} failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn fails(args: &[&str]) -> String {
    let out = because(args);
    assert!(!out.status.success(), "because {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn demo_runs_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let text = ok(&["demo", "--size", "tiny", "--out", out.to_str().unwrap()]);
    assert!(text.contains("where everything went"), "{text}");
    assert!(text.contains("leakage check: 0"), "{text}");
    for f in [
        "report.html",
        "clean_report.json",
        "eda/eda.json",
        "eda/figures/long_tail.png",
        "eda/figures/funnel.svg",
        "split/train.csv",
        "split/test.csv",
        "models/evaluation.json",
        "models/figures/comparison.png",
        "models/best/manifest.json",
        "models/recommendations.json",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("clean_report.json")).unwrap())
            .unwrap();
    let dropped: u64 = report["dropped"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(
        report["rows_read"].as_u64().unwrap(),
        report["rows_kept"].as_u64().unwrap() + dropped
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        html.contains("<svg")
            && html.contains("Cleaning")
            && html.contains("Sample recommendations")
    );
}

#[test]
fn bad_input_gets_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.csv");
    let e = fails(&["eda", "--data", missing.to_str().unwrap()]);
    assert!(
        e.contains("missing.csv") && e.contains("No such file"),
        "{e}"
    );
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "user,item,rating\n1,2,5\n1,3,five\n").unwrap();
    let e = fails(&[
        "clean",
        "--strict",
        "--data",
        bad.to_str().unwrap(),
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(
        e.contains("bad.csv:3: column 3 (rating): bad rating"),
        "{e}"
    );
    let e = fails(&[
        "clean",
        "--data",
        bad.to_str().unwrap(),
        "--rating-range",
        "5,1",
    ]);
    assert!(e.contains("--rating-range"), "{e}");
    let e = fails(&[
        "split",
        "--data",
        bad.to_str().unwrap(),
        "--validation",
        "0.7",
        "--test",
        "0.5",
    ]);
    assert!(e.contains("`test`"), "{e}");
    let e = fails(&[
        "split",
        "--data",
        bad.to_str().unwrap(),
        "--method",
        "temporal",
    ]);
    assert!(e.contains("timestamps"), "{e}");
    let e = fails(&[
        "clean",
        "--data",
        bad.to_str().unwrap(),
        "--duplicates",
        "median",
    ]);
    assert!(e.contains("--duplicates") && e.contains("median"), "{e}");
}

fn ml100k() -> Option<std::path::PathBuf> {
    because_data::testing::ml100k_dir()
}

#[test]
fn eda_on_movielens() {
    let Some(ml) = ml100k() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("eda");
    let text = ok(&[
        "eda",
        "--data",
        ml.join("ratings.csv").to_str().unwrap(),
        "--items",
        ml.join("items.csv").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        text.contains("943 users, 1682 items, 100000 interactions"),
        "{text}"
    );
    assert!(text.contains("most popular: Star Wars"), "{text}");
    for f in [
        "user_activity",
        "item_popularity",
        "long_tail",
        "ratings",
        "activity_over_time",
        "session_lengths",
    ] {
        assert!(
            out.join("figures").join(format!("{f}.png")).is_file(),
            "{f}.png"
        );
        assert!(
            out.join("figures").join(format!("{f}.svg")).is_file(),
            "{f}.svg"
        );
    }
    assert!(!out.join("figures/funnel.png").exists());
}

fn count_rows(p: &Path) -> usize {
    std::fs::read_to_string(p).unwrap().lines().count() - 1
}

#[test]
fn split_on_movielens_writes_leak_free_parts() {
    let Some(ml) = ml100k() else { return };
    let dir = tempfile::tempdir().unwrap();
    for method in [
        "user-temporal",
        "temporal",
        "random",
        "leave-last-out",
        "held-out-users",
    ] {
        let out = dir.path().join(method);
        let text = ok(&[
            "split",
            "--data",
            ml.join("ratings.csv").to_str().unwrap(),
            "--method",
            method,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(text.contains("leakage check: 0 "), "{method}: {text}");
        let mut total = 0;
        for part in [
            "train",
            "validation_foldin",
            "validation",
            "test_foldin",
            "test",
        ] {
            let p = out.join(format!("{part}.csv"));
            if p.exists() {
                total += count_rows(&p);
            }
        }
        assert_eq!(total, 100_000, "{method}");
        // The parts read back with the same header as the input.
        let head = std::fs::read_to_string(out.join("train.csv")).unwrap();
        assert!(head.starts_with("user_id,item_id,rating,timestamp\n"));
    }
}

fn evaluation(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("evaluation.json")).unwrap()).unwrap()
}

fn tiny_data(dir: &Path) -> std::path::PathBuf {
    let data = dir.join("data");
    ok(&[
        "generate",
        "--size",
        "tiny",
        "--out",
        data.to_str().unwrap(),
    ]);
    data
}

#[test]
fn generate_writes_the_retail_shape_and_refuses_ratings_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("shop");
    let o = out.to_str().unwrap();
    ok(&["generate", "--size", "retail-small", "--out", o]);
    let log = std::fs::read_to_string(out.join("interactions.csv")).unwrap();
    assert!(
        log.starts_with("user_id,item_id,timestamp,event\n"),
        "{}",
        &log[..60]
    );
    for event in ["view", "addtocart", "transaction"] {
        assert!(log.contains(&format!(",{event}\n")), "no {event}");
    }
    let e = fails(&["generate", "--size", "retail", "--ratings", "--out", o]);
    assert!(e.contains("--ratings"), "{e}");
    let e = fails(&["generate", "--size", "huge", "--out", o]);
    assert!(e.contains("retail-small"), "{e}");

    // Its visitors' sessions, replayed event by event: item-kNN finds the
    // planted successors that popularity cannot.
    let log = out.join("interactions.csv");
    let ev = dir.path().join("sessions");
    let text = ok(&[
        "evaluate",
        "--data",
        log.to_str().unwrap(),
        "--sessions",
        "--models",
        "pop,itemknn",
        "--k",
        "10,20",
        "--out",
        ev.to_str().unwrap(),
    ]);
    assert!(
        text.contains("sessions (at gaps over 30 minutes)"),
        "{text}"
    );
    let c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ev.join("sessions.json")).unwrap()).unwrap();
    assert_eq!(c["best"], "itemknn", "{text}");
    let hit = |t: usize| {
        c["trials"][t]["test"]["metrics"]["hitrate@20"]
            .as_f64()
            .unwrap()
    };
    assert!(hit(1) > 2.0 * hit(0), "{text}");
    assert!(c["report"]["test_predictions"].as_u64().unwrap() > 100);
    let e = fails(&[
        "evaluate",
        "--data",
        log.to_str().unwrap(),
        "--sessions",
        "--test",
        "test.csv",
    ]);
    assert!(e.contains("--test"), "{e}");
}

#[test]
fn train_recommend_and_similar() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path());
    let model = dir.path().join("model");
    let (log, items, m) = (
        data.join("interactions.csv"),
        data.join("items.csv"),
        model.to_str().unwrap(),
    );
    ok(&[
        "train",
        "--data",
        log.to_str().unwrap(),
        "--items",
        items.to_str().unwrap(),
        "--model",
        "itemknn:neighbours=20",
        "--out",
        m,
    ]);
    assert!(model.join("manifest.json").is_file() && model.join("model.safetensors").is_file());
    // The event types of the log, and the values they gave, are kept.
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("manifest.json")).unwrap())
            .unwrap();
    let events = manifest["events"].as_array().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["name"] == "transaction" && e["weight"] == 5.0),
        "{events:?}"
    );
    let text = ok(&["recommend", "--model", m, "--user", "1", "--k", "3"]);
    assert!(
        text.contains("top 3 for user 1") && text.contains(" 3. "),
        "{text}"
    );
    let text = ok(&["recommend", "--model", m, "--user", "no-such-user"]);
    assert!(
        text.contains("unknown to the model") && text.contains("fallback: popularity"),
        "{text}"
    );
    let text = ok(&["recommend", "--model", m, "--history", "1,2,999999"]);
    assert!(
        text.contains("item 999999 is unknown") && text.contains("history of 2 items"),
        "{text}"
    );
    let out = dir.path().join("recs.json");
    ok(&[
        "recommend",
        "--model",
        m,
        "--all",
        "--k",
        "5",
        "--out",
        out.to_str().unwrap(),
    ]);
    let recs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let users = recs["users"].as_object().unwrap();
    assert_eq!(users.len(), 300);
    assert!(users.values().all(|l| l.as_array().unwrap().len() == 5));
    assert!(users["1"][0]["title"].is_string());
    let text = ok(&["similar", "--model", m, "--item", "1", "--k", "4"]);
    assert!(
        text.contains("most similar to") && text.contains(" 4. "),
        "{text}"
    );
    let e = fails(&["similar", "--model", m, "--item", "nope"]);
    assert!(e.contains("--item: nope is unknown"), "{e}");
    // A reader that goes away (`because ... | head`) ends the command quietly.
    let mut child = Command::new(env!("CARGO_BIN_EXE_because"))
        .args([
            "recommend",
            "--model",
            m,
            "--user",
            "1",
            "--k",
            "50",
            "--json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("panicked"),
        "{stderr}"
    );
    // --json prints exactly the service's typed responses.
    let handle = because_service::ModelHandle::open(&model).unwrap();
    let json = ok(&[
        "recommend",
        "--model",
        m,
        "--user",
        "1",
        "--k",
        "3",
        "--json",
    ]);
    let want = handle
        .recommend(&because_service::RecommendRequest::user("1", 3))
        .unwrap();
    assert_eq!(json.trim(), serde_json::to_string_pretty(&want).unwrap());
    let json = ok(&["similar", "--model", m, "--item", "1", "--k", "4", "--json"]);
    let want = handle
        .similar(&because_service::SimilarRequest {
            item: "1".into(),
            k: 4,
        })
        .unwrap();
    assert_eq!(json.trim(), serde_json::to_string_pretty(&want).unwrap());
    // A damaged model folder is a clear error.
    let t = model.join("model.safetensors");
    let bytes = std::fs::read(&t).unwrap();
    std::fs::write(&t, &bytes[..100]).unwrap();
    let e = fails(&["recommend", "--model", m, "--user", "1"]);
    assert!(
        e.contains("model.safetensors") && e.contains("truncated"),
        "{e}"
    );
}

#[test]
fn evaluate_and_tune() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path());
    let log = data.join("interactions.csv");
    let out = dir.path().join("eval");
    let text = ok(&[
        "evaluate",
        "--data",
        log.to_str().unwrap(),
        "--models",
        "pop,ease:lambda=10,als:factors=8,iterations=3",
        "--k",
        "5,10",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        text.contains("ease:lambda=10")
            && text.contains("als:factors=8,iterations=3")
            && text.contains("bootstrap"),
        "{text}"
    );
    let ev: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("evaluation.json")).unwrap())
            .unwrap();
    assert_eq!(ev["results"].as_array().unwrap().len(), 3);
    assert!(
        ev["results"][1]["test"]["ndcg@10"].as_f64().unwrap()
            > ev["results"][0]["test"]["ndcg@10"].as_f64().unwrap()
    );
    assert!(out.join("figures/comparison.svg").is_file() && out.join("report.html").is_file());
    let tune = dir.path().join("tune");
    let text = ok(&[
        "tune",
        "--data",
        log.to_str().unwrap(),
        "--model",
        "ease",
        "--grid",
        "lambda=1,10,100",
        "--out",
        tune.to_str().unwrap(),
    ]);
    assert!(
        text.contains("chosen: ease:lambda=") && text.contains("refitted on train + validation"),
        "{text}"
    );
    assert!(
        text.contains("model to deploy: ease:lambda=")
            && text.contains("(train + validation + test)"),
        "{text}"
    );
    assert!(
        tune.join("evaluation.json").is_file()
            && tune.join("figures/lambda.png").is_file()
            && tune.join("model/manifest.json").is_file()
    );
    // The model to deploy learned from every (user, item) pair of the input,
    // while the test numbers come from the fit on train + validation.
    let deployed = because_models::persist::load(&tune.join("model")).unwrap();
    let data = because_data::read_interactions(&log, &Default::default()).unwrap();
    let pairs: std::collections::HashSet<(u32, u32)> = data
        .dataset
        .interactions
        .iter()
        .map(|r| (r.user, r.item))
        .collect();
    assert_eq!(deployed.model.train().ui.nnz(), pairs.len());
    let ev = evaluation(&tune);
    assert_eq!(ev["production"]["interactions"], pairs.len());
    assert_eq!(ev["production"]["folder"], "model");
    assert_eq!(ev["protocol"]["final_mode"], "refit");
    assert!(ev["data"]["parts"]["evaluated"]["train"].as_u64().unwrap() < pairs.len() as u64);
    let e = fails(&[
        "evaluate",
        "--data",
        log.to_str().unwrap(),
        "--models",
        "pop,nope",
    ]);
    assert!(e.contains("--models") && e.contains("unknown model"), "{e}");
    let e = fails(&[
        "tune",
        "--data",
        log.to_str().unwrap(),
        "--model",
        "ease",
        "--grid",
        "rank=1,2",
    ]);
    assert!(e.contains("--grid") && e.contains("\"rank\""), "{e}");
    // A bad value fails before any data is read or model fitted, naming its key.
    let out = because(&[
        "tune",
        "--data",
        log.to_str().unwrap(),
        "--model",
        "als",
        "--grid",
        "factors=2,4",
        "--grid",
        "regularization=0.1,-1",
    ]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        e.contains("--grid") && e.contains("`regularization`"),
        "{e}"
    );
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let e = fails(&[
        "tune",
        "--data",
        log.to_str().unwrap(),
        "--model",
        "ease",
        "--grid",
        "lambda=1",
        "--metric",
        "auc@10",
    ]);
    assert!(e.contains("--metric"), "{e}");
}

#[test]
fn explain_recommendations() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path());
    let (log, items) = (data.join("interactions.csv"), data.join("items.csv"));
    let model = dir.path().join("ease");
    let m = model.to_str().unwrap();
    ok(&[
        "train",
        "--data",
        log.to_str().unwrap(),
        "--items",
        items.to_str().unwrap(),
        "--model",
        "ease:lambda=10",
        "--out",
        m,
    ]);
    let text = ok(&[
        "recommend",
        "--model",
        m,
        "--user",
        "1",
        "--k",
        "2",
        "--explain",
    ]);
    assert!(
        text.contains("Because you liked") && text.contains("exact, they add up to the score"),
        "{text}"
    );
    let top = text
        .lines()
        .find(|l| l.trim_start().starts_with("1."))
        .unwrap();
    let id = top
        .rsplit('[')
        .next()
        .unwrap()
        .split(']')
        .next()
        .unwrap()
        .to_string();
    let users = data.join("users.csv");
    let json = ok(&[
        "explain",
        "--model",
        m,
        "--user",
        "1",
        "--item",
        &id,
        "--json",
        "--events",
        log.to_str().unwrap(),
        "--users",
        users.to_str().unwrap(),
        "--items",
        items.to_str().unwrap(),
    ]);
    let r: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(r["subject"]["user"], "1");
    let v = &r["explanation"];
    assert_eq!(v["exact"], true);
    assert_eq!(v["item"]["id"], id.as_str());
    assert!(v["narrative"]
        .as_str()
        .unwrap()
        .starts_with("Because you liked"));
    let reasons = v["reasons"].as_array().unwrap();
    let kind = |k: &str| reasons.iter().find(|r| r["kind"] == k);
    assert_eq!(reasons[0]["kind"], "history");
    assert!(
        kind("counterfactual").unwrap()["rank_before"]
            .as_u64()
            .unwrap()
            >= 1
    );
    // The synthetic log has purchases and carts, the items have genres.
    assert!(
        kind("intent").is_some() && kind("item_feature").is_some(),
        "{json}"
    );
    for r in reasons {
        assert!(["model", "data"].contains(&r["basis"].as_str().unwrap()));
        assert!(!r["sentence"].as_str().unwrap().is_empty());
    }
    // The explanation names only the user's own items: no user anywhere.
    let explanation = serde_json::to_string(v).unwrap();
    assert!(!explanation.contains("\"user\""), "{explanation}");
    let figures = dir.path().join("why");
    ok(&[
        "explain",
        "--model",
        m,
        "--user",
        "1",
        "--item",
        &id,
        "--plot",
        figures.to_str().unwrap(),
    ]);
    for f in [
        "contributions",
        "history_heatmap",
        "history_similarity",
        "scores",
    ] {
        for ext in ["png", "svg"] {
            assert!(figures.join(format!("{f}.{ext}")).is_file(), "{f}.{ext}");
        }
    }
    let e = fails(&[
        "explain",
        "--model",
        m,
        "--user",
        "1",
        "--item",
        &id,
        "--trend-days",
        "0",
    ]);
    assert!(e.contains("--trend-days"), "{e}");
    // An unknown user gets popular items, and the reason says so.
    let text = ok(&[
        "recommend",
        "--model",
        m,
        "--user",
        "nobody",
        "--k",
        "2",
        "--explain",
    ]);
    assert!(
        text.contains("fallback: popularity") && text.contains("Chosen by"),
        "{text}"
    );
    let bpr = dir.path().join("bpr");
    ok(&[
        "train",
        "--data",
        log.to_str().unwrap(),
        "--model",
        "bpr:factors=4,epochs=2",
        "--out",
        bpr.to_str().unwrap(),
    ]);
    let e = fails(&[
        "explain",
        "--model",
        bpr.to_str().unwrap(),
        "--user",
        "1",
        "--item",
        &id,
    ]);
    assert!(e.contains("not supported by the bpr model"), "{e}");
    // Without explicit epochs, train stops early and records how.
    let early = dir.path().join("bpr-early");
    let text = ok(&[
        "train",
        "--data",
        log.to_str().unwrap(),
        "--model",
        "bpr:factors=4",
        "--early-stopping",
        "1",
        "--check-every",
        "2",
        "--out",
        early.to_str().unwrap(),
    ]);
    assert!(text.contains("early stopping: "), "{text}");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(early.join("manifest.json")).unwrap())
            .unwrap();
    let stopped = &manifest["metrics"]["early_stopping"];
    let best = stopped["best_epoch"].as_u64().unwrap();
    assert_eq!(best % 2, 0, "{stopped}");
    assert!(
        stopped["epochs_run"].as_u64().unwrap() <= best + 2,
        "{stopped}"
    );
    assert!(early.join("figures/validation_curve.png").is_file());
    let e = fails(&[
        "train",
        "--data",
        log.to_str().unwrap(),
        "--model",
        "bpr",
        "--early-stopping",
        "0",
    ]);
    assert!(e.contains("`off`"), "{e}");
    let out = dir.path().join("fidelity");
    let text = ok(&[
        "explain-eval",
        "--data",
        log.to_str().unwrap(),
        "--model",
        "ease:lambda=10",
        "--users",
        "20",
        "--k",
        "5",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        text.contains("rank drop removing the 3 items named")
            && text.contains("verified counterfactual"),
        "{text}"
    );
    let f: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("fidelity.json")).unwrap()).unwrap();
    assert_eq!(f["recommendations"], 100);
    assert!(out.join("figures/diversity_across_users.png").is_file());
    assert!(
        f["deletion_rank_drop_named"]["mean"].as_f64().unwrap()
            > f["deletion_rank_drop_random"]["mean"].as_f64().unwrap()
    );
    // An unknown user's explanation is the fallback's, and says so.
    let text = ok(&[
        "explain", "--model", m, "--user", "nobody", "--item", &id, "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["fallback"]["strategy"], "popularity", "{text}");
    assert_eq!(
        v["explanation"]["reasons"][0]["kind"], "popularity",
        "{text}"
    );
    let e = fails(&["explain", "--model", m, "--user", "1", "--item", "nope"]);
    assert!(e.contains("--item: nope is unknown"), "{e}");
}

/// The metrics of every model in an `evaluation.json`, by model.
fn metrics(ev: &serde_json::Value) -> Vec<(String, serde_json::Value, serde_json::Value)> {
    ev["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["model"].as_str().unwrap().to_string(),
                r["validation"].clone(),
                r["test"].clone(),
            )
        })
        .collect()
}

#[test]
fn given_parts_evaluate_like_the_internal_split() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path());
    let log = data.join("interactions.csv");
    let split = dir.path().join("split");
    ok(&[
        "split",
        "--data",
        log.to_str().unwrap(),
        "--seed",
        "7",
        "--out",
        split.to_str().unwrap(),
    ]);
    let part = |p: &str| split.join(format!("{p}.csv"));
    let models = "pop,itemknn,ease:lambda=10";
    let evaluate = |data: &[&str], out: &Path| {
        let mut args = vec!["evaluate"];
        args.extend_from_slice(data);
        args.extend([
            "--models",
            models,
            "--seed",
            "7",
            "--out",
            out.to_str().unwrap(),
        ]);
        ok(&args);
        evaluation(out)
    };
    let given = evaluate(
        &[
            "--train",
            part("train").to_str().unwrap(),
            "--validation",
            part("validation").to_str().unwrap(),
            "--test",
            part("test").to_str().unwrap(),
        ],
        &dir.path().join("given"),
    );
    assert_eq!(given["data"]["source"]["kind"], "given");
    // The same log, rows in the order train, validation, test, so that both
    // runs index users and items alike: the same split made internally
    // gives the same numbers, exactly.
    let whole = dir.path().join("whole.csv");
    let mut text = std::fs::read_to_string(part("train")).unwrap();
    for p in ["validation", "test"] {
        let rows = std::fs::read_to_string(part(p)).unwrap();
        text.push_str(rows.split_once('\n').unwrap().1);
    }
    std::fs::write(&whole, text).unwrap();
    let internal = evaluate(
        &["--data", whole.to_str().unwrap()],
        &dir.path().join("internal"),
    );
    assert_eq!(internal["data"]["source"]["kind"], "split");
    assert_eq!(metrics(&given), metrics(&internal));
    assert_eq!(given["data"]["parts"], internal["data"]["parts"]);
    assert_eq!(given["significance"], internal["significance"]);
    // Split from the original log, users and items are numbered in another
    // order; only ties between equal scores may then break differently, and
    // EASE has none.
    let original = evaluate(
        &["--data", log.to_str().unwrap()],
        &dir.path().join("original"),
    );
    assert_eq!(given["data"]["parts"], original["data"]["parts"]);
    let (a, b) = (&metrics(&given)[2], &metrics(&original)[2]);
    assert_eq!(a.0, "ease:lambda=10");
    for (x, y) in [(&a.1, &b.1), (&a.2, &b.2)] {
        for (k, v) in x.as_object().unwrap() {
            let w = y[k].as_f64().unwrap();
            assert!(
                (v.as_f64().unwrap() - w).abs() < 1e-9,
                "{k}: {v} against {w}"
            );
        }
    }
    // Given parts exclude a split method, and need all three files.
    let e = fails(&[
        "evaluate",
        "--train",
        part("train").to_str().unwrap(),
        "--validation",
        part("validation").to_str().unwrap(),
        "--test",
        part("test").to_str().unwrap(),
        "--method",
        "random",
    ]);
    assert!(e.contains("--train") && e.contains("--method"), "{e}");
    let e = fails(&[
        "tune",
        "--model",
        "ease",
        "--grid",
        "lambda=1",
        "--train",
        part("train").to_str().unwrap(),
        "--validation",
        part("validation").to_str().unwrap(),
    ]);
    assert!(e.contains("--test"), "{e}");
    let e = fails(&[
        "evaluate",
        "--data",
        log.to_str().unwrap(),
        "--validation",
        part("validation").to_str().unwrap(),
    ]);
    assert!(e.contains("--validation") && e.contains("--train"), "{e}");
    // explain-eval explains the model trained on the training part.
    let out = dir.path().join("fidelity");
    let text = ok(&[
        "explain-eval",
        "--train",
        part("train").to_str().unwrap(),
        "--validation",
        part("validation").to_str().unwrap(),
        "--test",
        part("test").to_str().unwrap(),
        "--model",
        "ease:lambda=10",
        "--users",
        "10",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(text.contains("trained on the training part"), "{text}");
    assert!(out.join("fidelity.json").is_file());
}

/// The keys of an object, sorted.
fn keys(v: &serde_json::Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

#[test]
fn evaluation_json_has_one_shape() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path());
    let log = data.join("interactions.csv");
    let (eval, tune, demo) = (
        dir.path().join("eval"),
        dir.path().join("tune"),
        dir.path().join("demo"),
    );
    ok(&[
        "evaluate",
        "--data",
        log.to_str().unwrap(),
        "--models",
        "pop,ease:lambda=10",
        "--out",
        eval.to_str().unwrap(),
    ]);
    ok(&[
        "tune",
        "--data",
        log.to_str().unwrap(),
        "--model",
        "ease",
        "--grid",
        "lambda=1,10",
        "--out",
        tune.to_str().unwrap(),
    ]);
    ok(&["demo", "--size", "tiny", "--out", demo.to_str().unwrap()]);
    let files = [
        ("evaluate", evaluation(&eval)),
        ("tune", evaluation(&tune)),
        ("demo", evaluation(&demo.join("models"))),
    ];
    let (_, first) = &files[0];
    for (command, ev) in &files {
        assert_eq!(ev["command"], *command);
        assert_eq!(
            ev["format_version"],
            because_eval::experiment::FORMAT_VERSION
        );
        assert_eq!(keys(ev), keys(first), "{command}");
        for field in ["data", "protocol"] {
            assert_eq!(keys(&ev[field]), keys(&first[field]), "{command} {field}");
        }
        assert_eq!(
            keys(&ev["results"][0]),
            keys(&first["results"][0]),
            "{command}"
        );
        assert_eq!(
            keys(&ev["significance"][0]),
            keys(&first["significance"][0])
        );
        // Best is chosen on validation, and the file says so.
        let by = ev["selected_by"].as_str().unwrap();
        assert!(by.starts_with("validation "), "{command}: {by}");
        let metric = by.trim_start_matches("validation ");
        let best = ev["results"]
            .as_array()
            .unwrap()
            .iter()
            .max_by(|a, b| {
                a["validation"][metric]
                    .as_f64()
                    .unwrap()
                    .total_cmp(&b["validation"][metric].as_f64().unwrap())
            })
            .unwrap();
        assert_eq!(ev["best"], best["model"], "{command}");
        // The typed record reads every one of them.
        let typed: because_eval::experiment::EvaluationFile =
            serde_json::from_value(ev.clone()).unwrap();
        assert_eq!(typed.command, *command);
    }
    assert!(files[1].1["tuning"][0]["trials"].as_array().unwrap().len() == 2);
    assert!(files[0].1["tuning"].as_array().unwrap().is_empty());
    // Evaluating deploys nothing; tuning and the demo deploy the best, and
    // say where.
    assert!(files[0].1["production"].is_null());
    assert_eq!(files[1].1["production"]["folder"], "model");
    assert_eq!(files[2].1["production"]["folder"], "best");
}

/// The example experiment file, with its data paths pointed at `ml`.
fn example_experiment(dir: &Path, ml: &Path) -> std::path::PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(root.join("examples/movielens.toml")).unwrap();
    assert!(
        text.contains("\"../data/ml-100k/"),
        "the example reads ../data/ml-100k"
    );
    let text = text.replace("\"../data/ml-100k/", &format!("\"{}/", ml.display()));
    let path = dir.join("movielens.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_example_experiment_runs_and_reruns_exactly() {
    let Some(ml) = because_data::testing::ml100k_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = example_experiment(dir.path(), &ml);
    let out = dir.path().join("out");
    let text = ok(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(text.contains("best on validation"), "{text}");
    let read = |p: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    let e = read(&out.join("evaluation.json"));
    assert_eq!(e["command"], "run");
    assert!(e["selected_by"].as_str().unwrap().starts_with("validation"));
    // Three models had grids; four were compared on test.
    assert_eq!(e["tuning"].as_array().unwrap().len(), 3);
    assert_eq!(e["results"].as_array().unwrap().len(), 4);
    // The model to deploy learned from every interaction kept (a 5-core).
    let model = because_models::persist::load(&out.join("model")).unwrap();
    let kept = e["production"]["interactions"].as_u64().unwrap() as usize;
    assert_eq!(model.model.train().ui.nnz(), kept);
    assert!(text.contains(&format!("{kept} kept")), "{text}");
    // The resolved file reruns the same study.
    let resolved = out.join("experiment.resolved.toml");
    let r = std::fs::read_to_string(&resolved).unwrap();
    assert!(
        r.contains("[provenance]") && r.contains("data_fingerprint"),
        "{r}"
    );
    let again = dir.path().join("again");
    ok(&[
        "run",
        resolved.to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
    ]);
    let e2 = read(&again.join("evaluation.json"));
    assert_eq!(e2["best"], e["best"]);
    for (a, b) in e["results"]
        .as_array()
        .unwrap()
        .iter()
        .zip(e2["results"].as_array().unwrap())
    {
        assert_eq!(a["model"], b["model"]);
        assert_eq!(a["test"], b["test"]);
    }
}

#[test]
fn experiment_files_name_bad_keys_and_partition_by_a_feature() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path());
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let log = data.join("interactions.csv");
    let bad = write(
        "bad.toml",
        &format!(
            "[data]\npath = {:?}\n\n[split]\nmethd = \"random\"\n\n[[model]]\nspec = \"pop\"\n",
            log.to_str().unwrap()
        ),
    );
    let e = fails(&["run", bad.to_str().unwrap()]);
    assert!(e.contains("line 5") && e.contains("`methd`"), "{e}");
    // A bad grid value fails before any data is read.
    let grid = write(
        "grid.toml",
        "[data]\npath = \"nowhere.csv\"\n\n[[model]]\nspec = \"ease\"\ngrid = { lambda = [10, -1] }\n",
    );
    let e = fails(&["run", grid.to_str().unwrap()]);
    assert!(e.contains("`lambda`") && !e.contains("nowhere"), "{e}");
    let study = write(
        "part.toml",
        &format!(
            "[data]\npath = {:?}\nitems = {:?}\npartition_by = \"genres\"\n\n[[model]]\nspec = \"pop\"\n\n[[model]]\nspec = \"ease\"\ngrid = {{ lambda = [10, 100] }}\n\n[output]\ndir = \"parts\"\n",
            log.to_str().unwrap(),
            data.join("items.csv").to_str().unwrap()
        ),
    );
    let text = ok(&["run", study.to_str().unwrap()]);
    let out = dir.path().join("parts");
    let rows: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("partitions.json")).unwrap())
            .unwrap();
    let rows = rows.as_array().unwrap();
    assert!(rows.len() >= 3, "{text}");
    for r in rows {
        let level = r["partition"].as_str().unwrap();
        assert!(
            text.contains(&format!("partition genres = {level}")),
            "{text}"
        );
        let e: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.join("partitions").join(level).join("evaluation.json"))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(e["best"], r["best"]);
        assert!(r["interactions"].as_u64().unwrap() > 0);
        // The deployed model keeps the log's event types.
        let manifest: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(
                out.join("partitions")
                    .join(level)
                    .join("model/manifest.json"),
            )
            .unwrap(),
        )
        .unwrap();
        assert!(!manifest["events"].as_array().unwrap().is_empty());
    }
}

#[test]
fn serve_answers_over_http() {
    use std::io::{BufRead, Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path());
    let model = dir.path().join("model");
    ok(&[
        "train",
        "--data",
        data.join("interactions.csv").to_str().unwrap(),
        "--model",
        "ease:lambda=10",
        "--out",
        model.to_str().unwrap(),
    ]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_because"))
        .args([
            "serve",
            "--model",
            model.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    let get = |path: &str| -> String {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let health = get("/healthz");
    let recs = get("/v1/users/1/recommendations?k=3");
    let missing = get("/v1/items/no-such-item/similar");
    child.kill().unwrap();
    let _ = child.wait();
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(
        recs.starts_with("HTTP/1.1 200") && recs.contains("\"rank\":3"),
        "{recs}"
    );
    assert!(
        missing.starts_with("HTTP/1.1 404") && missing.contains("not_found"),
        "{missing}"
    );
}

/// Sends one HTTP/1.1 request and returns the status and body, or `None`
/// when the server is gone.
fn http(addr: &str, method: &str, path: &str, key: &str, body: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.get(9..12)?.parse().ok()?;
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    Some((status, body))
}

/// Starts `because serve` and returns it with its address.
fn start_server(args: &[&str]) -> (std::process::Child, String) {
    start_server_with(args, &[])
}

/// Starts `because serve` with environment variables.
fn start_server_with(args: &[&str], env: &[(&str, &str)]) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_because"))
        .arg("serve")
        .args(args)
        .envs(env.iter().copied())
        .args(["--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    (child, addr)
}

#[test]
fn acknowledged_events_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path());
    let model = dir.path().join("model");
    ok(&[
        "train",
        "--data",
        data.join("interactions.csv").to_str().unwrap(),
        "--model",
        "pop",
        "--out",
        model.to_str().unwrap(),
    ]);
    let key = "a-test-key-of-some-length";
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, key).unwrap();
    // The same test against each database (PostgreSQL when configured).
    for db in because_events::testing::databases(dir.path()) {
        let setting = match &db {
            because_events::Database::Postgres(url) => url.clone(),
            sqlite => sqlite.to_string(),
        };
        eprintln!("against {db}");
        let args = [
            "--model",
            model.to_str().unwrap(),
            "--api-key-file",
            key_file.to_str().unwrap(),
            "--database",
            &setting,
        ];
        killed_mid_stream(&args, key);
    }
}

/// Streams keyed events to a server started with `args`, kills it with
/// SIGKILL mid-stream, restarts it, and checks every acknowledged event is
/// stored exactly once.
fn killed_mid_stream(args: &[&str], key: &'static str) {
    let (mut server, addr) = start_server(args);
    // Stream batches of keyed events; kill the server mid-stream.
    let batches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sender = {
        let addr = addr.clone();
        let batches = batches.clone();
        std::thread::spawn(move || {
            let mut acked = Vec::new();
            // At most 8,000 events, under the 10,000 a history lists.
            for batch in 0..400 {
                let keys: Vec<String> = (0..20).map(|k| format!("b{batch}-{k}")).collect();
                let events: Vec<String> = keys
                    .iter()
                    .map(|k| {
                        format!(r#"{{"user": "stream", "item": "1", "idempotency_key": "{k}"}}"#)
                    })
                    .collect();
                let body = format!(r#"{{"events": [{}]}}"#, events.join(","));
                match http(&addr, "POST", "/v1/events", key, &body) {
                    Some((200, _)) => {
                        acked.extend(keys);
                        batches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    _ => break,
                }
            }
            acked
        })
    };
    // Kill it once a quarter of the stream is acknowledged: mid-stream,
    // however fast the machine.
    let start = std::time::Instant::now();
    while batches.load(std::sync::atomic::Ordering::SeqCst) < 100
        && start.elapsed() < std::time::Duration::from_secs(60)
    {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    server.kill().unwrap(); // SIGKILL
    let _ = server.wait();
    let acked = sender.join().unwrap();
    assert!(
        (2_000..8_000).contains(&acked.len()),
        "the server acknowledged {} events before it was killed",
        acked.len()
    );
    let (mut server, addr) = start_server(args);
    let listed = http(&addr, "GET", "/v1/users/stream/events", key, "");
    server.kill().unwrap();
    let _ = server.wait();
    let (status, body) = listed.expect("the restarted server answers");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let stored: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["idempotency_key"].as_str().unwrap())
        .collect();
    let unique: std::collections::HashSet<&str> = stored.iter().copied().collect();
    eprintln!(
        "kill -9 mid-stream: {} events acknowledged, {} stored after the restart",
        acked.len(),
        stored.len()
    );
    assert_eq!(unique.len(), stored.len(), "an event was stored twice");
    for k in &acked {
        assert!(
            unique.contains(k.as_str()),
            "acknowledged event {k} was lost"
        );
    }
}

#[test]
fn serve_settings_come_from_flags_environment_and_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path());
    ok(&[
        "train",
        "--data",
        data.join("interactions.csv").to_str().unwrap(),
        "--model",
        "pop",
        "--out",
        dir.path().join("model").to_str().unwrap(),
    ]);
    std::fs::write(dir.path().join("key"), "from-the-config-file-key").unwrap();
    let config = dir.path().join("serve.toml");
    std::fs::write(
        &config,
        "model = \"model\"\napi_key_file = \"key\"\nlisten = \"127.0.0.1:8080\"\n",
    )
    .unwrap();
    let db = dir.path().join("custom.sqlite");
    let (mut server, addr) = start_server_with(
        &["--config", config.to_str().unwrap()],
        &[("BECAUSE_DATABASE", db.to_str().unwrap())],
    );
    let event = r#"{"events": [{"user": "1", "item": "1"}]}"#;
    let denied = http(&addr, "POST", "/v1/events", "wrong", event);
    let stored = http(
        &addr,
        "POST",
        "/v1/events",
        "from-the-config-file-key",
        event,
    );
    server.kill().unwrap();
    let _ = server.wait();
    assert_eq!(denied.map(|r| r.0), Some(401));
    assert_eq!(stored.map(|r| r.0), Some(200));
    assert!(db.is_file(), "the database named by BECAUSE_DATABASE");
    std::fs::write(&config, "modle = \"model\"\n").unwrap();
    let e = fails(&["serve", "--config", config.to_str().unwrap()]);
    assert!(e.contains("`modle`") && e.contains("line 1"), "{e}");
}

#[test]
fn no_request_fails_while_the_model_is_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path());
    let log = data.join("interactions.csv");
    let model = dir.path().join("model");
    let train = |spec: &str| {
        ok(&[
            "train",
            "--data",
            log.to_str().unwrap(),
            "--model",
            spec,
            "--out",
            model.to_str().unwrap(),
        ]);
    };
    train("ease:lambda=10");
    let key = "a-test-key-of-some-length";
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, key).unwrap();
    let (mut server, addr) = start_server(&[
        "--model",
        model.to_str().unwrap(),
        "--api-key-file",
        key_file.to_str().unwrap(),
    ]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..3)
        .map(|c| {
            let (addr, stop) = (addr.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut statuses = Vec::new();
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let path = format!(
                        "/v1/users/{}/recommendations?k=5&explain=true",
                        1 + (n + c) % 50
                    );
                    statuses.push(http(&addr, "GET", &path, "", "").map(|r| r.0));
                    n += 1;
                }
                statuses
            })
        })
        .collect();
    // Retrain into the folder and reload, over and over, under that load.
    let mut kinds = Vec::new();
    for spec in [
        "itemknn:neighbours=20",
        "ease:lambda=50",
        "pop",
        "ease:lambda=10",
    ] {
        train(spec);
        let (status, body) = http(&addr, "POST", "/v1/admin/reload", key, "").unwrap();
        assert_eq!(status, 200, "{body}");
        kinds.push(body);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let statuses: Vec<Option<u16>> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    server.kill().unwrap();
    let _ = server.wait();
    eprintln!("{} requests during 4 reloads", statuses.len());
    assert!(statuses.len() > 20, "{} requests", statuses.len());
    let failed = statuses.iter().filter(|s| **s != Some(200)).count();
    assert_eq!(
        failed,
        0,
        "{failed} of {} requests failed during reloads",
        statuses.len()
    );
    assert!(
        kinds[0].contains("itemknn") && kinds[2].contains("\"pop"),
        "{kinds:?}"
    );
}

#[test]
fn a_watched_link_swaps_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path());
    let log = data.join("interactions.csv");
    for (name, spec) in [("v1", "ease:lambda=10"), ("v2", "itemknn:neighbours=20")] {
        ok(&[
            "train",
            "--data",
            log.to_str().unwrap(),
            "--model",
            spec,
            "--out",
            dir.path().join(name).to_str().unwrap(),
        ]);
    }
    let current = dir.path().join("current");
    std::os::unix::fs::symlink(dir.path().join("v1"), &current).unwrap();
    let (mut server, addr) = start_server(&["--model", current.to_str().unwrap(), "--watch"]);
    let kind = || {
        let (_, body) = http(&addr, "GET", "/v1/model", "", "").unwrap();
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["kind"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(kind(), "ease");
    // Point the link at the new folder, atomically.
    let tmp = dir.path().join("current.tmp");
    std::os::unix::fs::symlink(dir.path().join("v2"), &tmp).unwrap();
    std::fs::rename(&tmp, &current).unwrap();
    let mut swapped = false;
    for _ in 0..50 {
        if kind() == "itemknn" {
            swapped = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    server.kill().unwrap();
    let _ = server.wait();
    assert!(swapped, "the server did not follow the link");
}

#[test]
fn train_learns_from_stored_events_with_or_without_the_log() {
    use because_events::{testing, Database, Event, EventStore};
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path());
    let log = data.join("interactions.csv");
    let log = log.to_str().unwrap();
    let event = |user: &str, item: &str, kind: &str, key: String| Event {
        user: user.into(),
        item: item.into(),
        event: Some(kind.into()),
        value: None,
        time: Some(1_700_000_000_000),
        idempotency_key: Some(key),
    };
    for db in testing::databases(dir.path()) {
        let setting = match &db {
            Database::Postgres(url) => url.clone(),
            sqlite => sqlite.to_string(),
        };
        // Nothing stored yet: training on the database alone says so.
        drop(EventStore::open(&db).unwrap());
        let e = fails(&["train", "--database", &setting, "--out", "unused"]);
        assert!(e.contains("no events are stored"), "{e}");
        // A newcomer and an item the log has never seen, bought by many.
        let mut batch: Vec<Event> = (1..=6)
            .map(|u| event(&u.to_string(), "brand-new", "transaction", format!("t{u}")))
            .collect();
        batch.push(event("newcomer", "1", "view", "n1".into()));
        batch.push(event("newcomer", "brand-new", "addtocart", "n2".into()));
        // The same pair twice: merged, the strongest event winning.
        batch.push(event("newcomer", "brand-new", "view", "n3".into()));
        EventStore::open(&db).unwrap().insert(&batch, 0).unwrap();

        let both = dir.path().join(format!("both-{}", db.backend()));
        let text = ok(&[
            "train",
            "--data",
            log,
            "--database",
            &setting,
            "--model",
            "itemknn",
            "--out",
            both.to_str().unwrap(),
        ]);
        assert!(text.contains("+ events in"), "{text}");
        assert!(text.contains("merge duplicates"), "{text}");
        let m = both.to_str().unwrap();
        let text = ok(&["recommend", "--model", m, "--user", "newcomer", "--json"]);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(v["fallback"].is_null(), "the newcomer is known: {v}");
        let text = ok(&["similar", "--model", m, "--item", "brand-new", "--k", "3"]);
        assert!(text.contains(" 3. "), "{text}");
        // The log's users are there too.
        let text = ok(&["recommend", "--model", m, "--user", "1", "--json"]);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(v["fallback"].is_null(), "{v}");

        // The events alone: only their users and items.
        let alone = dir.path().join(format!("alone-{}", db.backend()));
        let text = ok(&[
            "train",
            "--database",
            &setting,
            "--model",
            "pop",
            "--out",
            alone.to_str().unwrap(),
        ]);
        assert!(text.contains("9 rows read, 8 kept"), "{text}");
        let text = ok(&[
            "recommend",
            "--model",
            alone.to_str().unwrap(),
            "--user",
            "1",
            "--json",
        ]);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["items"][0]["item"], "1", "{v}");
        let e = fails(&["train", "--database", "mysql://x/y", "--out", "unused"]);
        assert!(e.contains("--database"), "{e}");
    }
}

#[test]
fn protected_reads_need_a_key_and_get_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path());
    let model = dir.path().join("model");
    let m = model.to_str().unwrap();
    ok(&[
        "train",
        "--data",
        data.join("interactions.csv").to_str().unwrap(),
        "--model",
        "pop",
        "--out",
        m,
    ]);
    let e = fails(&["serve", "--model", m, "--protect-reads"]);
    assert!(
        e.contains("--protect-reads") && e.contains("--api-key-file"),
        "{e}"
    );
    let key = "a-test-key-of-some-length";
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, key).unwrap();
    let (mut server, addr) = start_server_with(
        &["--model", m, "--api-key-file", key_file.to_str().unwrap()],
        &[("BECAUSE_PROTECT_READS", "true")],
    );
    let without = http(&addr, "GET", "/v1/users/1/recommendations", "wrong-key", "");
    let with = http(&addr, "GET", "/v1/users/1/recommendations", key, "");
    let health = http(&addr, "GET", "/healthz", "", "");
    server.kill().unwrap();
    let _ = server.wait();
    assert_eq!(without.unwrap().0, 401);
    assert_eq!(with.unwrap().0, 200);
    assert_eq!(health.unwrap().0, 200);
}

#[test]
fn serve_takes_several_keys_limits_rates_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path());
    let model = dir.path().join("model");
    let m = model.to_str().unwrap();
    ok(&[
        "train",
        "--data",
        data.join("interactions.csv").to_str().unwrap(),
        "--model",
        "pop",
        "--out",
        m,
    ]);
    let keys = dir.path().join("keys");
    std::fs::write(&keys, "ops ops-key-0123456789abc\nshop-key-0123456789abc\n").unwrap();
    let k = keys.to_str().unwrap();
    let e = fails(&["serve", "--model", m, "--read-key-file", k]);
    assert!(
        e.contains("--read-key-file") && e.contains("--protect-reads"),
        "{e}"
    );
    let e = fails(&["serve", "--model", m, "--rate-burst", "5"]);
    assert!(e.contains("--rate-limit"), "{e}");
    let e = fails(&["serve", "--model", m, "--rate-limit", "0"]);
    assert!(e.contains("--rate-limit"), "{e}");
    let e = fails(&["serve", "--model", m, "--cors-origin", "shop.example.com"]);
    assert!(e.contains("--cors-origin"), "{e}");
    let e = fails(&["serve", "--model", m, "--shutdown-delay=-1"]);
    assert!(e.contains("--shutdown-delay"), "{e}");
    let short = dir.path().join("short");
    std::fs::write(&short, "# keys\ntoo-short\n").unwrap();
    let e = fails(&[
        "serve",
        "--model",
        m,
        "--api-key-file",
        short.to_str().unwrap(),
    ]);
    assert!(e.contains("line 2") && !e.contains("too-short"), "{e}");
    let (mut server, addr) = start_server(&[
        "--model",
        m,
        "--api-key-file",
        k,
        "--rate-limit",
        "0.1",
        "--rate-burst",
        "2",
        "--cors-origin",
        "https://shop.example.com",
    ]);
    let event = r#"{"events": [{"user": "1", "item": "1"}]}"#;
    let by_ops = http(&addr, "POST", "/v1/events", "ops-key-0123456789abc", event);
    let by_shop = http(&addr, "POST", "/v1/events", "shop-key-0123456789abc", event);
    // Each key has its own bucket of 2.
    let again = http(&addr, "POST", "/v1/events", "ops-key-0123456789abc", event);
    let over = http(&addr, "POST", "/v1/events", "ops-key-0123456789abc", event);
    let health = http(&addr, "GET", "/healthz", "", "");
    // SIGTERM: the server drains and exits by itself, successfully.
    let term = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = server.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > std::time::Duration::from_secs(20) {
            server.kill().unwrap();
            panic!("serve did not stop on SIGTERM");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    assert_eq!(by_ops.map(|r| r.0), Some(200));
    assert_eq!(by_shop.map(|r| r.0), Some(200));
    assert_eq!(again.map(|r| r.0), Some(200));
    let (code, body) = over.unwrap();
    assert_eq!(code, 429, "{body}");
    assert!(body.contains("rate_limited"), "{body}");
    assert_eq!(health.map(|r| r.0), Some(200));
}

/// A sequential model through the command line: trained, asked for the
/// next items of a session (order matters), explained by occlusion.
#[test]
fn sequential_models_train_recommend_and_explain() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path());
    let model = dir.path().join("sasrec");
    let (log, m) = (data.join("interactions.csv"), model.to_str().unwrap());
    ok(&[
        "train",
        "--data",
        log.to_str().unwrap(),
        "--model",
        "sasrec:dim=16,layers=1,heads=2,ffn=16,max_len=10,epochs=2",
        "--out",
        m,
    ]);
    assert!(
        model.join("figures/training_loss.png").is_file(),
        "the training curve"
    );
    let text = ok(&["recommend", "--model", m, "--user", "1", "--k", "3"]);
    assert!(text.contains(" 3. "), "{text}");
    let forward = ok(&[
        "recommend",
        "--model",
        m,
        "--sequence",
        "1,2,3,4",
        "--k",
        "5",
        "--json",
    ]);
    let backward = ok(&[
        "recommend",
        "--model",
        m,
        "--sequence",
        "4,3,2,1",
        "--k",
        "5",
        "--json",
    ]);
    assert_ne!(
        forward, backward,
        "the order of a session changes a sequential model's answer"
    );
    let v: serde_json::Value = serde_json::from_str(&forward).unwrap();
    let first = v["items"][0]["item"].as_str().unwrap().to_string();
    let text = ok(&[
        "explain",
        "--model",
        m,
        "--sequence",
        "1,2,3,4",
        "--item",
        &first,
        "--json",
    ]);
    let e: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(e["explanation"]["method"], "occlusion", "{text}");
    assert_eq!(e["explanation"]["exact"], false, "{text}");
    // --plot draws the attention of this very recommendation.
    let figures = dir.path().join("why");
    ok(&[
        "explain",
        "--model",
        m,
        "--user",
        "1",
        "--item",
        &first,
        "--explain-method",
        "attention",
        "--plot",
        figures.to_str().unwrap(),
    ]);
    assert!(figures.join("attention.png").is_file(), "the attention map");
    // The model folder holds each method's deletion test, measured when it
    // was saved, and each explanation shows its own method's.
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("manifest.json")).unwrap())
            .unwrap();
    let measured = manifest["metrics"]["explanation_fidelity"]
        .as_array()
        .unwrap_or_else(|| panic!("{manifest}"))
        .clone();
    let names: Vec<&str> = measured
        .iter()
        .map(|m| m["method"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "occlusion",
            "attention",
            "attention_rollout",
            "gradient_input"
        ]
    );
    assert!(measured
        .iter()
        .all(|m| m["recommendations"].as_u64().unwrap() > 0));
    let ratio_of = |method: &str| -> serde_json::Value {
        let m = measured.iter().find(|m| m["method"] == method).unwrap();
        m["named_over_random"].clone()
    };
    // Every method the model offers, by name (`-` for `_` too), in the
    // explanation and in a list's explanations; one it lacks is named.
    for method in [
        "occlusion",
        "attention",
        "attention-rollout",
        "gradient_input",
    ] {
        let text = ok(&[
            "explain",
            "--model",
            m,
            "--sequence",
            "1,2,3,4",
            "--item",
            &first,
            "--explain-method",
            method,
            "--json",
        ]);
        let e: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            e["explanation"]["method"],
            method.replace('-', "_"),
            "{text}"
        );
        let shown = e["explanation"]
            .get("fidelity")
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        assert_eq!(shown, ratio_of(&method.replace('-', "_")), "{text}");
        let list = ok(&[
            "recommend",
            "--model",
            m,
            "--user",
            "1",
            "--k",
            "2",
            "--explain",
            "--explain-method",
            method,
            "--json",
        ]);
        let v: serde_json::Value = serde_json::from_str(&list).unwrap();
        for it in v["items"].as_array().unwrap() {
            assert_eq!(
                it["explanation"]["method"],
                method.replace('-', "_"),
                "{list}"
            );
        }
    }
    let err = fails(&[
        "explain",
        "--model",
        m,
        "--user",
        "1",
        "--item",
        &first,
        "--explain-method",
        "exact",
    ]);
    assert!(
        err.contains("--explain-method") && err.contains("offers occlusion, attention"),
        "{err}"
    );
    let err = fails(&[
        "explain",
        "--model",
        m,
        "--user",
        "1",
        "--item",
        &first,
        "--explain-method",
        "shapley",
    ]);
    assert!(err.contains("unknown explanation method"), "{err}");
    let e = fails(&[
        "train",
        "--data",
        log.to_str().unwrap(),
        "--model",
        "sasrec:heads=3",
        "--out",
        m,
    ]);
    assert!(e.contains("heads"), "{e}");
}

/// The two-tower model learns from the feature files given to `train`,
/// keeps them in the model folder, explains a user's recommendation over
/// their features and the item's, and recommends for a new user described
/// only by features (a bad column is named).
#[test]
fn twotower_trains_on_features_and_serves_new_users() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path());
    let model = dir.path().join("twotower");
    let m = model.to_str().unwrap();
    let file = |f: &str| data.join(f).to_str().unwrap().to_string();
    let (log, items, users) = (
        file("interactions.csv"),
        file("items.csv"),
        file("users.csv"),
    );
    ok(&[
        "train",
        "--data",
        &log,
        "--items",
        &items,
        "--users",
        &users,
        "--model",
        "twotower:dim=16,hidden=16,epochs=3,min_support=2",
        "--out",
        m,
    ]);
    let text = ok(&["explain", "--model", m, "--user", "1", "--item", "5"]);
    assert!(text.contains("inputs (integrated gradients"), "{text}");
    assert!(text.contains("genres="), "{text}");
    let json = ok(&[
        "recommend",
        "--model",
        m,
        "--user-features",
        "age_group=25-34,country=GB,favourite_genre=Horror",
        "--k",
        "5",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v.get("fallback").is_none(), "{json}");
    assert_eq!(v["items"].as_array().unwrap().len(), 5);
    let other = ok(&[
        "recommend",
        "--model",
        m,
        "--user-features",
        "age_group=65+,country=BR,favourite_genre=Romance",
        "--k",
        "5",
        "--json",
    ]);
    let w: serde_json::Value = serde_json::from_str(&other).unwrap();
    assert_ne!(v["items"], w["items"], "features change a new user's list");
    // Explained too: the model's score split over the given features (and
    // the item's), integrated gradients that add up to the score.
    let explained = ok(&[
        "recommend",
        "--model",
        m,
        "--user-features",
        "age_group=25-34,country=GB,favourite_genre=Horror",
        "--k",
        "3",
        "--explain",
        "--json",
    ]);
    let x: serde_json::Value = serde_json::from_str(&explained).unwrap();
    assert!(x.get("explanations_unsupported").is_none(), "{explained}");
    for it in x["items"].as_array().unwrap() {
        let e = &it["explanation"];
        assert_eq!(e["method"], "integrated_gradients", "{explained}");
        let inputs = &e["inputs"];
        let shares: f64 = ["user_inputs", "item_inputs"]
            .iter()
            .flat_map(|side| inputs[side].as_array().unwrap())
            .map(|s| s["share"].as_f64().unwrap())
            .sum();
        let total = inputs["baseline"].as_f64().unwrap() + shares;
        assert!(
            (total - it["score"].as_f64().unwrap()).abs() < 1e-3,
            "{total} vs {}",
            it["score"]
        );
        assert!(
            inputs["user_inputs"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["input"] != "id" && s["input"] != "history"),
            "{explained}"
        );
    }
    // Given features are explained over them, by integrated gradients only.
    let err = fails(&[
        "recommend",
        "--model",
        m,
        "--user-features",
        "country=GB",
        "--explain",
        "--explain-method",
        "occlusion",
    ]);
    assert!(
        err.contains("--explain-method") && err.contains("integrated_gradients"),
        "{err}"
    );
    let err = fails(&["recommend", "--model", m, "--user-features", "shoe_size=9"]);
    assert!(err.contains("shoe_size"), "{err}");
}

#[test]
fn an_index_is_built_on_request_and_answers_with_approximate() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path());
    let log = data.join("interactions.csv");
    let model = dir.path().join("model");
    let m = model.to_str().unwrap();
    let base = [
        "train",
        "--data",
        log.to_str().unwrap(),
        "--model",
        "als:factors=8,iterations=3",
        "--out",
        m,
    ];
    // Small catalogues get none under `auto`.
    ok(&base);
    assert!(!model.join("index.json").exists());
    let out = ok(&[&base[..], &["--index", "always"]].concat());
    assert!(
        out.contains("approximate-retrieval index") && out.contains("recall@10"),
        "{out}"
    );
    assert!(model.join("index.json").is_file() && model.join("index.safetensors").is_file());
    let user = "--user";
    let json = |extra: &[&str]| -> serde_json::Value {
        let text = ok(&[
            &["recommend", "--model", m, user, "1", "--k", "5", "--json"][..],
            extra,
        ]
        .concat());
        serde_json::from_str(&text).unwrap()
    };
    let (exact, approx) = (json(&[]), json(&["--approximate"]));
    assert_eq!(exact["items"].as_array().unwrap().len(), 5);
    assert_eq!(approx["items"].as_array().unwrap().len(), 5);
    let similar = ok(&[
        "similar",
        "--model",
        m,
        "--item",
        "1",
        "--approximate",
        "--json",
    ]);
    assert!(similar.contains("\"items\""), "{similar}");
    // Saving another model over the folder removes the old index.
    ok(&[&base[..], &["--index", "never"]].concat());
    assert!(!model.join("index.json").exists());
    let err = fails(&[&base[..], &["--index", "sometimes"]].concat());
    assert!(err.contains("--index"), "{err}");
}
