//! A `redis-server` process of the test's own, on a free loopback port, persistence off,
//! killed on drop (also when the test panics); and the few direct reads the tests check.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};

/// Free ports tried: another process can take the port between the probe and the start.
const PORT_ATTEMPTS: usize = 5;

pub struct RedisProcess {
    child: Child,
    url: String,
    client: redis::Client,
}

impl RedisProcess {
    /// Starts a server; panics naming what is missing.
    pub fn start() -> RedisProcess {
        let mut last = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free loopback port")
                .port();
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server on PATH (apt-get install redis-server)");
            let url = format!("redis://127.0.0.1:{port}");
            let client = redis::Client::open(url.as_str()).expect("a Redis URL");
            let mut server = RedisProcess { child, url, client };
            match server.wait_ready() {
                Ok(()) => return server,
                Err(e) => last = e,
            }
        }
        panic!("redis-server never answered: {last}");
    }

    /// Waits for the server's own "ready" log line — a signal, not a poll: if it exits
    /// instead (the port was taken meanwhile), its output ends and the read returns.
    fn wait_ready(&mut self) -> Result<(), String> {
        let log = self.child.stdout.take().ok_or("stdout not piped")?;
        let ready = BufReader::new(log)
            .lines()
            .map_while(Result::ok)
            .any(|line| line.contains("Ready to accept connections"));
        match self.child.try_wait() {
            _ if ready => Ok(()),
            Ok(Some(status)) => Err(format!("redis-server exited: {status}")),
            _ => Err("redis-server closed its output before it was ready".into()),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> T {
        let mut con = self.client.get_connection().expect("connected");
        cmd.query(&mut con).expect("Redis answers")
    }

    /// Runs a raw command, ignoring its answer.
    pub fn cmd(&self, args: &[&str]) {
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        let _: redis::Value = self.query(&cmd);
    }

    pub fn zscore(&self, key: &str, member: &str) -> Option<i64> {
        let score: Option<f64> = self.query(redis::cmd("ZSCORE").arg(key).arg(member));
        score.map(|s| s as i64)
    }

    pub fn zcard(&self, key: &str) -> u64 {
        self.query(redis::cmd("ZCARD").arg(key))
    }

    pub fn hget(&self, key: &str, field: &str) -> Option<String> {
        self.query(redis::cmd("HGET").arg(key).arg(field))
    }

    pub fn hlen(&self, key: &str) -> u64 {
        self.query(redis::cmd("HLEN").arg(key))
    }

    pub fn get(&self, key: &str) -> Option<String> {
        self.query(redis::cmd("GET").arg(key))
    }

    pub fn xlen(&self, key: &str) -> u64 {
        self.query(redis::cmd("XLEN").arg(key))
    }

    pub fn exists(&self, key: &str) -> bool {
        self.query(redis::cmd("EXISTS").arg(key))
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
