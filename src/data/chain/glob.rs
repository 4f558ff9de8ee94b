//! File patterns for chains: `*` (any run of characters but `/`), `?` (one character) and
//! `[abc]`, `[a-z]`, `[!abc]` (one character of, or not of, a set), in any path component.
//!
//! Matches are sorted by path (byte order), so a pattern names the same files in the same order
//! on every machine: shards depend on it. Names starting with `.` match only a pattern component
//! that starts with `.`. Every folder is checked against the sandbox before it is listed, and
//! every match after resolving symbolic links, so a link inside an allowed folder cannot make
//! a pattern read outside it: such a match is an error naming it, not silently skipped.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::limits;
use crate::sandbox::Sandbox;

/// True when `s` holds a wildcard (`*`, `?` or `[`).
pub fn is_pattern(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The files `pattern` names (a plain path names itself), resolved and sandbox-checked, in
/// byte order of their paths as matched.
pub fn expand(sandbox: &Sandbox, pattern: &str) -> Result<Vec<PathBuf>> {
    if !is_pattern(pattern) {
        return Ok(vec![sandbox.check_read(pattern)?]);
    }
    let parts: Vec<&str> = pattern.split('/').collect();
    let first_wild = parts.iter().position(|p| is_pattern(p)).unwrap_or(parts.len());
    let base = parts[..first_wild].join("/");
    let base = match (base.is_empty(), pattern.starts_with('/')) {
        (true, true) => "/".to_string(),
        (true, false) => ".".to_string(),
        _ => base,
    };
    for p in &parts[first_wild..] {
        check_syntax(pattern, p)?;
    }
    let mut found: Vec<String> = vec![base];
    for (k, part) in parts[first_wild..].iter().enumerate() {
        let last = first_wild + k + 1 == parts.len();
        let mut next = Vec::new();
        for dir in &found {
            if !is_pattern(part) {
                next.push(join(dir, part));
                continue;
            }
            let resolved = sandbox.check_read(dir)?;
            let Ok(entries) = std::fs::read_dir(&resolved) else { continue };
            let mut names: Vec<String> = entries
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .filter(|n| matches(part, n))
                .collect();
            names.sort();
            for n in names {
                let p = join(dir, &n);
                let is_dir = std::fs::metadata(sandbox.check_read(&p)?).map(|m| m.is_dir()).unwrap_or(false);
                if last != is_dir {
                    next.push(p);
                }
            }
            limits::check("chain", "files matching the pattern", next.len(), limits::CHAIN_FILES)?;
        }
        found = next;
    }
    if found.is_empty() {
        return Err(Error::arg("chain", format!("no file matches '{pattern}'")));
    }
    found.iter().map(|p| sandbox.check_read(p)).collect()
}

fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// An unclosed `[` is an error rather than a literal character.
fn check_syntax(pattern: &str, part: &str) -> Result<()> {
    let mut open = false;
    for c in part.chars() {
        match c {
            '[' if !open => open = true,
            ']' if open => open = false,
            _ => {}
        }
    }
    if open {
        return Err(Error::arg("chain", format!("pattern '{pattern}' has a '[' without its ']'")));
    }
    Ok(())
}

/// Whether `name` matches the one-component pattern `pat`.
pub fn matches(pat: &str, name: &str) -> bool {
    if name.starts_with('.') && !pat.starts_with('.') {
        return false;
    }
    let p: Vec<char> = pat.chars().collect();
    let s: Vec<char> = name.chars().collect();
    // Iterative matching with one backtrack point for the last `*` (linear in practice, never
    // exponential).
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < s.len() {
        if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
            continue;
        }
        if i < p.len() {
            if let Some((ok, len)) = one(&p[i..], s[j]) {
                if ok {
                    i += len;
                    j += 1;
                    continue;
                }
            }
        }
        match star {
            Some((si, sj)) => {
                i = si + 1;
                j = sj + 1;
                star = Some((si, sj + 1));
            }
            None => return false,
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

/// Whether the pattern element at the start of `p` (not `*`) matches `c`, and its length.
fn one(p: &[char], c: char) -> Option<(bool, usize)> {
    match p[0] {
        '?' => Some((true, 1)),
        '[' => {
            let close = p.iter().skip(1).position(|&x| x == ']')? + 1;
            let set = &p[1..close];
            let (negate, set) = match set.first() {
                Some('!') => (true, &set[1..]),
                _ => (false, set),
            };
            let mut hit = false;
            let mut k = 0;
            while k < set.len() {
                if k + 2 < set.len() && set[k + 1] == '-' {
                    hit |= set[k] <= c && c <= set[k + 2];
                    k += 3;
                } else {
                    hit |= set[k] == c;
                    k += 1;
                }
            }
            Some((hit != negate, close + 1))
        }
        x => Some((x == c, 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn wildcards_match_as_in_the_shell() {
        assert!(matches("*.parquet", "a.parquet"));
        assert!(!matches("*.parquet", "a.parquet.tmp"));
        assert!(matches("part-??.pq", "part-07.pq"));
        assert!(!matches("part-??.pq", "part-7.pq"));
        assert!(matches("f[0-3].root", "f2.root") && !matches("f[0-3].root", "f4.root"));
        assert!(matches("f[!0-3].root", "f4.root") && !matches("f[!0-3].root", "f2.root"));
        assert!(matches("*a*b*", "xxaYYbZZ") && !matches("*a*b*", "xxbYYa"));
        assert!(!matches("*", ".hidden") && matches(".*", ".hidden"));
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("nuisance_glob_{name}_{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d.canonicalize().unwrap()
    }

    #[test]
    fn expansion_is_sorted_and_stays_in_the_sandbox() {
        let d = tmp("expand");
        let work = d.join("work");
        fs::create_dir_all(work.join("data/b")).unwrap();
        fs::create_dir_all(work.join("data/a")).unwrap();
        fs::create_dir_all(d.join("secret")).unwrap();
        for f in ["data/b/2.pq", "data/a/1.pq", "data/a/10.pq", "data/a/note.txt"] {
            fs::write(work.join(f), "x").unwrap();
        }
        fs::write(d.join("secret/s.pq"), "x").unwrap();
        let sb = Sandbox::with_cwd(&work, None, &[], &[]).unwrap();
        let got = expand(&sb, "data/*/*.pq").unwrap();
        let want: Vec<PathBuf> = ["data/a/1.pq", "data/a/10.pq", "data/b/2.pq"].iter().map(|f| work.join(f)).collect();
        assert_eq!(got, want);
        // a plain path is checked but need not exist yet (the reader names it)
        assert_eq!(expand(&sb, "data/a/1.pq").unwrap(), vec![work.join("data/a/1.pq")]);
        assert!(expand(&sb, "data/*/*.csv").unwrap_err().to_string().contains("no file matches 'data/*/*.csv'"));
        // a link to a file outside the sandbox, matched by the pattern, is refused by name
        std::os::unix::fs::symlink(d.join("secret/s.pq"), work.join("data/a/3.pq")).unwrap();
        let e = expand(&sb, "data/a/*.pq").unwrap_err();
        assert_eq!(e.kind(), "sandbox");
        assert!(e.to_string().contains("data/a/3.pq"), "{e}");
        // so is a linked folder leading outside
        fs::remove_file(work.join("data/a/3.pq")).unwrap();
        std::os::unix::fs::symlink(d.join("secret"), work.join("data/c")).unwrap();
        let e = expand(&sb, "data/*/*.pq").unwrap_err();
        assert_eq!(e.kind(), "sandbox");
        assert!(e.to_string().contains("data/c"), "{e}");
        // a pattern whose fixed part is outside is refused before anything is listed
        let e = expand(&sb, &format!("{}/*.pq", d.join("secret").display())).unwrap_err();
        assert_eq!(e.kind(), "sandbox");
        assert!(expand(&sb, "data/[ab/*.pq").unwrap_err().to_string().contains("without its ']'"));
    }
}
