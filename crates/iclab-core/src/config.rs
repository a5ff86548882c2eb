//! Typed configuration: defaults -> TOML file -> `--set key=value` overrides -> one validated plan.
//!
//! Layers are merged as TOML values and only then deserialised into the typed structure (whose
//! types deny unknown fields), so a misspelt key in the file or in an override is an error that
//! names it, never silently ignored.

use serde::{de::DeserializeOwned, Serialize};

use crate::error::ConfigError;

/// Keys whose value selects a variant of a tagged enum (`class = "sparse"`, `kind = "skewed"`): when
/// a layer changes one, the other keys of that table belonged to the old variant and are dropped.
const TAGS: [&str; 2] = ["class", "kind"];

/// True when `over` names a different variant than `base`.
fn changes_variant(base: &toml::Table, over: &toml::Table) -> bool {
    TAGS.iter()
        .any(|t| matches!((base.get(*t), over.get(*t)), (Some(a), Some(b)) if a != b))
}

/// Merges `over` into `base`: tables merge key by key (unless `over` switches the variant of a
/// tagged table, which then replaces it whole), anything else replaces.
pub fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) if changes_variant(b, &o) => *b = o,
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// Parses one override `a.b.c=value`. The value is read as TOML (`3`, `0.5`, `true`, `"x"`,
/// `[1, 2]`, `{ class = "dense" }`); anything that is not valid TOML is taken as a bare string.
pub fn parse_override(s: &str) -> Result<(Vec<String>, toml::Value), ConfigError> {
    let (key, raw) = s
        .split_once('=')
        .ok_or_else(|| ConfigError::new("--set", s, "key=value"))?;
    let path: Vec<String> = key.trim().split('.').map(|p| p.trim().to_string()).collect();
    if path.iter().any(|p| p.is_empty()) {
        return Err(ConfigError::new(
            "--set",
            s,
            "key=value with a dotted key (a.b.c=value)",
        ));
    }
    let raw = raw.trim();
    let value = match format!("v = {raw}").parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").expect("parsed key"),
        Err(_) => toml::Value::String(raw.to_string()),
    };
    Ok((path, value))
}

/// Sets `path` in `root` to `value`, creating tables on the way.
pub fn set_path(root: &mut toml::Value, path: &[String], value: toml::Value) -> Result<(), ConfigError> {
    let mut cur = root;
    for (i, key) in path.iter().enumerate() {
        let table = cur.as_table_mut().ok_or_else(|| {
            ConfigError::new(
                path[..i].join("."),
                "a value",
                "a table (cannot set a key inside a non-table)",
            )
        })?;
        if i + 1 == path.len() {
            if TAGS.contains(&key.as_str()) && table.get(key).is_some_and(|old| *old != value) {
                // A new variant: the old variant's parameters do not apply to it.
                table.clear();
            }
            table.insert(key.clone(), value);
            return Ok(());
        }
        cur = table
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(Default::default()));
    }
    Ok(())
}

/// A `key=value` override that the configuration `v` accepts (its current value of a key), for
/// hints: the first integer field at the top, else the first nested integer, else the first value.
pub fn example_override(v: &toml::Value) -> Option<String> {
    fn first(prefix: &str, v: &toml::Value, depth: usize, want: &dyn Fn(&toml::Value) -> bool) -> Option<String> {
        let t = v.as_table()?;
        for (k, x) in t {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            if !x.is_table() && want(x) {
                return Some(format!("{key}={x}"));
            }
        }
        if depth == 0 {
            return None;
        }
        t.iter().find_map(|(k, x)| {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            first(&key, x, depth - 1, want)
        })
    }
    first("", v, 0, &toml::Value::is_integer)
        .or_else(|| first("", v, 3, &toml::Value::is_integer))
        .or_else(|| first("", v, 3, &|x| !x.is_array()))
}

