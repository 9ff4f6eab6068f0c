#!/usr/bin/env python3
"""A reference tickgate worker, written from the README's "Redis contract" section alone.

It reads jobs from the jobs stream through the `workers` consumer group, "runs" the
strategy (a stand-in: one alert per symbol), and acknowledges each job together with its
result in one MULTI/EXEC transaction. It creates the consumer group itself when it starts
before any engine, or when Redis lost its data (NOGROUP). It never takes back stale jobs:
tickgate re-delivers them.

Requires Python 3.9+ and redis-py 4+ (Debian: `apt-get install python3-redis`; pip:
`pip install redis`).

    python3 examples/worker.py --redis-url redis://127.0.0.1:6379 [--prefix prod:] [--cluster]

`--cluster` only changes the key names (the `{tickgate}` hash tag after the prefix): every
key this worker touches then lives in one slot, so connect it to the node serving that
slot. The options `--fail-once`, `--fail`, `--used-symbols` and `--malformed` shape the
stand-in strategy's answers, to show (and test) what tickgate does with each.

Stops on SIGTERM or SIGINT after the job in hand (within one `--block-ms`), exit code 0;
exit code 1 when Redis cannot be reached at start, 2 on bad arguments.
"""

import argparse
import json
import os
import signal
import socket
import sys
import time

try:
    import redis
except ImportError:
    sys.exit(
        "examples/worker.py needs redis-py: apt-get install python3-redis (Debian) "
        "or pip install redis"
    )

GROUP = "workers"
CLUSTER_TAG = "{tickgate}"
MODES = ("per_ticker", "strategy", "global")
# Waiting longer than this between reconnection attempts only delays recovery.
MAX_BACKOFF_S = 5.0


def key(prefix, cluster, name):
    """A key name as the contract builds it: prefix, then the hash tag in cluster mode."""
    return prefix + (CLUSTER_TAG if cluster else "") + name


def ensure_group(con, jobs):
    """Creates the `workers` group from 0; BUSYGROUP means someone came first: fine."""
    try:
        con.xgroup_create(jobs, GROUP, id="0", mkstream=True)
        return True
    except redis.ResponseError as e:
        if str(e).startswith("BUSYGROUP"):
            return False
        raise


class Strategy:
    """The stand-in strategy: which answer each job gets."""

    def __init__(self, args):
        self.fail_once = set(args.fail_once)
        self.fail = set(args.fail)
        self.malformed = set(args.malformed)
        self.used_symbols = dict(args.used_symbols)
        self.failed_already = set()

    def answer(self, job):
        """The result JSON for a parsed job (a dict), and a word for the log."""
        started = time.monotonic()
        strategy = job["strategy_id"]
        symbols = job.get("symbols")
        if strategy in self.malformed:
            # Fault injection: no strategy_id, a required field. tickgate dead-letters it.
            return json.dumps({"job_id": job["job_id"], "success": True}), "malformed"
        result = {"job_id": job["job_id"], "strategy_id": strategy}
        if strategy in self.fail or (
            strategy in self.fail_once and strategy not in self.failed_already
        ):
            self.failed_already.add(strategy)
            result["success"] = False
            result["error"] = {"type": "Injected", "message": "failure asked on the command line"}
            word = "failed"
        else:
            result["success"] = True
            result["alerts"] = [
                {"symbol": s, "score": round((len(s) % 10) / 10, 1)} for s in symbols or []
            ]
            word = "ok"
            if strategy in self.used_symbols:
                result["used_symbols"] = self.used_symbols[strategy]
        result["execution_time_ms"] = int((time.monotonic() - started) * 1000)
        return json.dumps(result), word


def parse_job(fields):
    """The job of an entry, or None when it cannot be run (then it is left unacknowledged,
    to be re-delivered and finally dead-lettered, which releases its claims)."""
    try:
        job = json.loads(fields.get("job", ""))
    except ValueError:
        return None
    if not isinstance(job, dict) or job.get("mode") not in MODES:
        return None
    if not isinstance(job.get("job_id"), str) or not isinstance(job.get("strategy_id"), int):
        return None
    symbols = job.get("symbols")
    if symbols is not None and not isinstance(symbols, list):
        return None
    return job


