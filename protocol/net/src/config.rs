//! A server role's configuration: defaults, overlaid with a TOML file, overlaid with
//! environment variables `PREFIX_KEY` / `PREFIX_SECTION__KEY` (`__` nests, names are
//! lower-cased). One implementation for the pool (`STRATA_POOL_`) and the proxy
//! (`STRATA_PROXY_`).

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file or an environment variable is not valid configuration.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// An environment value as TOML: an integer, a float (with `.` or `e`), a boolean, else a
/// string (the key's type decides at deserialization whether a string fits).
fn scalar(v: &str) -> toml::Value {
    if let Ok(i) = v.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    if v.contains(['.', 'e']) {
        if let Ok(f) = v.parse::<f64>() {
            return toml::Value::Float(f);
        }
    }
    match v {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(v.to_string()),
    }
}

/// `T`'s defaults (its serde defaults), overlaid with `file` (if any) and then with the
/// `env` pairs whose name starts with `prefix` (`std::env::vars()` in a binary), applied in
/// name order. A top-level key in `list_keys` takes a comma-separated value.
pub fn load<T: DeserializeOwned>(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
    prefix: &str,
    list_keys: &[&str],
) -> Result<T, ConfigError> {
    let mut tree = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            text.parse::<toml::Table>()
                .map_err(|e| ConfigError::Invalid(format!("{}: {e}", path.display())))?
        }
        None => toml::Table::new(),
    };
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .collect();
    vars.sort();
    for (k, v) in vars {
        let Some(rest) = k.strip_prefix(prefix) else {
            continue;
        };
        let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
        let mut table = &mut tree;
        for seg in &path[..path.len() - 1] {
            table = table
                .entry(seg.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .ok_or_else(|| ConfigError::Invalid(format!("{k}: {seg} is not a table")))?;
        }
        let key = path[path.len() - 1].clone();
        let value = if path.len() == 1 && list_keys.contains(&key.as_str()) {
            toml::Value::Array(
                v.split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| toml::Value::String(s.trim().to_string()))
                    .collect(),
            )
        } else {
            scalar(&v)
        };
        table.insert(key, value);
    }
    toml::Value::Table(tree)
        .try_into()
        .map_err(|e: toml::de::Error| ConfigError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq, serde::Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Inner {
        n: u32,
        f: f64,
        name: String,
    }

    #[derive(Debug, Default, PartialEq, serde::Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Outer {
        flag: bool,
        items: Vec<String>,
        inner: Inner,
    }

    fn vars(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn file_then_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.toml");
        std::fs::write(&path, "flag = true\n[inner]\nn = 3\nname = \"file\"\n").expect("write");
        let c: Outer = load(
            Some(&path),
            vars(&[
                ("X_INNER__N", "7"),
                ("X_INNER__F", "1e-9"),
                ("X_ITEMS", "a, b,,c"),
                ("OTHER_FLAG", "false"),
            ]),
            "X_",
            &["items"],
        )
        .expect("valid");
        assert_eq!(
            c,
            Outer {
                flag: true,
                items: vec!["a".into(), "b".into(), "c".into()],
                inner: Inner {
                    n: 7,
                    f: 1e-9,
                    name: "file".into()
                },
            }
        );
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        let r: Result<Outer, _> = load(
            None,
            vars(&[("X_FLAG", "true"), ("X_FLAG__N", "1")]),
            "X_",
            &[],
        );
        assert!(matches!(r, Err(ConfigError::Invalid(m)) if m.contains("is not a table")));
        let r: Result<Outer, _> = load(None, vars(&[("X_NOPE", "1")]), "X_", &[]);
        assert!(matches!(r, Err(ConfigError::Invalid(_))));
        let r: Result<Outer, _> =
            load(Some(Path::new("/nonexistent/x.toml")), vars(&[]), "X_", &[]);
        assert!(matches!(r, Err(ConfigError::Read { .. })));
    }
}
