//! The documents in the repository: the JSON Schemas agree with the structs the engine
//! writes and reads, and every relative link of the README and `docs/` resolves.

// docs/schemas/: properties and required lists equal the engine's structs; real jobs of
// every mode and catalog entries validate; the checker rejects what it must.
mod schemas;
// Every relative link in README.md and docs/*.md names a file of the repository.
mod links;
