//! The layers of the crate, and a guard that imports only go down them.
//!
//! Every module of `src/` belongs to one layer (the table below, which docs/ARCHITECTURE.md
//! draws). A module may use what its own unit holds and what lower layers hold, never a module
//! of its own layer's other units or of a higher layer. The guard reads every `crate::`,
//! `super::` and `self::` path in the code (comments and doc links aside), resolves it to a
//! module and fails naming the file, the line and both layers when a path goes up or sideways.
//! Its own tests feed it sources with an upward import and check that it fails.

use std::fs;
use std::path::{Path, PathBuf};

/// (module path prefix, unit, rank). The longest matching prefix decides; a higher rank may
/// use a lower one. Keep in step with docs/ARCHITECTURE.md ("Layers").
const UNITS: &[(&str, &str, u8)] = &[
    ("buf", "buf", 0),
    ("http1", "http1", 1),
    ("balance", "balance", 1),
    ("route", "route", 1),
    ("tls", "tls", 1),
    ("metrics", "metrics", 1),
    ("proxy_protocol", "proxy_protocol", 1),
    ("access_log::record", "access_log lines", 1),
    ("access_log::format", "access_log lines", 1),
    ("upstream::board", "upstream state", 2),
    ("upstream::budget", "upstream state", 2),
    ("upstream::health", "upstream state", 2),
    ("upstream::group", "upstream state", 2),
    ("upstream::pool", "upstream state", 2),
    ("upstream::registry", "upstream state", 2),
    ("upstream", "upstream I/O", 3),
    ("runtime", "runtime", 3),
    ("discovery", "discovery", 3),
    ("access_log", "access_log writer", 3),
    ("admin", "admin", 3),
    ("proxy", "proxy", 4),
    ("config", "config", 5),
    ("app", "app", 6),
    ("demo", "app", 6),
    ("fuzzing", "fuzzing", 6),
];

/// The unit and rank of a module path (`["proxy", "session"]`), if it is in the table.
fn unit_of(module: &[String]) -> Option<(&'static str, u8)> {
    let joined = module.join("::");
    UNITS
        .iter()
        .filter(|(prefix, _, _)| joined == *prefix || joined.starts_with(&format!("{prefix}::")))
        .max_by_key(|(prefix, _, _)| prefix.len())
        .map(|&(_, unit, rank)| (unit, rank))
}

/// The module path of a source file under `src/` (`src/proxy/mod.rs` → `["proxy"]`).
fn module_of(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if let Some(last) = parts.pop() {
        let stem = last.trim_end_matches(".rs");
        if stem != "mod" && stem != "lib" {
            parts.push(stem.to_owned());
        }
    }
    parts
}

