#!/usr/bin/env bash
# Mutation check (issue 10): applies each small break below, one at a time, to a
# throw-away copy of the committed checkout, runs the narrowest tests meant to catch it,
# and prints caught / SURVIVED for each. Exit status: 0 when every mutation is caught,
# 1 when one survived, 2 when one no longer applies or no longer builds (the table is out
# of date with the code: fix the table, never the test).
#
#   scripts/mutants.sh            # every mutation
#   scripts/mutants.sh NAME...    # only these
#   scripts/mutants.sh --list     # names and what each breaks
#   scripts/mutants.sh --check    # only that every pattern still applies (no build)
#
# Redis as the tests get it (TICKGATE_REDIS; `process` without Docker). The checkout is
# never touched: the copy is a `git worktree` of HEAD under $TMPDIR (uncommitted changes
# are not tested), built into target/mutants so that successive mutations rebuild only
# what changed. Expect about 1–3 minutes per mutation on a 2-core machine.
set -euo pipefail

root="$(git rev-parse --show-toplevel)"
cd "$root"

# name ~~ file ~~ perl substitution (applied with perl -0pi -e: `.` never matches a
# newline, `\n` does) ~~ cargo test arguments
mutations=(
  "no-claim-check ~~ engine/src/store/lua/lib/claim.lua ~~ s/if value ~= start and not seen\[ticker\] then/if not seen[ticker] then/ ~~ --test main store::claims"
  "bucket-start-gt ~~ engine/src/core/rule.rs ~~ s/is_some_and\(\|ts\| ts >= bucket.start_ms\)/is_some_and(|ts| ts > bucket.start_ms)/ ~~ -p tickgate --lib rule"
  "planner-start-gt ~~ engine/src/core/planner.rs ~~ s/if ts < bucket.start_ms \{/if ts <= bucket.start_ms {/ ~~ -p tickgate --test main planner"
  "no-zadd-gt ~~ engine/src/store/lua/record.lua ~~ s/redis.call\('ZADD', KEYS\[1\], 'GT', /redis.call('ZADD', KEYS[1], / ~~ --test main store::model"
  "b11-no-closing-pass ~~ engine/src/core/planner.rs ~~ s/(\(Some\(old\), Some\(new\)\)) if per_ticker && old.end_ms <= new.start_ms =>/\1 if false =>/ ~~ --test main runtime::closing"
  "b11-closing-ignores-pre ~~ engine/src/core/planner.rs ~~ s/let inside = times\n\s*\.iter\(\)\n\s*\.any\(\|ts\| \(bucket.start_ms..bucket.end_ms\).contains\(ts\)\);/let inside = (bucket.start_ms..bucket.end_ms).contains(&times[0]);/ ~~ --test main runtime::closing"
  "b11-no-pre-kept ~~ engine/src/store/lua/record.lua ~~ s/if #before > 0 then/if false then/ ~~ --test main runtime::closing"
  "b2-fractional-score-fails-read ~~ engine/src/store/redis/updates.rs ~~ s/let Some\(ts_ms\) = self.stamp\(&member, score\) else \{\n\s*continue;/let Some(ts_ms) = self.stamp(&member, score) else {\n                return Err(StoreError::Timeout { op: \"mutant\" });/ ~~ --test main runtime::closing::a_fractional"
  "future-stamps-not-reexamined ~~ engine/src/core/planner.rs ~~ s/if ts > now_ms \{\n\s*self.ahead.insert\(id\);\n\s*\}// ~~ -p tickgate --test main planner"
  "cleanup-before-load ~~ engine/src/runtime/step.rs ~~ s/if now_ms < due \|\| self.loaded_at_ms.is_none\(\) \{/if now_ms < due {/ ~~ --test main store::cleanup::no_cleanup_before"
  "raw-retention ~~ engine/src/core/retention.rs ~~ s/\.fold\(configured_ms, i64::max\)/.fold(configured_ms, |a, _| a)/ ~~ --test main store::cleanup"
  "week-alignment-off ~~ engine/src/core/calendar.rs ~~ s/let start_day = FIRST_MONDAY_DAY \+ week.div_euclid\(n\) \* n \* 7;/let start_day = FIRST_MONDAY_DAY + ((week + 1).div_euclid(n) * n - 1) * 7;/ ~~ -p tickgate --test main calendar"
  "quarter-alignment-off ~~ engine/src/core/calendar.rs ~~ s/let first = quarter.div_euclid\(n\) \* n;/let first = (quarter + 1).div_euclid(n) * n - 1;/ ~~ -p tickgate --test main calendar"
  "year-alignment-off ~~ engine/src/core/calendar.rs ~~ s/let first = \(year - 1970\).div_euclid\(n\) \* n;/let first = (year - 1969).div_euclid(n) * n - 1;/ ~~ -p tickgate --test main calendar"
  "b8-claim-check-stops-at-998 ~~ engine/src/store/lua/lib/claim.lua ~~ s/local values = plan.drop and \{\} or redis.call\('HMGET', plan.target, unpack\(part\)\)/local values = {}/ ~~ --test main store::claims::the_originals_trigger_hash"
  "no-stale-bucket-check ~~ engine/src/store/lua/lib/claim.lua ~~ s/if tonumber\(end_ms\) <= gen_ms then/if false then/ ~~ --test main store::claims"
  "closing-after-replace-is-stale ~~ engine/src/store/lua/lib/claim.lua ~~ s/if kept.err or kept\[1\] ~= start then/if true then/ ~~ --test main runtime::closing::a_closing_pass_after"
  "replaced-claims-not-compared ~~ engine/src/store/lua/lib/claim.lua ~~ s/      current = kept\n/      current = {kept[1], kept[2]}\n/ ~~ --test main runtime::closing::a_closing_pass_after"
  "model-replaced-is-stale ~~ engine/src/store/model/jobs.rs ~~ s/Some\(r\) if r.bucket_ms == bucket.start_ms => &mut r.claims,/Some(r) if false => \&mut r.claims,/ ~~ --test main store::model"
  "clock-skew-ignored ~~ engine/src/runtime/mod.rs ~~ s/if let skew::Skew::Beyond\(_\) = found.await \{/if let skew::Skew::Unknown = found.await {/ ~~ --test main runtime::skew"
  "direct-writes-not-read ~~ engine/src/store/lua/read_updates.lua ~~ s/local recent = redis.call\('ZRANGE', KEYS\[1\], ARGV\[6\], /local recent = redis.call('ZRANGE', KEYS[1], '+inf', / ~~ --test main runtime::takeover"
  "orphaned-results-never-taken ~~ engine/src/runtime/step.rs ~~ s/        self.take_over_results\(now_ms\).await\?;\n// ~~ --test main runtime::orphans"
  "orphan-taken-twice ~~ engine/src/store/lua/take_results.lua ~~ s/if #p == 1 and p\[1\]\[2\] == owner and tostring\(p\[1\]\[4\]\) == seen then/if #p == 1 then/ ~~ --test main runtime::orphans"
  "orphan-delivery-count-ignored ~~ engine/src/store/lua/take_results.lua ~~ s/ and tostring\(p\[1\]\[4\]\) == seen then/ then/ ~~ --test main runtime::orphans"
  "no-full-read-for-longer-timeframe ~~ engine/src/runtime/tick.rs ~~ s/if since_ms < self.known_from_ms \{/if false {/ ~~ --test main runtime::e2e::a_longer_timeframe"
  "no-catalog-sweep ~~ engine/src/runtime/catalog_sync.rs ~~ s/            self.sweep\(now_ms\).await\?;\n// ~~ --test main runtime::sweep"
  "sweep-reads-the-whole-catalog ~~ engine/src/runtime/catalog_sync.rs ~~ s/\.clamp\(1, SWEEP_STEP_ENTRIES_MAX\)/.clamp(SWEEP_STEP_ENTRIES_MAX, SWEEP_STEP_ENTRIES_MAX)/ ~~ --test main runtime::sweep"
  "sweep-ignores-universe-sizes ~~ engine/src/runtime/catalog_sync.rs ~~ s/if found != Some\(size\)/if false/ ~~ --test main runtime::sweep"
  "expiry-never-extended ~~ engine/src/store/lua/lib/claim.lua ~~ s/  elseif extend then/  elseif false then/ ~~ --test main store::claims::trigger_state_expires"
  "batch-loses-earlier-minute ~~ engine/src/store/redis/updates.rs ~~ s/for times in \[batch.earlier, batch.latest\] \{/for times in [batch.latest] {/ ~~ --test main store::feed::a_batch_across"
  "release-on-success ~~ engine/src/store/lua/lib/settle.lua ~~ s/  if not failed then\n    return 1, 0\n  end\n// ~~ --test main store::results::a_succeeded_run_keeps_its_claims"
  "never-release ~~ engine/src/store/lua/lib/settle.lua ~~ s/      redis.call\('HDEL', triggers, ticker\)\n// ~~ --test main store::results"
  "b1-job-numbers-restart ~~ engine/src/store/lua/lib/claim.lua ~~ s/elseif plan.drop and plan.jobs > 0 then/elseif false then/ ~~ --test main store::results::a_result_settles_only_the_job_it_names"
  "b1-record-names-no-bucket ~~ engine/src/store/model/jobs.rs ~~ s/\.insert\(\(r\.bucket\.start_ms, seq\), claimed\.clone\(\)\)/.insert((0, seq), claimed.clone())/ ~~ --test main store::results::a_result_settles_only_the_job_it_names"
  "b3-claims-before-job ~~ engine/src/store/lua/dispatch.lua ~~ s/    redis.call\('XADD', KEYS\[1\], '\*', 'job', job\)/    commit(KEYS[k], KEYS[k + 1], start, ttl, plan, claimed, job_n)\n    plan.stale = true\n    redis.call('XADD', KEYS[1], '*', 'job', job)/ ~~ --test main store::claims::no_claim_is_written_when_its_job_cannot_be"
  "b4-ack-without-dead-letter ~~ engine/src/store/lua/ack_results.lua ~~ s/  if written then/  if true then/ ~~ --test main store::results::a_result_is_acknowledged_only_once"
  "b9-never-issued-is-late ~~ engine/src/store/lua/lib/settle.lua ~~ s/(tonumber\(n\) > tonumber\(head\[3\] or '0'\)\) then\n\s*)return 2, 0/\${1}return 0, 0/ ~~ --test main store::results::jobs_never_issued"
  "dead-lettered-job-keeps-claims ~~ engine/src/store/lua/reap_job.lua ~~ s/_, released = settle\(KEYS\[3\], KEYS\[4\], ARGV\[8\], ARGV\[9\], true\)/released = 0/ ~~ --test main store::results::jobs_dead_lettered"
  "trim-ignores-pending ~~ engine/src/store/lua/trim_stream.lua ~~ s/if g\['pending'\] > 0 then/if false then/ ~~ --test main store::trim"
  "b2-damaged-trigger-fails-all ~~ engine/src/store/lua/lib/claim.lua ~~ s/local current = redis.pcall\('HMGET'/local current = redis.call('HMGET'/ ~~ --test main runtime::isolation"
  "b2-oversized-universe-fails-all ~~ engine/src/runtime/catalog_sync.rs ~~ s/if declared.len\(\) > max \{/if false {/ ~~ --test main runtime::isolation"
  "b5-redis-universe-wins ~~ engine/src/runtime/catalog_sync.rs ~~ s/if let Some\(current\) = current\n\s*&& base.as_deref\(\) == Some\(digest.as_str\(\)\)/if let Some(current) = current/ ~~ --test main runtime::precedence"
  "b6-restore-overwrites ~~ engine/src/store/lua/restore_strategy.lua ~~ s/if redis.call\('ZSCORE', KEYS\[3\], ARGV\[1\]\) or redis.call\('HEXISTS', KEYS\[1\], ARGV\[1\]\) == 1 then/if false then/ ~~ --test main runtime::restore"
  "b7-no-write-back ~~ engine/src/runtime/tick.rs ~~ s/            self.write_back_claims\(now_ms\).await\?;\n// ~~ --test main runtime::faults"
)

