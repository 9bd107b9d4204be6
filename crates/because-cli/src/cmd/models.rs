//! `because models`: the registry, as people read it.

/// `because models`: the registry, as people read it.
pub fn run() {
    for e in because_models::registry::kinds() {
        println!("{:<10} {}", e.name, e.about);
        let params: Vec<String> = e
            .defaults()
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::Null => format!("{k} (optional)"),
                serde_json::Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect();
        println!("{:<10} parameters: {}", "", params.join(", "));
        println!("{:<10} can: {}", "", e.capabilities.names().join(", "));
    }
}