/// One path that goes where it may not.
#[derive(Debug)]
struct Violation {
    line: usize,
    target: String,
    from: (&'static str, u8),
    to: (&'static str, u8),
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The code of a line: without a `//` comment (doc comments included) and string literals.
fn code_of(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    let mut in_str = false;
    while let Some(c) = chars.next() {
        if in_str {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '/' if chars.peek() == Some(&'/') => break,
            // A char literal ('{', '\''): left out, so that it counts as no brace.
            '\'' => {
                let mut ahead = chars.clone();
                match (ahead.next(), ahead.next()) {
                    (Some('\\'), _) => {
                        chars.next();
                        chars.next();
                        for c in chars.by_ref() {
                            if c == '\'' {
                                break;
                            }
                        }
                    }
                    (Some(_), Some('\'')) => {
                        chars.next();
                        chars.next();
                    }
                    // A lifetime.
                    _ => out.push(c),
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// The module paths a line refers to, resolved from `module` (the file's module path): each
/// `crate::a::b`, `super::a`, `self::a`, and each member of a `crate::{a, b::c}` group.
fn referenced(module: &[String], code: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let bytes: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        // A path starts at an identifier boundary.
        if i > 0 && (is_ident(bytes[i - 1]) || bytes[i - 1] == ':') {
            i += 1;
            continue;
        }
        let rest: String = bytes[i..].iter().collect();
        let (mut base, mut j) = if rest.starts_with("crate::") {
            (Vec::new(), i + "crate::".len())
        } else if rest.starts_with("super::") || rest.starts_with("self::") {
            let mut base = module.to_vec();
            let mut j = i;
            loop {
                let here: String = bytes[j..].iter().collect();
                if here.starts_with("super::") {
                    base.pop();
                    j += "super::".len();
                } else if here.starts_with("self::") {
                    j += "self::".len();
                } else {
                    break;
                }
            }
            (base, j)
        } else {
            i += 1;
            continue;
        };
        // Identifiers joined by `::`, up to a `{` group or the end of the path.
        loop {
            let start = j;
            while j < bytes.len() && is_ident(bytes[j]) {
                j += 1;
            }
            if j > start {
                base.push(bytes[start..j].iter().collect());
            }
            let here: String = bytes[j..].iter().collect();
            if here.starts_with("::") && j > start {
                j += 2;
                continue;
            }
            if here.starts_with('{') {
                // A group: each member's first identifier extends the path.
                let mut depth = 0;
                let mut member = String::new();
                for &c in &bytes[j..] {
                    match c {
                        '{' => {
                            depth += 1;
                            if depth > 1 {
                                member.push(c);
                            }
                        }
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                            member.push(c);
                        }
                        ',' if depth == 1 => {
                            push_member(&mut found, &base, &member);
                            member.clear();
                        }
                        _ => member.push(c),
                    }
                }
                push_member(&mut found, &base, &member);
                base.clear();
            }
            break;
        }
        if !base.is_empty() {
            found.push(base);
        }
        i = j.max(i + 1);
    }
    found
}

fn push_member(found: &mut Vec<Vec<String>>, base: &[String], member: &str) {
    let first: String = member.trim().chars().take_while(|&c| is_ident(c)).collect();
    if first.is_empty() || first == "self" {
        if !base.is_empty() {
            found.push(base.to_vec());
        }
        return;
    }
    let mut path = base.to_vec();
    path.push(first);
    found.push(path);
}

/// The name of the inline module a line opens (`mod tests {`, `pub(crate) mod x {`).
fn inline_module(code: &str) -> Option<String> {
    let mut words = code.split_whitespace().skip_while(|w| w.starts_with("pub"));
    if words.next()? != "mod" {
        return None;
    }
    let name = words.next()?;
    let name = name.trim_end_matches('{');
    let opens = code.trim_end().ends_with('{');
    (opens && !name.is_empty() && name.chars().all(is_ident)).then(|| name.to_owned())
}

/// The paths of one source file that go up or sideways.
fn check_source(module: &[String], text: &str) -> Vec<Violation> {
    let Some(from) = unit_of(module) else {
        return Vec::new();
    };
    let mut violations = Vec::new();
    // Inline modules (`mod tests { ... }`): the module path of each line, and the brace depth
    // at which each inline module opened.
    let mut here = module.to_vec();
    let mut opened: Vec<usize> = Vec::new();
    let mut depth = 0usize;
    for (n, line) in text.lines().enumerate() {
        let code = code_of(line);
        if let Some(name) = inline_module(&code) {
            here.push(name);
            opened.push(depth);
        }
        for c in code.chars() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth = depth.saturating_sub(1);
                    if opened.last() == Some(&depth) {
                        opened.pop();
                        here.pop();
                    }
                }
                _ => {}
            }
        }
        for target in referenced(&here, &code) {
            let Some(to) = unit_of(&target) else {
                continue;
            };
            if to.0 != from.0 && to.1 >= from.1 {
                violations.push(Violation {
                    line: n + 1,
                    target: target.join("::"),
                    from,
                    to,
                });
            }
        }
    }
    violations
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn imports_only_go_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    let mut report = Vec::new();
    let mut placed = 0;
    for file in &files {
        let relative = file.strip_prefix(&src).expect("under src");
        if relative == Path::new("main.rs") || relative == Path::new("lib.rs") {
            continue;
        }
        let module = module_of(relative);
        assert!(
            unit_of(&module).is_some(),
            "{}: module `{}` is in no layer: add it to UNITS in tests/layers.rs and to \
             docs/ARCHITECTURE.md",
            relative.display(),
            module.join("::")
        );
        placed += 1;
        let text = fs::read_to_string(file).expect("read source");
        for v in check_source(&module, &text) {
            report.push(format!(
                "src/{}:{}: `{}` ({}, layer {}) uses `{}` ({}, layer {})",
                relative.display(),
                v.line,
                module.join("::"),
                v.from.0,
                v.from.1,
                v.target,
                v.to.0,
                v.to.1
            ));
        }
    }
    assert!(placed > 50, "only {placed} source files found under src/");
    assert!(
        report.is_empty(),
        "imports that go up or sideways:\n{}",
        report.join("\n")
    );
}

fn module(path: &str) -> Vec<String> {
    path.split("::").map(str::to_owned).collect()
}

#[test]
fn the_guard_fails_on_an_upward_import() {
    let upward = [
        ("runtime::worker", "use crate::proxy::Context;\n"),
        ("runtime", "use crate::{buf, proxy::{self, Plan}};\n"),
        ("tls", "pub use crate::config::TlsOptions;\n"),
        (
            "tls::engine",
            "fn f() { let _ = crate::runtime::recv::readable; }\n",
        ),
        ("upstream::group", "use super::checker::CheckTarget;\n"),
        ("upstream::health", "use super::super::proxy::Plan;\n"),
        ("http1::body", "use crate::tls::TlsEngine;\n"),
        (
            "upstream::pool",
            "#[cfg(test)]\nmod tests {\n    use super::*;\n}\nuse super::connect;\n",
        ),
        ("buf", "use crate::http1::Limits;\n"),
        ("access_log::format", "use super::LineBuffer;\n"),
        ("access_log::record", "use crate::access_log::Writer;\n"),
    ];
    for (from, source) in upward {
        let found = check_source(&module(from), source);
        assert_eq!(found.len(), 1, "{from}: {source:?} gave {found:?}");
    }
}

#[test]
fn downward_paths_comments_and_strings_pass() {
    let fine = [
        (
            "proxy::session",
            "use crate::runtime::recv::{readable, recv_with};\n",
        ),
        (
            "proxy",
            "use crate::{buf, http1::{self, Limits}, upstream::group::Group};\n",
        ),
        (
            "upstream",
            "pub use pool::ConnPool; use super::board::HealthBoard;\n",
        ),
        ("runtime::worker", "use super::{Handler, Load};\n"),
        (
            "runtime",
            "//! Unlike [`crate::proxy`], this knows no HTTP.\n",
        ),
        ("tls", "let s = \"crate::proxy::x\"; // crate::app\n"),
        ("app::plan", "use crate::proxy::{ListenerPlan, Plan};\n"),
        ("config", "pub use crate::upstream::checker::CheckSpec;\n"),
        ("access_log", "pub use self::format::{Format, JSON_KEYS};\n"),
        ("access_log::format", "use super::record::{Record, Side};\n"),
        (
            "upstream::board",
            "#[cfg(test)]\nmod tests {\n    use super::*;\n    let c = '{';\n}\n",
        ),
    ];
    for (from, source) in fine {
        let found = check_source(&module(from), source);
        assert!(found.is_empty(), "{from}: {source:?} gave {found:?}");
    }
}

#[test]
fn every_layer_resolves() {
    assert_eq!(
        unit_of(&module("upstream::pool")),
        Some(("upstream state", 2))
    );
    assert_eq!(
        unit_of(&module("upstream::checker")),
        Some(("upstream I/O", 3))
    );
    assert_eq!(unit_of(&module("upstream")), Some(("upstream I/O", 3)));
    assert_eq!(unit_of(&module("tls::engine::tests")), Some(("tls", 1)));
    assert_eq!(unit_of(&module("discovery::watch")), Some(("discovery", 3)));
    assert_eq!(
        unit_of(&module("access_log::format::tests")),
        Some(("access_log lines", 1))
    );
    assert_eq!(
        unit_of(&module("access_log")),
        Some(("access_log writer", 3))
    );
    assert_eq!(
        unit_of(&module("access_log::tests")),
        Some(("access_log writer", 3))
    );
    assert_eq!(unit_of(&module("admin::prometheus")), Some(("admin", 3)));
    assert_eq!(unit_of(&module("nothing")), None);
}