# Sets name, file, subst and tests from one table row.
split() {
  local row="$1"
  name="${row%% ~~ *}"
  row="${row#* ~~ }"
  file="${row%% ~~ *}"
  row="${row#* ~~ }"
  subst="${row%% ~~ *}"
  tests="${row#* ~~ }"
}

usage_list() {
  for m in "${mutations[@]}"; do
    split "$m"
    printf '%-32s %s  (cargo test %s)\n' "$name" "$file" "$tests"
  done
}

if [[ "${1:-}" == "--list" ]]; then
  usage_list
  exit 0
fi
if [[ "${1:-}" == "--check" ]]; then
  stale=0
  for m in "${mutations[@]}"; do
    split "$m"
    if [[ "$(perl -0pe "$subst" "$file")" == "$(cat "$file")" ]]; then
      printf '%-32s NOT APPLIED (the pattern no longer matches %s)\n' "$name" "$file"
      stale=$((stale + 1))
    fi
  done
  echo "patterns: ${#mutations[@]}, not applying: $stale"
  exit $((stale > 0 ? 2 : 0))
fi
wanted=("$@")

tmp="$(mktemp -d "${TMPDIR:-/tmp}/tickgate-mutants.XXXXXX")"
copy="$tmp/tree"
cleanup() {
  git -C "$root" worktree remove --force "$copy" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
git worktree add --quiet --detach "$copy" HEAD
export CARGO_TARGET_DIR="$root/target/mutants"

caught=0 survived=0 broken=0
for m in "${mutations[@]}"; do
  split "$m"
  if ((${#wanted[@]})) && [[ ! " ${wanted[*]} " == *" $name "* ]]; then
    continue
  fi
  git -C "$copy" checkout --quiet -- .
  perl -0pi -e "$subst" "$copy/$file"
  if git -C "$copy" diff --quiet; then
    printf '%-32s NOT APPLIED (the pattern no longer matches %s)\n' "$name" "$file"
    broken=$((broken + 1))
    continue
  fi
  # shellcheck disable=SC2086 # the test arguments are words
  if ! (cd "$copy" && cargo test --quiet --no-run $tests >"$tmp/$name.build" 2>&1); then
    printf '%-32s DOES NOT BUILD (see the mutation; log: %s)\n' "$name" "$tmp/$name.build"
    broken=$((broken + 1))
    continue
  fi
  # shellcheck disable=SC2086
  if (cd "$copy" && cargo test --quiet $tests >"$tmp/$name.log" 2>&1); then
    printf '%-32s SURVIVED  (cargo test %s passed)\n' "$name" "$tests"
    survived=$((survived + 1))
  else
    failed="$(grep -E '^    [a-z0-9_:]+$' "$tmp/$name.log" | head -3 | tr -s ' \n' ' ' || true)"
    printf '%-32s caught    by %s\n' "$name" "${failed:-cargo test $tests}"
    caught=$((caught + 1))
  fi
done
git -C "$copy" checkout --quiet -- .

echo "mutations: $caught caught, $survived survived, $broken out of date"
if ((broken > 0)); then
  exit 2
fi
if ((survived > 0)); then
  exit 1
fi
