//! Every default and every bound of the engine, in one place, each with why that number.
//! Units come last in names (`_ms`, `_members`); a setting an operator may change has its
//! default here and its range check in `config.rs`.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use crate::core::time::{DAY_MS, HOUR_MS, MINUTE_MS, SECOND_MS};

// ---- Defaults of settings (`tickgate.toml`) ----

/// Time between ticks: the seed's 10 s.
pub const DEFAULT_TICK_INTERVAL_MS: i64 = 10 * SECOND_MS;

/// Largest universe accepted (DESIGN §2.7): larger lists are rejected whole. 50,000 is the
/// largest universe of the reference workload W-100k (DESIGN §6).
pub const DEFAULT_MAX_UNIVERSE: usize = 50_000;

/// Universes above this size are intersected server-side (Lua) when fully evaluated: the
/// seed's 1,000, until `reports/lua-threshold.md` measures a better one.
pub const DEFAULT_LUA_THRESHOLD: usize = 1_000;

/// Retention of ticker update times: the seed's 90 days; raised automatically to the
/// longest bucket of any active timeframe (see `core::retention`).
pub const DEFAULT_RETENTION_MS: i64 = 90 * DAY_MS;

/// First cleanup after start: the seed's 1 h (avoids start-up congestion).
pub const DEFAULT_CLEANUP_INITIAL_DELAY_MS: i64 = HOUR_MS;

/// Cleanup period: the seed's 24 h.
pub const DEFAULT_CLEANUP_INTERVAL_MS: i64 = DAY_MS;

/// Period of the metrics log lines: the seed's 5 min.
pub const DEFAULT_METRICS_LOG_INTERVAL_MS: i64 = 5 * MINUTE_MS;

/// Period of the catalog sweep (every entry read again within it), which catches writers
/// that bypass the change log. Ten minutes bounds how long such a write goes unseen; spread
/// over the ticks it costs each W-100k tick 1,667 entries.
pub const DEFAULT_CATALOG_RESYNC_MS: i64 = 10 * MINUTE_MS;

/// Results read per call: one bounded Redis reply (a few hundred kilobytes).
pub const DEFAULT_RESULTS_BATCH: usize = 1_000;

/// Results settled per tick, at most: a burst of results cannot delay a tick by more than
/// about a hundred bounded batches; the rest wait for the next tick.
pub const DEFAULT_MAX_RESULTS_PER_TICK: usize = 100_000;

/// Strategies with a discovered universe waiting to be persisted, at most: one entry per
/// strategy (the queue coalesces), so W-100k's 100,000 strategies always fit.
pub const DEFAULT_DISCOVERY_QUEUE_CAPACITY: usize = 100_000;

/// Attempts to persist one discovered universe; with the doubling backoff below, five
/// attempts span about 3 s, longer than a Redis failover.
pub const DEFAULT_DISCOVERY_ATTEMPTS: u32 = 5;

/// First backoff between persist attempts (doubling).
pub const DEFAULT_DISCOVERY_BACKOFF_MS: i64 = 100;

/// A job a worker took and has not acknowledged for this long (logical time) is
/// re-delivered: the worker is presumed crashed. Five minutes is far above any strategy
/// run the seed's workers make.
pub const DEFAULT_JOB_VISIBILITY_MS: i64 = 5 * MINUTE_MS;

/// Deliveries after which an unacknowledged job goes to the dead-letter stream instead (a
/// poison job must not crash workers forever).
pub const DEFAULT_MAX_DELIVERIES: u64 = 3;

/// Unacknowledged jobs examined per step: bounds the step; the rest wait a tick.
pub const DEFAULT_MAX_PENDING_CHECKED: usize = 1_000;

/// Jobs the workers may leave unacknowledged (pending or not yet read) before the engine
/// stops dispatching (backpressure, DESIGN §2.8): the old `MAXLEN ~` cap of the stream, a
/// few hundred MB of jobs, about 2.5 minutes of W-100k's jobs. Nothing is claimed meanwhile,
/// so nothing is lost: the tickers are dispatched once the workers catch up.
pub const DEFAULT_JOBS_STREAM_MAX: u64 = 1_000_000;

/// Real-time bound on a graceful stop: one step in progress finishes well within it.
pub const DEFAULT_SHUTDOWN_DEADLINE_MS: u64 = 5_000;

/// Lifetime of an instance's hold on its consumer name (`TICKGATE:CONSUMER:<name>`), renewed
/// every third of it while `tickgate run` runs and deleted at shutdown. A second instance
/// with the same name is refused while the hold lives; after a crash the name is free again
/// within this long. Thirty seconds outlasts a Redis failover or a stalled renewal (two
/// renewals may fail before the hold lapses), and is a short wait for a restart after a crash.
pub const CONSUMER_LEASE_MS: u64 = 30_000;

/// Tick intervals a closed bucket's claims stay in an instance's ledger (for the write-back
/// after a Redis loss): its closing pass runs at the first tick at or after its end, and one
/// more tick covers a closing pass retried after a failed dispatch.
pub const LEDGER_KEEP_TICKS: i64 = 2;

