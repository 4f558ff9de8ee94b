//! Documentation of every script-visible function, from Rhai's metadata (Rust functions) and
//! the embedded stdlib's doc comments. Feeds `nuisance doc`, the REPL's `:help` and
//! completion, and the test that runs every documented example.

use rhai::Engine;
use serde_json::Value;

/// One documented function.
#[derive(Clone, Debug)]
pub struct FnDoc {
    /// Name as called (`std/report::table` for stdlib functions).
    pub name: String,
    /// `name(param: Type, …) -> Ret`.
    pub signature: String,
    /// The doc comment without the `///` markers.
    pub doc: String,
}

impl FnDoc {
    /// A property (`Dataset.len`, read as `d.len`) rather than a function.
    pub fn is_property(&self) -> bool {
        self.name.contains('.')
    }

    /// The first paragraph of the doc comment.
    pub fn summary(&self) -> String {
        self.doc.split("\n\n").next().unwrap_or("").replace('\n', " ")
    }

    /// Every ```rhai block in the doc comment: (code, run it?). `rhai,no_run` blocks are
    /// only compiled.
    pub fn examples(&self) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        let mut cur: Option<(String, bool)> = None;
        for line in self.doc.lines() {
            let t = line.trim();
            match &mut cur {
                None if t.starts_with("```rhai") => cur = Some((String::new(), !t.contains("no_run"))),
                Some(_) if t.starts_with("```") => out.extend(cur.take()),
                Some((code, _)) => {
                    code.push_str(line);
                    code.push('\n');
                }
                None => {}
            }
        }
        out
    }

    /// Option keys from the doc's options table (rows of the form `| `key` | … |`).
    pub fn option_keys(&self) -> Vec<String> {
        self.doc
            .lines()
            .filter_map(|l| l.trim().strip_prefix("| `"))
            .filter_map(|rest| rest.split('`').next())
            .map(str::to_string)
            .collect()
    }

    /// As a JSON object.
    pub fn to_json(&self) -> Value {
        serde_json::json!({ "name": self.name, "signature": self.signature, "doc": self.doc, "examples": self.examples().len() })
    }
}

/// Every nuisance function registered in `engine`, the properties of its types (named
/// `Type.property`), plus the stdlib's exported functions, sorted by name (Rhai's own
/// built-ins are left out).
pub fn collect(engine: &Engine) -> Vec<FnDoc> {
    let mut docs = rust_functions(engine);
    docs.extend(stdlib_functions(engine));
    // Closures inside stdlib functions compile to anonymous functions: not part of the API.
    docs.retain(|d| !d.name.contains("anon$") && !d.signature.contains("anon$"));
    docs.sort_by(|a, b| a.name.cmp(&b.name).then(a.signature.cmp(&b.signature)));
    docs
}

fn rust_functions(engine: &Engine) -> Vec<FnDoc> {
    let Ok(json) = engine.gen_fn_metadata_to_json(false) else { return Vec::new() };
    let Ok(v) = serde_json::from_str::<Value>(&json) else { return Vec::new() };
    let Some(funcs) = v.get("functions").and_then(Value::as_array) else { return Vec::new() };
    funcs
        .iter()
        .filter_map(|f| {
            let name = f.get("name")?.as_str()?.to_string();
            let signature = script_signature(f.get("signature")?.as_str()?);
            let comments = f.get("docComments").and_then(Value::as_array).cloned().unwrap_or_default();
            let doc = strip_comments(comments.iter().filter_map(Value::as_str));
            if let Some(prop) = name.strip_prefix("get$") {
                return property(prop, &signature).map(|(name, signature)| FnDoc { name, signature, doc });
            }
            // Setters and indexers are documented through their type.
            (!name.starts_with("set$") && !name.starts_with("index$")).then_some(FnDoc { name, signature, doc })
        })
        .collect()
}

/// A getter's name and signature in property terms: `get$len(d: Dataset) -> int` reads
/// `Dataset.len`, `Dataset.len -> int`.
fn property(prop: &str, signature: &str) -> Option<(String, String)> {
    let (params, ret) = signature.split_once('(')?.1.split_once(')')?;
    let ty = params.split_once(": ").map_or(params, |(_, t)| t).trim();
    let name = format!("{ty}.{prop}");
    let signature = match ret.strip_prefix(" -> ") {
        Some(r) => format!("{name} -> {r}"),
        None => name.clone(),
    };
    Some((name, signature))
}

fn stdlib_functions(engine: &Engine) -> Vec<FnDoc> {
    let mut out = Vec::new();
    for (module, text) in crate::stdlib::MODULES {
        let Ok(ast) = engine.compile(text) else { continue };
        for f in ast.iter_functions() {
            if f.access == rhai::FnAccess::Private {
                continue;
            }
            let params = f.params.join(", ");
            out.push(FnDoc {
                name: format!("{module}::{}", f.name),
                signature: format!("{}({params})", f.name),
                doc: strip_comments(f.comments.iter().copied()),
            });
        }
    }
    out
}

