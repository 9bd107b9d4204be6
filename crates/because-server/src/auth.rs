//! API keys: who may write, who may read.
//!
//! A key file holds one key per line, `KEY` or `NAME KEY` (blank lines and
//! lines starting with `#` are skipped). The name labels the key in
//! metrics and rate limits; without one, a key is named by its file's kind
//! and position (`write-1`, `read-2`). Keys are at least [`MIN_API_KEY`]
//! characters and never shown: errors name the file and line, metrics the
//! name. Write keys open every route; read keys open the read routes that
//! `--protect-reads` closes, and nothing else.
//!
//! [`KeyFiles`] remembers where the keys came from, so that they can be
//! read again when a file changes (rotation without a restart): a file
//! that no longer reads keeps the keys in use.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The shortest API key accepted.
pub const MIN_API_KEY: usize = 16;

/// What a key opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// The read routes (recommendations, explanations, model information).
    Read,
    /// Everything: events, the admin routes, a user's stored events, and reads.
    Write,
}

impl Access {
    /// `read` or `write`, as files and metrics name it.
    pub fn name(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
        }
    }
}

/// One key.
#[derive(Clone)]
struct Key {
    name: String,
    secret: String,
    access: Access,
}

/// The keys in use.
#[derive(Clone, Default)]
pub struct KeySet {
    keys: Vec<Key>,
}

impl std::fmt::Debug for KeySet {
    /// Names only: a key is never shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|k| (&k.name, k.access.name())))
            .finish()
    }
}

/// Why keys could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A key is too short to protect anything.
    #[error("{}: the API key on line {line} is shorter than {MIN_API_KEY} characters", file.display())]
    Short {
        /// The file (or `--api-key` for a key given directly).
        file: PathBuf,
        /// Its line.
        line: usize,
    },
    /// A line is not `KEY` or `NAME KEY`.
    #[error("{}: line {line}: {reason}", file.display())]
    Line {
        /// The file.
        file: PathBuf,
        /// Its line.
        line: usize,
        /// What is wrong (never the key).
        reason: String,
    },
    /// The file could not be read.
    #[error("cannot read the API key file {}: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl KeySet {
    /// One write key named `default`.
    pub fn single(secret: &str) -> Result<KeySet, KeyError> {
        let mut set = KeySet::default();
        set.add(Path::new("--api-key"), 1, "default", secret, Access::Write)?;
        Ok(set)
    }

    fn add(
        &mut self,
        file: &Path,
        line: usize,
        name: &str,
        secret: &str,
        access: Access,
    ) -> Result<(), KeyError> {
        let bad = |reason: &str| KeyError::Line {
            file: file.to_path_buf(),
            line,
            reason: reason.into(),
        };
        if secret.chars().count() < MIN_API_KEY {
            return Err(KeyError::Short {
                file: file.to_path_buf(),
                line,
            });
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            || name.len() > 64
        {
            return Err(bad(
                "a key's name is at most 64 letters, digits, '-', '_' or '.'",
            ));
        }
        if self.keys.iter().any(|k| k.name == name) {
            return Err(bad(&format!("the name {name:?} is used twice")));
        }
        if self
            .keys
            .iter()
            .any(|k| same(k.secret.as_bytes(), secret.as_bytes()))
        {
            return Err(bad("this key is listed twice"));
        }
        self.keys.push(Key {
            name: name.to_string(),
            secret: secret.to_string(),
            access,
        });
        Ok(())
    }

    /// Adds the keys of `text` (read from `file`), each opening `access`.
    pub fn parse(&mut self, file: &Path, text: &str, access: Access) -> Result<(), KeyError> {
        let mut n = 0;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            n += 1;
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (name, secret) = match fields[..] {
                [secret] => (format!("{}-{n}", access.name()), secret),
                [name, secret] => (name.to_string(), secret),
                _ => {
                    return Err(KeyError::Line {
                        file: file.to_path_buf(),
                        line: i + 1,
                        reason: "expected KEY or NAME KEY".into(),
                    })
                }
            };
            self.add(file, i + 1, &name, secret, access)?;
        }
        Ok(())
    }

    /// Whether no key is set (writes are then closed).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// How many keys open `access` exactly.
    pub fn count(&self, access: Access) -> usize {
        self.keys.iter().filter(|k| k.access == access).count()
    }

    /// The key given, if any: its name and what it opens. Every key is
    /// compared in constant time, so the time taken says nothing of them.
    pub fn find(&self, given: &str) -> Option<(&str, Access)> {
        let mut found = None;
        for k in &self.keys {
            if same(given.as_bytes(), k.secret.as_bytes()) {
                found = Some((k.name.as_str(), k.access));
            }
        }
        found
    }
}

