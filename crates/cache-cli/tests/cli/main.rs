//! The `reqwest-caching` command, built and run as a child process against every store on
//! real servers, over caches seeded through the real middleware from a real local origin.

mod every_command;
mod failures;
mod stores;
mod support;
mod terminal;