/// Rewrites a Rust-flavoured signature in script terms: `RhaiResult<T>` → `T`,
/// `&str` → `string`, `i64` → `int`, `f64` → `float`, `Dynamic` → `any`, `&mut T` → `T`.
pub fn script_signature(sig: &str) -> String {
    let mut s = sig.to_string();
    while let Some(i) = s.find("RhaiResult<") {
        let inner_start = i + "RhaiResult<".len();
        let mut depth = 1;
        let mut end = inner_start;
        for (k, ch) in s[inner_start..].char_indices() {
            match ch {
                '<' => depth += 1,
                '>' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                end = inner_start + k;
                break;
            }
        }
        let inner = s[inner_start..end].to_string();
        s.replace_range(i..=end, &inner);
    }
    let s = s.replace(" -> ()", "");
    let mut out = s;
    for (from, to) in [
        ("&mut ", ""),
        ("&str", "string"),
        ("ImmutableString", "string"),
        ("String", "string"),
        ("i64", "int"),
        ("f64", "float"),
        ("Dynamic", "any"),
        ("Array", "array"),
        ("Map", "map"),
        ("FnPtr", "fn"),
        ("SharedModel", "model"),
        ("UncertaintyModel", "Uncertainty"),
    ] {
        out = out.replace(from, to);
    }
    out
}

/// Joins doc comment lines, removing `///` / `/** */` markers and one leading space.
fn strip_comments<'a>(lines: impl Iterator<Item = &'a str>) -> String {
    let mut out = Vec::new();
    for block in lines {
        for line in block.lines() {
            let t = line.trim_start();
            let t = t.strip_prefix("///").or_else(|| t.strip_prefix("//!")).unwrap_or(t);
            let t = t.strip_prefix("/**").unwrap_or(t);
            let t = t.strip_suffix("*/").unwrap_or(t);
            out.push(t.strip_prefix(' ').unwrap_or(t).to_string());
        }
    }
    out.join("\n").trim().to_string()
}

/// All docs whose name equals `name` (or whose stdlib short name or property name does:
/// `len` finds `Dataset.len`).
pub fn find<'a>(docs: &'a [FnDoc], name: &str) -> Vec<&'a FnDoc> {
    docs.iter()
        .filter(|d| {
            d.name == name || d.name.rsplit("::").next() == Some(name) || d.name.rsplit('.').next() == Some(name)
        })
        .collect()
}

/// Human-readable help for `name`, or a "did you mean" message.
pub fn help_text(docs: &[FnDoc], name: &str) -> String {
    let hits = find(docs, name);
    if hits.is_empty() {
        let near = crate::error::nearest(name, docs.iter().map(|d| d.name.as_str()));
        return match near {
            Some(n) => format!("no function '{name}'; did you mean '{n}'?"),
            None => format!("no function '{name}'; `:funcs` lists them all"),
        };
    }
    let mut out = String::new();
    for d in &hits {
        out.push_str(&d.signature);
        out.push('\n');
    }
    // Overloads usually share one story; the fullest doc (with the options table) tells it.
    if let Some(d) = hits.iter().filter(|d| !d.doc.is_empty()).max_by_key(|d| d.doc.len()) {
        out.push('\n');
        out.push_str(&d.doc);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_read_in_script_terms() {
        assert_eq!(
            script_signature("head(d: &mut Dataset, n: i64) -> RhaiResult<Dataset>"),
            "head(d: Dataset, n: int) -> Dataset"
        );
        assert_eq!(script_signature("assert(condition: bool) -> RhaiResult<()>"), "assert(condition: bool)");
        assert_eq!(
            script_signature("split(d: &mut Dataset, f: f64, o: Map) -> RhaiResult<Map>"),
            "split(d: Dataset, f: float, o: map) -> map"
        );
    }

    #[test]
    fn properties_are_documented_with_their_type() {
        assert_eq!(
            property("len", "get$len(d: Dataset) -> int"),
            Some(("Dataset.len".to_string(), "Dataset.len -> int".to_string()))
        );
        let session = crate::session::Session::new(crate::session::Config::default()).unwrap();
        let docs = collect(session.engine());
        let len: Vec<&FnDoc> = find(&docs, "len").into_iter().filter(|d| d.name == "Dataset.len").collect();
        assert_eq!(len.len(), 1, "Dataset.len is listed once");
        assert!(len[0].is_property() && !len[0].doc.is_empty(), "{:?}", len[0]);
        assert!(docs.iter().any(|d| d.name == "Dataset.features"));
        assert!(!docs.iter().any(|d| d.name.starts_with("get$")));
    }

    #[test]
    fn examples_and_option_keys_are_extracted() {
        let d = FnDoc {
            name: "f".into(),
            signature: "f()".into(),
            doc: "Does f.\n\n| `bins` | int |\n| `range` | x |\n\n```rhai\nf();\n```\n```rhai,no_run\ng();\n```".into(),
        };
        assert_eq!(d.option_keys(), vec!["bins", "range"]);
        assert_eq!(d.examples(), vec![("f();\n".to_string(), true), ("g();\n".to_string(), false)]);
        assert_eq!(d.summary(), "Does f.");
    }
}