/// Constant-time comparison, so the time taken says nothing of the key.
fn same(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (k, &x) in a.iter().enumerate() {
        diff |= (x ^ b.get(k).copied().unwrap_or(0)) as usize;
    }
    diff == 0
}

/// The key a request carries: `Authorization: Bearer KEY` or `X-API-Key`.
pub fn given(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
}

/// Where the keys come from: a write-key file and a read-key file, each
/// read again when it changes.
#[derive(Clone, Debug, Default)]
pub struct KeyFiles {
    /// Keys that open everything.
    pub write: Option<PathBuf>,
    /// Keys that open the read routes only.
    pub read: Option<PathBuf>,
}

/// The files' modification times, to see when they change.
pub(crate) type Stamp = Vec<Option<SystemTime>>;

impl KeyFiles {
    fn files(&self) -> impl Iterator<Item = (&PathBuf, Access)> {
        self.write
            .iter()
            .map(|f| (f, Access::Write))
            .chain(self.read.iter().map(|f| (f, Access::Read)))
    }

    /// When each file last changed (`None`: unreadable).
    pub(crate) fn stamp(&self) -> Stamp {
        self.files()
            .map(|(f, _)| std::fs::metadata(f).and_then(|m| m.modified()).ok())
            .collect()
    }

    /// Reads every file's keys.
    pub fn load(&self) -> Result<KeySet, KeyError> {
        let mut set = KeySet::default();
        for (file, access) in self.files() {
            let text = std::fs::read_to_string(file).map_err(|source| KeyError::Read {
                file: file.clone(),
                source,
            })?;
            set.parse(file, &text, access)?;
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_name_their_keys_and_never_show_them() {
        let mut set = KeySet::default();
        set.parse(
            Path::new("keys"),
            "# writers\nalice aaaaaaaaaaaaaaaaaaaa\n\nbbbbbbbbbbbbbbbbbbbb\n",
            Access::Write,
        )
        .unwrap();
        set.parse(Path::new("read"), "cccccccccccccccccccc\n", Access::Read)
            .unwrap();
        assert_eq!(
            set.find("aaaaaaaaaaaaaaaaaaaa"),
            Some(("alice", Access::Write))
        );
        assert_eq!(
            set.find("bbbbbbbbbbbbbbbbbbbb"),
            Some(("write-2", Access::Write))
        );
        assert_eq!(
            set.find("cccccccccccccccccccc"),
            Some(("read-1", Access::Read))
        );
        assert_eq!(set.find("aaaaaaaaaaaaaaaaaaa"), None);
        assert_eq!(set.find(""), None);
        assert_eq!((set.count(Access::Write), set.count(Access::Read)), (2, 1));
        let shown = format!("{set:?}");
        assert!(
            shown.contains("alice") && !shown.contains("aaaa"),
            "{shown}"
        );
        for (text, why) in [
            ("short\n", "shorter than 16"),
            ("a b c\n", "expected KEY or NAME KEY"),
            (
                "x aaaaaaaaaaaaaaaaaaaa\nx bbbbbbbbbbbbbbbbbbbb\n",
                "used twice",
            ),
            (
                "aaaaaaaaaaaaaaaaaaaa\nb aaaaaaaaaaaaaaaaaaaa\n",
                "listed twice",
            ),
            ("n/m aaaaaaaaaaaaaaaaaaaa\n", "name"),
        ] {
            let e = KeySet::default()
                .parse(Path::new("keys"), text, Access::Write)
                .unwrap_err()
                .to_string();
            assert!(e.contains(why) && e.starts_with("keys:"), "{text:?}: {e}");
            assert!(!e.contains("aaaa"), "{e}");
        }
    }
}
