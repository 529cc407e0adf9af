//! Domain rules, read from the columns a profile names: they catch the smells a person would
//! notice (an old export, garbled postcodes, UPRNs a spreadsheet has damaged). All warn without
//! failing a file, but for UPRNs in scientific notation: those cannot be imported.
//!
//! [`RowRules`] binds a profile's rules to a file's header and applies them to each row's
//! captured cells; [`RulesRunner`] runs them on the walking thread or on the spare one. Each
//! rule has its file (`postcode`, `dates`, `uprn` with `uprn_set`), and a [`tally`] of the
//! rows that break it.

mod dates;
mod postcode;
mod row_rules;
mod runner;
#[cfg(test)]
mod strategies;
mod tally;
mod uprn;
mod uprn_set;

pub use row_rules::RowRules;
pub use runner::RulesRunner;
