//! Paths on the command line: relative paths are found from the current directory first,
//! then from the workspace root, so the README's commands work from anywhere in the
//! checkout (`sim/` included); a bare scenario name (`ci`) names a fixture; the default
//! report goes under the target directory, where it does not dirty the repository.

use std::path::{Path, PathBuf};

/// Where the bundled scenarios live, from the workspace root.
pub const SCENARIOS_DIR: &str = "fixtures/scenarios";

/// The default report's directory, inside Cargo's target directory.
pub const REPORT_DIR: &str = "tickgate-sim";

/// The workspace this binary was built from, if it is still there (the crate is `sim/`
/// inside it).
pub fn workspace_root() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    root.join("Cargo.toml").is_file().then(|| root.to_owned())
}

/// `path` as given if absolute, or if it (a scenario) or its directory (a report) is
/// found from the current directory; else from the workspace root when found there; else
/// as given (the error that follows names it).
pub fn resolve(path: &Path, must_exist: bool) -> PathBuf {
    let found = |p: &Path| {
        if must_exist {
            p.exists()
        } else {
            let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
            dir.is_none_or(Path::is_dir)
        }
    };
    if path.is_absolute() || found(path) {
        return path.to_owned();
    }
    match workspace_root().map(|root| root.join(path)) {
        Some(rooted) if found(&rooted) => rooted,
        _ => path.to_owned(),
    }
}

/// A `--scenario` value: a file, or the name of a bundled scenario (`ci` for
/// `fixtures/scenarios/ci.toml`).
pub fn scenario(arg: &Path) -> PathBuf {
    let is_name = arg.extension().is_none() && arg.components().count() == 1;
    let path = if is_name {
        Path::new(SCENARIOS_DIR).join(arg).with_extension("toml")
    } else {
        arg.to_owned()
    };
    resolve(&path, true)
}

/// Where a report goes when `--report` names no path: `<target>/tickgate-sim/sim-<name>.md`
/// with `<target>` from `CARGO_TARGET_DIR`, else the workspace's `target/`.
pub fn default_report(scenario_name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| workspace_root().map(|root| root.join("target")))
        .unwrap_or_else(|| PathBuf::from("target"));
    target
        .join(REPORT_DIR)
        .join(format!("sim-{scenario_name}.md"))
}

/// The bundled scenarios, one line each (`name  description`), for `--help`.
pub fn list_scenarios() -> String {
    let Some(dir) = workspace_root().map(|root| root.join(SCENARIOS_DIR)) else {
        return "  (the workspace's fixtures/scenarios/ is not here: pass a file)".to_owned();
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| entries.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    files.sort();
    let lines: Vec<String> = files
        .iter()
        .map(|p| {
            let name = p.file_stem().map(|s| s.to_string_lossy().into_owned());
            let description = crate::world::scenario::Scenario::load(p)
                .map(|s| s.description)
                .unwrap_or_else(|e| format!("(does not load: {e})"));
            format!("  {:<9} {description}", name.unwrap_or_default())
        })
        .collect();
    if lines.is_empty() {
        format!("  (none found in {})", dir.display())
    } else {
        lines.join("\n")
    }
}
