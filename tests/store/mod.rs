//! The data layer against a real Redis, with the in-memory model as the oracle.

// Claims of the production dispatch script raced by concurrent connections; trigger-key
// expiry; the claim lifecycle on both stores; bad input that must change nothing.
mod claims;
// Retention cleanup: never changes a decision, bounded calls, concurrent instances.
mod cleanup;
// The incremental update read: exact deltas, and every fallback to a full read.
mod feed;
// Consumer groups made by whichever side comes first: a worker before the engine, races.
mod groups;
// Step 3 four ways (the seed's script, the adaptive script, client-side, the model); the
// script-failure fallback.
mod intersection;
// Store-vs-model state machine over every store operation, state compared after every step.
mod model;
// Settlement on both stores: late and never-issued results, dead letters, reaped jobs.
mod results;
// Streams trimmed only below what every consumer group has acknowledged.
mod trim;
// Universe precedence (catalog writes, discoveries, persisting them) and restore after a
// loss, step by step on both stores.
mod precedence;
// Reads everything the store keeps in Redis, shaped like the model's state.
mod state;
// `rediss://` against a TLS redis-server and a throwaway CA: the CA setting, mutual TLS,
// unusable files named; the URL stays redacted.
mod tls;
// An ACL user with the documented command set runs every engine operation; a wrong
// password is a startup error naming the user, never the password.
mod acl;