/// How long trigger state outlives its bucket. It covers clock skew between engine
/// instances and a slow last tick of the bucket; an hour is generous for both.
pub const DEFAULT_TRIGGER_GRACE_MS: i64 = HOUR_MS;

/// How far ahead of the engine's clock an update time may be (DESIGN §2.3): further ahead
/// it is rejected at recording and ignored (counted) when found in Redis, because `ZADD GT`
/// never lowers a time, so one bogus stamp far in the future would pin its ticker and hide
/// every real update until the clock reached it. Five minutes is generous for clock skew
/// between market-data hosts and the engine (NTP keeps them within milliseconds; the
/// simulator's feed stamps at most a minute ahead), and far below any bucket that matters
/// (a stamp ahead by less than this can only reach into the next 1m or 5m bucket early).
pub const DEFAULT_MAX_FUTURE_MS: i64 = 5 * MINUTE_MS;

/// Default `direct_write_lag_ms`: how long after its stamp a direct writer's update (a plain
/// `ZADD [GT] TICK:UPD`, as the original system's ingestion writes, with no sequence number)
/// may reach Redis and still be seen at the next tick; later ones wait for the next full
/// read. A minute covers a bar stamped at its open and written at its close (1m bars) and
/// any ingestion queue that is working; the window it adds to each read holds the tickers
/// updated in the last interval plus this, which the record script's writers pay for too.
pub const DEFAULT_DIRECT_WRITE_LAG_MS: i64 = MINUTE_MS;

/// Default `result_takeover_ms`: how long (logical time) a result may stay pending with
/// another engine instance's consumer before this one takes it over and settles it. A live
/// instance acknowledges every result it reads within the step that read it (a dead letter
/// that cannot be written is retried at its next step), so only a crashed or renamed
/// instance (the default consumer name holds the pid) leaves results pending for long. A
/// minute is six default ticks, above any step measured (the W-100k resync tick, 14 s); it
/// is also how long a crashed instance's failed jobs wait before their tickers are retried.
/// Taking over a live instance's result too early is harmless (settling is idempotent), only
/// wasted work.
pub const DEFAULT_RESULT_TAKEOVER_MS: i64 = MINUTE_MS;

/// Default `max_clock_skew_ms`: how far the engine's clock may be from Redis's (`TIME`)
/// before the service stops stepping and reports not ready. Redis expires trigger hashes on
/// its own clock, with a TTL computed from the engine's, so an instance X ahead lets them
/// expire X early (past `trigger_grace_ms` that re-opens a bucket to duplicates); and an
/// instance off by more than a tick decides a whole tick early or late. Ten seconds is one
/// default tick: NTP keeps healthy hosts within milliseconds, so only a broken clock trips
/// it, and it is far below `trigger_grace_ms` (1 h).
pub const DEFAULT_MAX_CLOCK_SKEW_MS: i64 = 10 * SECOND_MS;

/// Smallest `max_clock_skew_ms`: a round trip to Redis (which the check cannot tell from
/// skew) takes up to tens of milliseconds on a loaded network.
pub const MIN_CLOCK_SKEW_MS: i64 = 100;

/// Bound on establishing a Redis connection.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 2_000;

/// Bound on every Redis answer. redis-rs defaults to 500 ms when unset; a cleanup chunk or
/// a 50,000-member universe write can take longer on a busy server.
pub const DEFAULT_RESPONSE_TIMEOUT_MS: u64 = 2_000;

/// Reconnection attempts per failed request before the error reaches the caller; the
/// engine retries on its next tick, so a few attempts are enough.
pub const DEFAULT_RECONNECT_RETRIES: usize = 3;

// ---- Fixed bounds ----

/// Members removed per cleanup call: a 1,000-member `ZREM` on a million-entry set takes
/// about a millisecond of Redis time, so no single call blocks other clients noticeably.
pub const CLEANUP_CHUNK_MEMBERS: usize = 1_000;

/// Bound on the calls of one cleanup run: 10,000 × 1,000 = 10 million entries. A larger
/// backlog is left for the next run, which continues where this one stopped.
pub const CLEANUP_CALLS_PER_RUN_MAX: usize = 10_000;

/// Members per `ZADD` / `SADD` / `HMGET` command: keeps each command's Redis time and
/// argument buffer small.
pub const WRITE_CHUNK_MEMBERS: usize = 1_000;

/// Script calls (or commands) per pipeline: one round trip carries this many strategies'
/// claims, and the reply buffer stays a few hundred kilobytes.
pub const PIPELINE_CALLS_MAX: usize = 500;

/// Strategies per `dispatch.lua` call: a script call costs several times the few commands
/// it runs per strategy, so grouping cuts Redis time per job; 25 keeps one call under a
/// millisecond of Redis time (DESIGN §6: every other client of Redis waits that long),
/// measured by `cargo bench --bench tick` (calls over 1 ms, from SLOWLOG).
pub const DISPATCH_GROUP_STRATEGIES: usize = 25;

