//! Where the Redis comes from: a way the user named is used or the command fails with exit
//! 1 naming it; `auto` falls back only between ways nobody named, and says so; `redis` and
//! `run` agree on every mode.

use std::path::Path;

use crate::fake_docker;
use crate::support::{
    LocalRedis, PATH_WITHOUT_REDIS, Ran, closed_port, scratch, sim, tiny_scenario,
};

/// `run` on the tiny scenario with `env` and `flags`, in `dir`.
fn run(dir: &Path, flags: &[&str], env: &[(&str, &str)]) -> Ran {
    let scenario = tiny_scenario(dir);
    let mut args = vec![
        "run",
        "--scenario",
        scenario.to_str().expect("utf-8"),
        "--seed",
        "1",
    ];
    args.extend_from_slice(flags);
    sim(&args, env, dir)
}

/// `redis` with `env` and `flags`, in `dir`.
fn redis(dir: &Path, flags: &[&str], env: &[(&str, &str)]) -> Ran {
    let mut args = vec!["redis"];
    args.extend_from_slice(flags);
    sim(&args, env, dir)
}

#[test]
fn a_redis_url_that_does_not_answer_fails_both_commands_without_a_fallback() {
    let dir = scratch();
    let url = format!("redis://127.0.0.1:{}", closed_port());
    for flags in [&[][..], &["--redis", "auto"], &["--redis", "url"]] {
        for ran in [
            redis(&dir, flags, &[("REDIS_URL", &url)]),
            run(&dir, flags, &[("REDIS_URL", &url)]),
        ] {
            assert_eq!(ran.code, 1, "{flags:?}: {ran}");
            assert!(
                ran.stderr.contains("REDIS_URL") && ran.stderr.contains(&url),
                "{flags:?}: the message names what failed: {ran}"
            );
            assert_eq!(
                ran.redis_line(),
                None,
                "{flags:?}: no other Redis used: {ran}"
            );
            assert!(!ran.stdout.contains("notice"), "{flags:?}: {ran}");
        }
    }
}

#[test]
fn a_host_name_is_resolved_and_pinged_and_a_bad_url_is_named() {
    let dir = scratch();
    let local = LocalRedis::start();
    // A host name, not an address: resolved by the client, then PINGed.
    let named = format!("redis://localhost:{}", local.port);
    let ran = redis(&dir, &[], &[("REDIS_URL", &named)]);
    assert_eq!(ran.code, 0, "{ran}");
    assert_eq!(
        ran.redis_line(),
        Some(format!("redis: url {named}").as_str()),
        "{ran}"
    );
    assert!(ran.stdout.contains("PING answered"), "{ran}");
    for (url, says) in [
        ("redis://no-such-host.invalid:6379", "no-such-host.invalid"),
        ("notaurl", "is not a Redis URL"),
    ] {
        let ran = redis(&dir, &[], &[("REDIS_URL", url)]);
        assert_eq!(ran.code, 1, "{url}: {ran}");
        assert!(ran.stderr.contains(says), "{url}: {ran}");
    }
}

#[test]
fn explicit_modes_fail_naming_what_is_missing() {
    let dir = scratch();
    let dead_docker = format!("tcp://127.0.0.1:{}", closed_port());
    for (flags, env, says) in [
        (["--redis", "url"], vec![], "REDIS_URL is not set"),
        (
            ["--redis", "process"],
            vec![("PATH", PATH_WITHOUT_REDIS)],
            "no redis-server found on PATH",
        ),
        (
            ["--redis", "container"],
            vec![("DOCKER_HOST", dead_docker.as_str())],
            "no Docker daemon answers",
        ),
    ] {
        for ran in [redis(&dir, &flags, &env), run(&dir, &flags, &env)] {
            assert_eq!(ran.code, 1, "{flags:?}: {ran}");
            assert!(ran.stderr.contains(says), "{flags:?}: {ran}");
            assert_eq!(ran.redis_line(), None, "{flags:?}: {ran}");
        }
    }
}

#[test]
fn an_image_docker_cannot_pull_fails_container_mode_naming_the_image_script() {
    let dir = scratch();
    let docker = fake_docker::start();
    for (flags, env) in [
        (
            vec!["--redis", "container"],
            vec![("DOCKER_HOST", docker.as_str())],
        ),
        (
            vec![],
            vec![
                ("DOCKER_HOST", docker.as_str()),
                ("TICKGATE_REDIS", "container"),
            ],
        ),
    ] {
        let ran = redis(&dir, &flags, &env);
        assert_eq!(ran.code, 1, "{flags:?} {env:?}: {ran}");
        assert!(
            ran.stderr.contains("redis:7") && ran.stderr.contains("scripts/redis-image.sh"),
            "{flags:?} {env:?}: the image and the remedy are named: {ran}"
        );
    }
}

