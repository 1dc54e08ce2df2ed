//! The content model, scope merging and the working-day calendar: plain data, no IO.

pub mod calendar;
pub mod model;
pub mod scope;
pub mod settings;
pub mod standard;

pub use model::*;
pub use scope::{merge, BadScope, MergeError, Merged, ScopeCode, ScopedItem};