class Worker:
    def __init__(self, con, args):
        self.con = con
        self.jobs = key(args.prefix, args.cluster, "ALERT:JOBS")
        self.results = key(args.prefix, args.cluster, "ALERT:RESULTS")
        self.consumer = args.consumer
        self.count = args.count
        self.block_ms = args.block_ms
        self.strategy = Strategy(args)
        self.stopping = False

    def read(self):
        """New entries for this consumer; recreates the group when Redis lost it."""
        try:
            reply = self.con.xreadgroup(
                GROUP, self.consumer, {self.jobs: ">"}, count=self.count, block=self.block_ms
            )
        except redis.ResponseError as e:
            if not str(e).startswith("NOGROUP"):
                raise
            ensure_group(self.con, self.jobs)
            log(f"group {GROUP} on {self.jobs} was missing: created")
            return []
        return [entry for _stream, entries in reply or [] for entry in entries]

    def handle(self, entry_id, fields):
        job = parse_job(fields)
        if job is None:
            log(f"entry {entry_id}: not a job this worker can run, left unacknowledged")
            return
        attempt = int(fields.get("attempt", "1"))
        result, word = self.strategy.answer(job)
        pipe = self.con.pipeline(transaction=True)
        pipe.xack(self.jobs, GROUP, entry_id)
        pipe.xadd(self.results, {"result": result})
        acked, _result_id = pipe.execute()
        late = "" if acked else " (late: the entry was taken back; the result still counts)"
        count = len(job.get("symbols") or [])
        log(
            f"job {job['job_id']} attempt {attempt} {job['mode']} "
            f"{count} symbols: {word}{late}"
        )

    def run(self):
        backoff = 0.1
        while not self.stopping:
            try:
                for entry_id, fields in self.read():
                    self.handle(entry_id, fields)
                backoff = 0.1
            except redis.ConnectionError as e:
                log(f"Redis unreachable ({e}); retrying in {backoff:.1f} s")
                time.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)


def log(line):
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} worker: {line}", flush=True)


def strategy_id(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"strategy id {text!r} is not a decimal integer")
    if value < 0:
        raise argparse.ArgumentTypeError(f"strategy id {text!r} is negative")
    return value


def used_symbols(text):
    """ID=SYM,SYM,... -> (id, [symbols])."""
    ident, sep, symbols = text.partition("=")
    if not sep or not symbols:
        raise argparse.ArgumentTypeError(f"{text!r} is not ID=SYMBOL,SYMBOL,...")
    return strategy_id(ident), symbols.split(",")


def arguments(argv):
    p = argparse.ArgumentParser(description="Reference tickgate worker (README, Redis contract).")
    p.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379"))
    p.add_argument("--prefix", default="", help="tickgate's key_prefix")
    p.add_argument("--cluster", action="store_true", help="tickgate runs with cluster = true")
    p.add_argument(
        "--consumer",
        default=f"worker-{socket.gethostname()}-{os.getpid()}",
        help="consumer name, unique per process (default: host and pid)",
    )
    p.add_argument("--count", type=int, default=10, help="jobs per read")
    p.add_argument("--block-ms", type=int, default=1000, help="longest wait per read")
    p.add_argument("--fail-once", type=strategy_id, action="append", default=[],
                   help="the first job of this strategy fails (repeatable)")
    p.add_argument("--fail", type=strategy_id, action="append", default=[],
                   help="every job of this strategy fails (repeatable)")
    p.add_argument("--used-symbols", type=used_symbols, action="append", default=[],
                   metavar="ID=SYM,SYM", help="results of this strategy report used_symbols")
    p.add_argument("--malformed", type=strategy_id, action="append", default=[],
                   help="answer this strategy's jobs with a result lacking strategy_id")
    args = p.parse_args(argv)
    if args.count < 1 or args.block_ms < 1:
        p.error("--count and --block-ms must be at least 1")
    return args


def main(argv):
    args = arguments(argv)
    con = redis.Redis.from_url(args.redis_url, decode_responses=True)
    worker = Worker(con, args)
    try:
        created = ensure_group(con, worker.jobs)
    except redis.ConnectionError as e:
        log(f"cannot reach Redis: {e}")
        return 1
    log(
        f"consumer {args.consumer} reading {worker.jobs} (group {GROUP} "
        f"{'created' if created else 'already there'})"
    )

    def stop(_signum, _frame):
        worker.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    worker.run()
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
