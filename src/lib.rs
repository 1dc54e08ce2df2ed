//! The 政务公开专区 kiosk: content model and store, bundles and trust, search, sync, and
//! the UI adapters. See ARCHITECTURE.md for the code map and the invariants.

pub mod bundle;
pub mod cli;
pub mod config;
pub mod content;
pub mod ime;
pub mod print;
pub mod qr;
pub mod requests;
pub mod search;
pub mod store;
pub mod sync;
#[cfg(feature = "ui")]
pub mod ui;
pub mod watchdog;
