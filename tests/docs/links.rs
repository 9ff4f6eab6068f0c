//! Everything the README and `docs/` point to is in the repository: every relative
//! Markdown link resolves to a file or directory, every path written in code spans
//! (`sim/src/redis/provision.rs`) names one, and nothing points outside the repository
//! (`../shared`, which a clone does not have).

use std::path::{Path, PathBuf};

/// Extensions that make a code span a path worth checking.
const PATH_EXTENSIONS: &[&str] = &[
    ".rs", ".lua", ".toml", ".md", ".json", ".py", ".sh", ".service",
];

/// README.md and every Markdown file under docs/.
fn documents(root: &Path) -> Vec<PathBuf> {
    let mut docs = vec![root.join("README.md")];
    let mut dirs = vec![root.join("docs")];
    while let Some(dir) = dirs.pop() {
        let listing = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in listing.map_while(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                docs.push(path);
            }
        }
    }
    docs
}

/// `(path, fragment)` of every `[text](path#fragment)` link; external ones left out. An
/// empty path is the document itself.
fn link_targets(text: &str) -> Vec<(String, Option<String>)> {
    let mut targets = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        let Some(end) = rest.find(')') else { break };
        let target = rest[..end].trim();
        if target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        let (path, fragment) = match target.split_once('#') {
            Some((path, fragment)) => (path, Some(fragment.to_owned())),
            None => (target, None),
        };
        targets.push((path.to_owned(), fragment));
    }
    targets
}

/// The anchors GitHub gives a Markdown file's headings: lower case, punctuation dropped,
/// spaces as hyphens.
fn anchors(markdown: &str) -> Vec<String> {
    markdown
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| {
            l.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
                .map(|c| if c == ' ' { '-' } else { c })
                .collect()
        })
        .collect()
}

/// Code spans that look like repository paths: a slash, a known extension, no spaces; not
/// a pattern (`<scenario>`) nor a generated output under `target/`, which no checkout holds.
fn code_span_paths(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|span| {
            span.contains('/')
                && !span.contains(char::is_whitespace)
                && !span.contains("://")
                && !span.contains('<')
                && !span.starts_with("target/")
                && PATH_EXTENSIONS.iter().any(|ext| span.ends_with(ext))
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_relative_link_and_path_in_the_docs_resolves_inside_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut broken = Vec::new();
    let mut checked = 0;
    for doc in documents(root) {
        let text =
            std::fs::read_to_string(&doc).unwrap_or_else(|e| panic!("{}: {e}", doc.display()));
        let name = doc.strip_prefix(root).unwrap_or(&doc).display().to_string();
        let dir = doc.parent().unwrap_or(root);
        if text.contains("../shared") {
            broken.push(format!(
                "{name}: mentions ../shared, which is not in the repository"
            ));
        }
        for (target, fragment) in link_targets(&text) {
            checked += 1;
            let resolved = if target.is_empty() {
                doc.clone()
            } else {
                dir.join(&target)
            };
            let inside = resolved.canonicalize().is_ok_and(|p| p.starts_with(root));
            if !inside {
                broken.push(format!(
                    "{name}: link ({target}) does not resolve inside the repository"
                ));
                continue;
            }
            let Some(fragment) = fragment else { continue };
            let heads = anchors(&std::fs::read_to_string(&resolved).unwrap_or_default());
            if !heads.contains(&fragment) {
                broken.push(format!(
                    "{name}: link ({target}#{fragment}) names no heading there"
                ));
            }
        }
        for path in code_span_paths(&text) {
            checked += 1;
            if !root.join(&path).exists() && !dir.join(&path).exists() {
                broken.push(format!("{name}: `{path}` names no file of the repository"));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "{} broken of {checked}:\n{}",
        broken.len(),
        broken.join("\n")
    );
    assert!(
        checked > 10,
        "only {checked} links and paths found: is the scan still reading them?"
    );
}
