//! Content keys: runs and cached evaluations are named by a hash of what determines them, so a
//! rerun finds finished work and a changed config never reuses stale results.

/// 64-bit FNV-1a of `s` as 16 hex digits (stable across platforms and releases, unlike
/// `std::hash`).
pub fn hex(s: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// A file-name-safe short form of a display name: `mixture(0.5 dense, 0.5 sparse(nnz=2))` ->
/// `mixture-0.5-dense-0.5-sparse-nnz-2` (at most 48 characters).
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out.chars()
        .take(48)
        .collect::<String>()
        .trim_end_matches('-')
        .to_string()
}

/// The `name` of an experiment's training config: `<task slug>-s<seed>` (the readable half of
/// `runs::run_key`).
pub fn run_name(task: &iclab_core::ClassSpec, seed: u64) -> String {
    format!("{}-s{}", slug(&task.name()), seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(hex(""), "cbf29ce484222325");
        assert_eq!(hex("a"), "af63dc4c8601ec8c");
        assert_eq!(hex("foobar"), "85944171f73967e8");
    }

    #[test]
    fn slugs_are_file_safe() {
        assert_eq!(
            slug("mixture(0.5 dense, 0.5 sparse(nnz=2))"),
            "mixture-0.5-dense-0.5-sparse-nnz-2"
        );
        assert_eq!(
            slug("sinusoid(omega=lognormal(1,0.5))"),
            "sinusoid-omega-lognormal-1-0.5"
        );
    }
}
