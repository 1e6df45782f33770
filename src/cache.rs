//! [`Cache`]: what a middleware and its handles share, its settings (fixed) beside its live
//! machinery. Every step of a request takes it by reference; background refreshes hold it
//! weakly, so dropping the middleware and its handles ends them.
//!
//! Calls `live`, `settings` (nothing that calls it).

use crate::live::Live;
use crate::settings::Settings;

/// One cache: the rules it follows and the machinery it runs on.
#[derive(Debug)]
pub(crate) struct Cache {
    pub(crate) settings: Settings,
    pub(crate) live: Live,
}
