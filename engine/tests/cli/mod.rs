//! The `tickgate` binary as operators meet it, against a real Redis: each subcommand, each
//! with bad input (named error, documented exit code, nothing written), `run` stopped by
//! SIGTERM, and a second `run` with the same consumer name refused.
//!
//! The binary is the one Cargo built for this package (`CARGO_BIN_EXE_tickgate`); each test
//! starts its own `redis-server` process on a free loopback port (`redis_process.rs`).

mod redis_process;
mod run;

use std::path::PathBuf;
use std::process::{Command, Output};

pub use self::redis_process::RedisProcess;

/// Exit codes, as the README lists them.
pub const REDIS_FAILURE: i32 = 1;
pub const CONFIG_INVALID: i32 = 2;
pub const BAD_INPUT: i32 = 3;
pub const CONSUMER_TAKEN: i32 = 4;
pub const USAGE: i32 = 64;

/// The binary under test, with the environment cleared of anything that would point it
/// elsewhere, and the test's Redis named by the highest-precedence variable.
pub fn tickgate(redis: &RedisProcess) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tickgate"));
    cmd.env_remove("REDIS_URL")
        .env_remove("PER_TICKER_THROTTLE")
        .env_remove("RUST_LOG")
        .env("TICKGATE_REDIS_URL", redis.url());
    cmd
}

/// Runs `tickgate args…` to its end.
pub fn run_tickgate(redis: &RedisProcess, args: &[&str]) -> Output {
    tickgate(redis)
        .args(args)
        .output()
        .expect("the tickgate binary runs")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts the exit code, showing the output when it differs.
pub fn assert_code(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(out),
        stderr(out)
    );
}

/// A directory of the test's own under the system's temp dir (never in the checkout),
/// removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("tickgate-cli-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    /// Writes `name` with `text`; returns its path.
    pub fn file(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write a test file");
        path.to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Now, UTC epoch ms.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64
}

#[test]
fn help_and_version_answer_every_subcommand() {
    let subcommands: [&[&str]; 12] = [
        &[],
        &["run"],
        &["check-config"],
        &["cleanup"],
        &["strategy"],
        &["strategy", "put"],
        &["strategy", "rm"],
        &["strategy", "list"],
        &["strategy", "import"],
        &["update"],
        &["stats"],
        &["bucket"],
    ];
    for sub in subcommands {
        for flag in ["--help", "--version"] {
            let out = Command::new(env!("CARGO_BIN_EXE_tickgate"))
                .args(sub)
                .arg(flag)
                .output()
                .expect("runs");
            assert_code(&out, 0);
            let text = stdout(&out);
            let want = if flag == "--help" {
                "Usage: tickgate"
            } else {
                "0.1.0"
            };
            assert!(text.contains(want), "{sub:?} {flag}: {text}");
        }
    }
    let out = Command::new(env!("CARGO_BIN_EXE_tickgate"))
        .arg("frobnicate")
        .output()
        .expect("runs");
    assert_code(&out, USAGE);
}

#[test]
fn bucket_prints_ms_and_new_york_time_and_keeps_the_plain_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_tickgate"))
        .args(["bucket", "1d", "1721017800000"])
        .output()
        .expect("runs");
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains("start 1721016000000 (2024-07-15 00:00:00 EDT)"),
        "{text}"
    );
    assert!(
        text.contains("end   1721102400000 (2024-07-16 00:00:00 EDT)"),
        "{text}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_tickgate"))
        .args(["bucket", "1d", "1721017800000", "--plain"])
        .output()
        .expect("runs");
    assert_eq!(
        stdout(&out).trim(),
        "1d 1721016000000 1721102400000 max_bucket_ms=90000000"
    );
    for (args, needle) in [
        (["bucket", "7x", "0"], "timeframe \"7x\" does not match"),
        (["bucket", "1d", "soon"], "TS_MS \"soon\" is invalid"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_tickgate"))
            .args(args)
            .output()
            .expect("runs");
        assert_code(&out, BAD_INPUT);
        assert!(stderr(&out).contains(needle), "{}", stderr(&out));
    }
}