/// Tickers per `dispatch.lua` call beyond its first strategy: bounds one call's Redis time
/// when the strategies are large. A claim costs about 3 µs of Redis time per ticker (W-100k,
/// a 5,000-ticker call blocked Redis 14.5 ms), so 300 keeps a call under a millisecond.
pub const DISPATCH_GROUP_TICKERS: usize = 300;

/// Most tickers in one per-ticker job: a proposal with more goes out as several jobs of the
/// same bucket, each claim atomic with its own job, so that no dispatch call exceeds
/// [`DISPATCH_GROUP_TICKERS`] (a W-100k strategy of 10,000 tickers may see 2,600 of them
/// change in a minute). Workers see more, smaller jobs; the decisions are the same.
pub const JOB_TICKERS_MAX: usize = DISPATCH_GROUP_TICKERS;

/// Approximate cap on the dead-letter stream (`MAXLEN ~`). It has no consumer group: it is
/// for people to read, so its oldest letters may go; a million is a few hundred MB at most.
pub const DEAD_STREAM_MAXLEN: u64 = 1_000_000;

/// Change records kept for other instances (`TICKGATE:CHANGES`); an instance that falls
/// further behind than this reloads the whole catalog instead.
pub const CHANGE_RECORDS_MAX: u64 = 100_000;

/// Most changed tickers an incremental update read answers as a delta; beyond it (after a
/// long pause, say) the full read of the update set is no dearer, and is done instead.
pub const FEED_DELTA_MAX: u64 = 10_000;

/// Catalog entries per `HSCAN` page: each page is one short Redis call.
pub const CATALOG_PAGE_ENTRIES: usize = 1_000;

/// Catalog entries per `HSCAN` page of the sweep (the rolling safety resync): a W-100k
/// entry is about 1 KB of JSON (its universe inside), so a page of 200 keeps each call well
/// under a millisecond of Redis time, which every other client would wait.
pub const SWEEP_PAGE_ENTRIES: usize = 200;

/// Most catalog entries the sweep reads in one step, whatever `catalog_resync_ms` asks: at
/// W-100k the default period needs 1,667 a step; 20,000 (about 20 MB of JSON, 100 pages)
/// bounds what one step can spend on it with a very short period.
pub const SWEEP_STEP_ENTRIES_MAX: usize = 20_000;

/// Bound on pages per full catalog read (10 million entries): no catalog is anywhere near.
pub const CATALOG_PAGES_MAX: usize = 10_000;

/// Attempts per engine step. A connection that broke while Redis was away fails the first
/// command after it is back; the second attempt runs on the new connection. More would only
/// delay the next tick while Redis is really down.
pub const STEP_ATTEMPTS: usize = 2;

/// Compare-and-swap rounds for one catalog write of a discovered universe: another writer
/// changing the same entry in between is rare, so a few rounds always suffice in practice.
pub const CATALOG_CAS_ROUNDS: usize = 5;

// ---- HTTP: `/metrics`, `/healthz`, `/readyz` ----

/// Where the HTTP server listens unless `[http] listen_addr` says otherwise: loopback, so
/// the endpoints are not exposed to the network by accident (DESIGN §9); 9464 is the port
/// Prometheus exporters conventionally take (OpenTelemetry's exporter uses it too).
pub const DEFAULT_HTTP_LISTEN_ADDR: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9464));

/// Connections served at once; further ones wait in the kernel's accept queue. A Prometheus
/// server or two, a load balancer's probes and a person with curl need a handful; 32 keeps
/// a misbehaving client from holding more than a few hundred kilobytes of buffers.
pub const HTTP_MAX_CONNECTIONS: usize = 32;

/// Bound on a whole connection (one request: read it, answer it). A scrape answers in
/// milliseconds; Prometheus's default scrape timeout is 10 s, so a client slower than that
/// has given up anyway, and a silent one (slowloris) is cut here.
pub const HTTP_CONNECTION_TIMEOUT_MS: u64 = 10_000;

/// Largest request head (request line and headers) read; larger gets `431`. A probe's or
/// a scraper's GET is a few hundred bytes; 16 KiB leaves room for proxies' headers, and
/// hyper accepts no bound below 8 KiB.
pub const HTTP_MAX_HEADER_BYTES: usize = 16 * 1024;

/// After shutdown, requests in progress get this long to finish before they are cut: an
/// answer takes milliseconds, so a second is plenty and keeps a stuck client from delaying
/// the exit (it comes out of `shutdown_deadline_ms`'s budget).
pub const HTTP_SHUTDOWN_DRAIN_MS: u64 = 1_000;

/// Wait after a failed `accept` (out of file descriptors, say) before the next: the
/// failure repeats until a connection closes, and retrying at once would spin a core.
pub const HTTP_ACCEPT_BACKOFF_MS: u64 = 100;