/// defaults -> TOML text -> overrides -> `T`. `source` names the file in errors.
pub fn resolve<T: Serialize + DeserializeOwned>(
    defaults: &T,
    toml_text: Option<(&str, &str)>,
    overrides: &[String],
) -> Result<T, ConfigError> {
    let mut value =
        toml::Value::try_from(defaults).map_err(|e| ConfigError::new("defaults", e, "a serialisable configuration"))?;
    if let Some((source, text)) = toml_text {
        let file: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::new(source, e.to_string().trim(), "valid TOML"))?;
        merge(&mut value, toml::Value::Table(file));
    }
    for o in overrides {
        let (path, v) = parse_override(o).map_err(|mut e| {
            // The hint's example is a key of this configuration, so that it is itself valid.
            if let Some(example) = example_override(&value) {
                e.allowed = format!("{}, e.g. {example}", e.allowed);
            }
            e
        })?;
        set_path(&mut value, &path, v)?;
    }
    T::deserialize(value).map_err(|e| {
        ConfigError::new(
            toml_text.map(|(s, _)| s).unwrap_or("configuration"),
            e.to_string().trim(),
            "the fields documented in the preset files (unknown keys are errors)",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        lr: f64,
        steps: u64,
    }
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        name: String,
        train: Inner,
    }

    fn defaults() -> Outer {
        Outer {
            name: "x".into(),
            train: Inner { lr: 1e-4, steps: 10 },
        }
    }

    #[test]
    fn the_set_hint_gives_a_valid_example() {
        for bad in ["steps", "train..steps=3"] {
            let e = resolve(&defaults(), None, &[bad.to_string()]).unwrap_err();
            let example = e.allowed.split("e.g. ").nth(1).expect("an example").to_string();
            assert_eq!(example, "train.steps=10", "{e}");
            resolve(&defaults(), None, &[example]).unwrap();
        }
    }

    #[test]
    fn layers_apply_in_order() {
        let text = "name = \"file\"\n[train]\nsteps = 20\n";
        let r = resolve(&defaults(), Some(("exp.toml", text)), &["train.steps=30".into()]).unwrap();
        assert_eq!(
            r,
            Outer {
                name: "file".into(),
                train: Inner { lr: 1e-4, steps: 30 }
            }
        );
    }

    #[test]
    fn switching_a_tagged_variant_drops_the_old_variants_keys() {
        // Regression: `--set task.class=dense` on a sparse task kept `nnz`, then rejected it.
        let mut v: toml::Value = "[task]\nclass = \"sparse\"\nnnz = 2\n"
            .parse::<toml::Table>()
            .unwrap()
            .into();
        let (path, value) = parse_override("task.class=dense").unwrap();
        set_path(&mut v, &path, value).unwrap();
        assert_eq!(v["task"].as_table().unwrap().len(), 1);
        let mut v: toml::Value = "[task]\nclass = \"sparse\"\nnnz = 2\n"
            .parse::<toml::Table>()
            .unwrap()
            .into();
        merge(
            &mut v,
            "[task]\nclass = \"dense\"\n".parse::<toml::Table>().unwrap().into(),
        );
        assert_eq!(v["task"].as_table().unwrap().len(), 1);
        // Same variant: parameters merge.
        let (path, value) = parse_override("task.class=dense").unwrap();
        set_path(&mut v, &path, value).unwrap();
        let (path, value) = parse_override("task.normalize=true").unwrap();
        set_path(&mut v, &path, value).unwrap();
        assert_eq!(v["task"].as_table().unwrap().len(), 2);
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key() {
        let e = resolve(&defaults(), Some(("exp.toml", "[train]\nstpes = 3\n")), &[]).unwrap_err();
        assert!(e.to_string().contains("stpes"), "{e}");
        let e = resolve(&defaults(), None, &["train.lrr=1".into()]).unwrap_err();
        assert!(e.to_string().contains("lrr"), "{e}");
        let e = resolve(&defaults(), None, &["no_equals".into()]).unwrap_err();
        assert_eq!(e.field, "--set");
    }
}
