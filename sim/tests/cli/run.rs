//! `run` as a user meets it: fixture paths from anywhere in the checkout, the report out of
//! the repository unless a path is named, a report for a failed run too, and help,
//! version and usage errors that say what they should.

use crate::support::{closed_port, scratch, sim, tiny_scenario, workspace};

#[test]
fn fixture_paths_resolve_from_the_workspace_root_wherever_the_command_runs() {
    // A dead REDIS_URL stops each run right after its scenario loaded: exit 1, where a
    // scenario that cannot be read is exit 2.
    let url = format!("redis://127.0.0.1:{}", closed_port());
    let env = [("REDIS_URL", url.as_str())];
    let sim_dir = workspace().join("sim");
    let elsewhere = scratch();
    for (cwd, scenario) in [
        (&sim_dir, "fixtures/scenarios/ci.toml"),
        (&sim_dir, "ci"),
        (&elsewhere, "hard"),
    ] {
        let ran = sim(&["run", "--scenario", scenario, "--seed", "1"], &env, cwd);
        assert_eq!(ran.code, 1, "{scenario} from {}: {ran}", cwd.display());
        assert!(!ran.stderr.contains("cannot read"), "{ran}");
    }
    let ran = sim(&["run", "--scenario", "no-such-scenario"], &env, &sim_dir);
    assert_eq!(ran.code, 2, "{ran}");
    assert!(ran.stderr.contains("no-such-scenario"), "{ran}");
}

#[test]
fn the_default_report_goes_to_the_target_directory_and_a_named_one_where_named() {
    let dir = scratch();
    let scenario = tiny_scenario(&dir);
    let scenario = scenario.to_str().expect("utf-8");
    let target = dir.join("target");
    let target_env = target.to_str().expect("utf-8");
    let env = [("CARGO_TARGET_DIR", target_env)];
    let args = [
        "run",
        "--scenario",
        scenario,
        "--seed",
        "3",
        "--redis",
        "memory",
    ];
    let ran = sim(&args, &env, &dir);
    assert_eq!(ran.code, 0, "{ran}");
    let report = target.join("tickgate-sim/sim-tiny.md");
    let md = std::fs::read_to_string(&report).unwrap_or_else(|e| panic!("{e}: {ran}"));
    assert!(
        ran.stdout
            .contains(&format!("report: {}", report.display())),
        "{ran}"
    );
    // The command at the top regenerates it: same seed and flags, the build profile.
    let first = md
        .lines()
        .find(|l| l.starts_with("Regenerate with"))
        .expect("command line");
    assert!(first.contains("--seed 3 --redis memory"), "{first}");
    assert!(
        first.contains("cargo run -p tickgate-sim"),
        "a debug build says so: {first}"
    );
    for chart in ["executions", "latency", "round-trips"] {
        let svg = target.join(format!("tickgate-sim/sim-tiny-{chart}.svg"));
        assert!(svg.is_file(), "{} missing: {ran}", svg.display());
        assert!(
            md.contains(&format!("(sim-tiny-{chart}.svg)")),
            "{chart} not linked"
        );
    }
    // A named relative path is taken from the current directory.
    let named = [&args[..], &["--report", "out/mine.md"]].concat();
    let ran = sim(&named, &env, &dir);
    assert_eq!(ran.code, 0, "{ran}");
    let md = std::fs::read_to_string(dir.join("out/mine.md")).expect("named report");
    assert!(
        md.contains("--report out/mine.md") || md.contains("mine.md"),
        "{md}"
    );
    assert!(dir.join("out/mine-executions.svg").is_file());
}

#[test]
fn a_failed_run_writes_its_report_with_the_first_violation_explained() {
    let dir = scratch();
    let scenario = tiny_scenario(&dir);
    let report = dir.join("failed.md");
    let args = [
        "run",
        "--scenario",
        scenario.to_str().expect("utf-8"),
        "--seed",
        "5",
        "--redis",
        "memory",
        "--sabotage",
        "drop-updates",
        "--report",
        report.to_str().expect("utf-8"),
    ];
    let ran = sim(&args, &[], &dir);
    assert_eq!(ran.code, 4, "{ran}");
    let md = std::fs::read_to_string(&report).unwrap_or_else(|e| panic!("{e}: {ran}"));
    assert!(
        md.contains("The run failed its checks (exit 4, liveness)"),
        "{md}"
    );
    let first = md
        .lines()
        .find(|l| l.starts_with("First violation: "))
        .expect("explained");
    // Dates beside the epoch ms, in UTC and New York time.
    assert!(
        first.contains(" UTC = ") && first.contains(" ms)"),
        "{first}"
    );
    assert!(
        md.contains("--sabotage drop-updates"),
        "the command repeats the failure"
    );
}

#[test]
fn help_version_and_usage_errors_say_what_they_should() {
    let dir = scratch();
    let help = sim(&["run", "--help"], &[], &dir);
    assert_eq!(help.code, 0, "{help}");
    for text in [
        "ci ",
        "default ",
        "hard ",
        "REDIS_URL",
        "TICKGATE_REDIS",
        "TICKGATE_REDIS_IMAGE",
        "Exit codes:",
        "3  safety",
        "--sabotage",
    ] {
        assert!(help.stdout.contains(text), "help lacks {text:?}: {help}");
    }
    let version = sim(&["--version"], &[], &dir);
    assert_eq!(version.code, 0, "{version}");
    assert!(version.stdout.starts_with("tickgate-sim "), "{version}");
    let bogus = sim(&["run", "--redis", "bogus"], &[], &dir);
    assert_eq!(bogus.code, 2, "{bogus}");
    assert!(
        bogus.stderr.contains("--redis"),
        "the flag is named: {bogus}"
    );
    let env_bogus = sim(&["redis"], &[("TICKGATE_REDIS", "bogus")], &dir);
    assert_eq!(env_bogus.code, 2, "{env_bogus}");
    assert!(env_bogus.stderr.contains("TICKGATE_REDIS"), "{env_bogus}");
}