#[test]
fn auto_falls_back_from_an_image_it_cannot_pull_to_a_local_redis_server_and_says_so() {
    let dir = scratch();
    let docker = fake_docker::start();
    let env = [("DOCKER_HOST", docker.as_str())];
    for ran in [redis(&dir, &[], &env), run(&dir, &[], &env)] {
        assert_eq!(ran.code, 0, "{ran}");
        let notice = ran
            .stdout
            .lines()
            .find(|l| l.starts_with("notice: auto: "))
            .unwrap_or_else(|| panic!("the fallback is announced: {ran}"));
        assert!(
            notice.contains("redis:7")
                && notice.contains(fake_docker::REFUSAL)
                && notice.contains("using a local redis-server instead"),
            "{notice}"
        );
        assert!(
            ran.redis_line()
                .is_some_and(|l| l.starts_with("redis: process ")),
            "{ran}"
        );
    }
    // With no redis-server to fall back to, the container's failure is the error.
    let env = [
        ("DOCKER_HOST", docker.as_str()),
        ("PATH", PATH_WITHOUT_REDIS),
    ];
    let ran = redis(&dir, &[], &env);
    assert_eq!(ran.code, 1, "{ran}");
    assert!(ran.stderr.contains("scripts/redis-image.sh"), "{ran}");
}

#[test]
fn auto_with_no_way_to_a_redis_names_every_way() {
    let dir = scratch();
    let dead_docker = format!("tcp://127.0.0.1:{}", closed_port());
    let env = [
        ("DOCKER_HOST", dead_docker.as_str()),
        ("PATH", PATH_WITHOUT_REDIS),
    ];
    for ran in [redis(&dir, &[], &env), run(&dir, &[], &env)] {
        assert_eq!(ran.code, 1, "{ran}");
        for way in ["REDIS_URL", "Docker", "redis-server"] {
            assert!(ran.stderr.contains(way), "{way}: {ran}");
        }
        assert_eq!(ran.redis_line(), None, "not the in-memory store: {ran}");
    }
}

/// A case of the agreement test: its name, the flags, the environment.
type Case<'a> = (&'a str, Vec<&'a str>, Vec<(&'a str, &'a str)>);

/// Every mode, working or not: the two commands end alike and name the same Redis.
#[test]
fn redis_and_run_agree_on_every_mode() {
    let dir = scratch();
    let local = LocalRedis::start();
    let url = format!("redis://127.0.0.1:{}", local.port);
    let closed = format!("redis://127.0.0.1:{}", closed_port());
    let dead_docker = format!("tcp://127.0.0.1:{}", closed_port());
    let cases: Vec<Case> = vec![
        ("url, up", vec!["--redis", "url"], vec![("REDIS_URL", &url)]),
        (
            "url, down",
            vec!["--redis", "url"],
            vec![("REDIS_URL", &closed)],
        ),
        ("auto, REDIS_URL up", vec![], vec![("REDIS_URL", &url)]),
        (
            "auto, no Docker",
            vec![],
            vec![("DOCKER_HOST", &dead_docker)],
        ),
        (
            "TICKGATE_REDIS=process",
            vec![],
            vec![("TICKGATE_REDIS", "process")],
        ),
        ("process", vec!["--redis", "process"], vec![]),
        ("memory", vec!["--redis", "memory"], vec![]),
        (
            "container, no Docker",
            vec!["--redis", "container"],
            vec![("DOCKER_HOST", &dead_docker)],
        ),
    ];
    for (case, flags, env) in cases {
        let (a, b) = (redis(&dir, &flags, &env), run(&dir, &flags, &env));
        assert_eq!(a.code, b.code, "{case}: redis {a}\nrun {b}");
        // A process's pid differs between the two: compare what precedes it.
        let kind = |r: &Ran| {
            r.redis_line()
                .map(|l| l.split(" (pid").next().unwrap_or(l).to_owned())
        };
        assert_eq!(kind(&a), kind(&b), "{case}: redis {a}\nrun {b}");
    }
}