#[test]
fn update_records_through_the_script_and_rejects_bad_input() {
    let redis = RedisProcess::start();
    let ts = now_ms() - 1_000;
    let out = run_tickgate(&redis, &["update", "AAPL", &ts.to_string()]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains(&format!("recorded AAPL at {ts} (")));
    assert_eq!(redis.zscore("TICK:UPD", "AAPL"), Some(ts));
    // The record script's bookkeeping: the write sequence moved.
    assert_eq!(redis.hget("TICK:SEQ:META", "seq").as_deref(), Some("1"));
    let far_future = (now_ms() + 3_600_000).to_string();
    for (args, needle) in [
        (
            vec!["update", "BAD TICKER"],
            "ticker \"BAD TICKER\" is invalid",
        ),
        (
            vec!["update", "MSFT", "yesterday"],
            "TS_MS \"yesterday\" is invalid",
        ),
        (vec!["update", "MSFT", "-5"], "timestamp -5 ms is invalid"),
        (
            vec!["update", "MSFT", &far_future],
            "must be at most max_future_ms",
        ),
    ] {
        let out = run_tickgate(&redis, &args);
        assert_code(&out, BAD_INPUT);
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(redis.zcard("TICK:UPD"), 1, "a rejected update was written");
    assert_eq!(redis.hget("TICK:SEQ:META", "seq").as_deref(), Some("1"));
}

#[test]
fn strategy_put_import_list_rm_go_through_the_change_log() {
    let redis = RedisProcess::start();
    let dir = TempDir::new("strategy");
    let good = dir.file(
        "one.json",
        r#"{"id": 7, "user_id": 3, "name": "gap up", "timeframe": "5m", "universe": ["AAPL", "MSFT"], "active": true, "owner": "platform"}"#,
    );
    let out = run_tickgate(&redis, &["strategy", "put", &good]);
    assert_code(&out, 0);
    let stored = redis.hget("STRAT:CATALOG", "7").expect("entry written");
    assert!(
        stored.contains("\"owner\":\"platform\""),
        "fields kept: {stored}"
    );
    assert_eq!(
        redis.get("TICKGATE:VERSION").as_deref(),
        Some("1"),
        "change recorded"
    );

    let import = dir.file(
        "good-many.json",
        r#"[{"id": 10, "timeframe": "1d", "universe": "all"}, {"id": 11, "timeframe": "1h", "universe": ["SPY"], "active": false}]"#,
    );
    assert_code(&run_tickgate(&redis, &["strategy", "import", &import]), 0);
    let out = run_tickgate(&redis, &["strategy", "list"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(text.starts_with("3 strategies in STRAT:CATALOG"), "{text}");
    assert!(
        text.contains("gap up") && text.contains("2 tickers"),
        "{text}"
    );
    let out = run_tickgate(&redis, &["strategy", "list", "--json"]);
    let listed: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(listed.as_array().map(Vec::len), Some(3));

    let out = run_tickgate(&redis, &["strategy", "rm", "seven"]);
    assert_code(&out, BAD_INPUT);
    assert!(stderr(&out).contains("strategy id \"seven\" is invalid"));
    assert_code(&run_tickgate(&redis, &["strategy", "rm", "7"]), 0);
    assert_eq!(redis.hget("STRAT:CATALOG", "7"), None);
    assert_eq!(
        redis.get("TICKGATE:VERSION").as_deref(),
        Some("4"),
        "removal recorded"
    );
}

#[test]
fn strategy_files_with_problems_write_nothing_and_name_each_problem() {
    let redis = RedisProcess::start();
    let dir = TempDir::new("strategy-bad");
    let good = dir.file(
        "one.json",
        r#"{"id": 7, "timeframe": "5m", "universe": ["AAPL"]}"#,
    );
    assert_code(&run_tickgate(&redis, &["strategy", "put", &good]), 0);
    let bad = [
        (
            "tf.json",
            r#"{"id": 8, "timeframe": "7x", "universe": "all"}"#,
            "timeframe \"7x\" does not match",
        ),
        (
            "ticker.json",
            r#"{"id": 8, "timeframe": "1h", "universe": ["AAPL", "BAD TICKER"]}"#,
            "ticker \"BAD TICKER\" is invalid",
        ),
        (
            "word.json",
            r#"{"id": 8, "timeframe": "1h", "universe": "some"}"#,
            "universe \"some\" is invalid",
        ),
        (
            "broken.json",
            r#"{"id": 8, "timeframe": "#,
            "is not one strategy JSON object",
        ),
        ("missing.json", r#"{"id": 8}"#, "missing field `timeframe`"),
    ];
    for (name, text, needle) in bad {
        let path = dir.file(name, text);
        let out = run_tickgate(&redis, &["strategy", "put", &path]);
        assert_code(&out, BAD_INPUT);
        let err = stderr(&out);
        assert!(err.contains(needle) && err.contains(name), "{name}: {err}");
    }
    let import = dir.file(
        "many.json",
        r#"[{"id": 10, "timeframe": "1d", "universe": "all"}, {"id": 11, "timeframe": "0m", "universe": "all"}, {"id": 10, "timeframe": "1d"}]"#,
    );
    let out = run_tickgate(&redis, &["strategy", "import", &import]);
    assert_code(&out, BAD_INPUT);
    let err = stderr(&out);
    assert!(
        err.contains("count of 0") && err.contains("strategy 10 appears more than once"),
        "{err}"
    );
    assert_eq!(redis.hlen("STRAT:CATALOG"), 1, "a bad file wrote something");
    assert_eq!(redis.get("TICKGATE:VERSION").as_deref(), Some("1"));
}

#[test]
fn stats_reads_what_redis_holds() {
    let redis = RedisProcess::start();
    let dir = TempDir::new("stats");
    let catalog = dir.file(
        "catalog.json",
        r#"[{"id": 1, "timeframe": "5m", "universe": ["AAPL", "MSFT"]}, {"id": 2, "timeframe": "1d", "universe": "all"}, {"id": 3, "timeframe": "1h", "universe": ["SPY"], "active": false}]"#,
    );
    assert_code(&run_tickgate(&redis, &["strategy", "import", &catalog]), 0);
    redis.cmd(&["SADD", "STRAT:1:UNIV", "AAPL", "MSFT"]);
    let ts = (now_ms() - 5_000).to_string();
    for ticker in ["AAPL", "MSFT", "SPY"] {
        assert_code(&run_tickgate(&redis, &["update", ticker, &ts]), 0);
    }
    redis.cmd(&["XGROUP", "CREATE", "ALERT:JOBS", "workers", "$", "MKSTREAM"]);
    redis.cmd(&["XADD", "ALERT:JOBS", "*", "job", "{}"]);
    let out = run_tickgate(&redis, &["stats", "--json"]);
    assert_code(&out, 0);
    let stats: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(stats["tracked_tickers"], 3);
    assert_eq!(stats["update_writes"], 3);
    assert_eq!(stats["strategies"]["total"], 3);
    assert_eq!(stats["strategies"]["active"], 2);
    assert_eq!(stats["strategies"]["global"], 1);
    assert_eq!(stats["universe_sizes"], serde_json::json!([1, 0, 0, 0]));
    assert_eq!(stats["universe_average"], 2);
    let jobs = &stats["streams"][0];
    assert_eq!(jobs["key"], "ALERT:JOBS");
    assert_eq!(jobs["length"], 1);
    assert_eq!(jobs["groups"][0]["name"], "workers");
    assert_eq!(jobs["groups"][0]["lag"], 1, "one job not yet delivered");
    let out = run_tickgate(&redis, &["stats"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    for needle in [
        "Tracked tickers (TICK:UPD): 3",
        "Universe distribution - Small (≤10): 1, Medium (≤100): 0",
        "Average universe size: 2 tickers across 1 strategies",
        "group workers: 0 consumer(s), 0 pending, lag 1",
    ] {
        assert!(text.contains(needle), "{needle} missing in:\n{text}");
    }
}

#[test]
fn cleanup_counts_by_age_and_dry_run_removes_nothing() {
    let redis = RedisProcess::start();
    let day = 86_400_000;
    let now = now_ms();
    for (ticker, age_days) in [("NEW", 1), ("OLD1", 100), ("OLD2", 200), ("OLD3", 1_000)] {
        let score = (now - age_days * day).to_string();
        redis.cmd(&["ZADD", "TICK:UPD", &score, ticker]);
    }
    let out = run_tickgate(&redis, &["cleanup", "--dry-run"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    for needle in [
        "retention 90 days",
        "older than 90 days (7776000000 ms) (updated before",
        "): 3",
        "older than 90 days, up to 180 days: 1",
        "older than 180 days, up to 365 days: 1",
        "older than 730 days: 1",
        "dry run: nothing removed",
    ] {
        assert!(text.contains(needle), "{needle} missing in:\n{text}");
    }
    assert_eq!(redis.zcard("TICK:UPD"), 4, "the dry run removed something");
    // A yearly strategy raises the retention to its longest bucket: OLD1 and OLD2 stay.
    let dir = TempDir::new("cleanup");
    let yearly = dir.file(
        "y.json",
        r#"{"id": 1, "timeframe": "1y", "universe": "all"}"#,
    );
    assert_code(&run_tickgate(&redis, &["strategy", "put", &yearly]), 0);
    let out = run_tickgate(&redis, &["cleanup"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains("raised from the configured 90 days"),
        "{text}"
    );
    assert!(text.contains("removed 1 in 1 call(s)"), "{text}");
    assert_eq!(redis.zcard("TICK:UPD"), 3);
    assert_eq!(redis.zscore("TICK:UPD", "OLD3"), None);
}

#[test]
fn configuration_problems_exit_2_and_a_dead_redis_exits_1() {
    let redis = RedisProcess::start();
    let dir = TempDir::new("config");
    let bad = dir.file("bad.toml", "[engine]\ncolour = 1\ntick_interval_ms = 5\n");
    let out = run_tickgate(&redis, &["check-config", &bad]);
    assert_code(&out, CONFIG_INVALID);
    let err = stderr(&out);
    assert!(
        err.contains("bad.toml") && err.contains("engine.colour: unknown setting"),
        "{err}"
    );
    assert!(
        err.contains("engine.tick_interval_ms = 5: must be 100 ms..=1 day"),
        "{err}"
    );
    let ts = now_ms().to_string();
    let out = run_tickgate(&redis, &["--config", &bad, "update", "AAPL", &ts]);
    assert_code(&out, CONFIG_INVALID);
    let out = tickgate(&redis)
        .env("TICKGATE_ENGINE_MAX_UNIVERSE", "lots")
        .args(["update", "AAPL", &ts])
        .output()
        .expect("runs");
    assert_code(&out, CONFIG_INVALID);
    assert!(stderr(&out).contains("TICKGATE_ENGINE_MAX_UNIVERSE=\"lots\""));
    assert_eq!(
        redis.zcard("TICK:UPD"),
        0,
        "written despite a bad configuration"
    );
    let good = dir.file("good.toml", "[engine]\ntick_interval_ms = 5000\n");
    assert_code(&run_tickgate(&redis, &["check-config", &good]), 0);

    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let url = format!("redis://:secret@{}", closed.local_addr().expect("addr"));
    drop(closed);
    let out = tickgate(&redis)
        .env("TICKGATE_REDIS_URL", &url)
        .env("TICKGATE_REDIS_CONNECT_TIMEOUT_MS", "500")
        .args(["stats"])
        .output()
        .expect("runs");
    assert_code(&out, REDIS_FAILURE);
    let err = stderr(&out);
    assert!(
        err.contains("cannot connect to Redis") && !err.contains("secret"),
        "{err}"
    );
}
