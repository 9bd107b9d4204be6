//! The metric definitions cross-checked against an independent Python
//! implementation of the same definitions on the same ranked lists.

use because_core::rng::Rng;
use because_eval::metrics::{at_k, NAMES};
use std::process::Command;

const SCRIPT: &str = r#"
import json, math, sys
cases = json.load(open(sys.argv[1]))
out = []
for c in cases:
    ranked, rel, k = c["ranked"], set(c["relevant"]), c["k"]
    top = ranked[:k]
    hits = [1 if i in rel else 0 for i in top]
    n_hits = sum(hits)
    dcg = sum(h / math.log2(p + 2) for p, h in enumerate(hits))
    idcg = sum(1 / math.log2(p + 2) for p in range(min(len(rel), k)))
    ap, seen = 0.0, 0
    for p, h in enumerate(hits):
        if h:
            seen += 1
            ap += seen / (p + 1)
    first = next((p for p, h in enumerate(hits) if h), None)
    out.append({
        "precision": n_hits / k,
        "recall": n_hits / len(rel),
        "ndcg": dcg / idcg,
        "map": ap / min(len(rel), k),
        "mrr": 0.0 if first is None else 1 / (first + 1),
        "hitrate": 1.0 if n_hits else 0.0,
    })
json.dump(out, open(sys.argv[2], "w"))
"#;

#[test]
fn metrics_agree_with_python() {
    let required =
        std::env::var_os("CI").is_some() || std::env::var_os("BECAUSE_REQUIRE_DATA").is_some();
    if Command::new("python3").arg("--version").output().is_err() {
        assert!(!required, "python3 is needed for the metric cross-check");
        eprintln!("skipping: no python3");
        return;
    }
    let mut rng = Rng::new(9);
    let mut cases = Vec::new();
    for _ in 0..500 {
        let n = 1 + rng.below(30) as usize;
        let mut ranked: Vec<u32> = (0..50).collect();
        rng.shuffle(&mut ranked);
        ranked.truncate(n);
        let mut relevant: Vec<u32> = (0..50).filter(|_| rng.chance(0.1)).collect();
        if relevant.is_empty() {
            relevant.push(rng.below(50) as u32);
        }
        let k = 1 + rng.below(25) as usize;
        cases.push((ranked, relevant, k));
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("cases.json");
    let output = dir.path().join("out.json");
    let json: Vec<serde_json::Value> = cases
        .iter()
        .map(|(r, rel, k)| serde_json::json!({"ranked": r, "relevant": rel, "k": k}))
        .collect();
    std::fs::write(&input, serde_json::to_string(&json).unwrap()).unwrap();
    let script = dir.path().join("metrics.py");
    std::fs::write(&script, SCRIPT).unwrap();
    let status = Command::new("python3")
        .arg(&script)
        .arg(&input)
        .arg(&output)
        .status()
        .unwrap();
    assert!(status.success());
    let theirs: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&output).unwrap()).unwrap();
    for ((ranked, relevant, k), t) in cases.iter().zip(&theirs) {
        let ours = at_k(ranked, relevant, *k);
        for (m, name) in NAMES.iter().enumerate() {
            let tv = t[*name].as_f64().unwrap();
            assert!(
                (ours[m] - tv).abs() < 1e-12,
                "{name}@{k}: ours {} python {tv} for {ranked:?} / {relevant:?}",
                ours[m]
            );
        }
    }
}
