//! The one list of effects, and what start-up does with it. Adding an effect is its module and
//! one line here; everything else that lists effects (the settings' names and defaults, their
//! `Debug`, the templates' and docs' tests, the clients made at start-up, the production warnings)
//! loops over [`EFFECTS`].

use std::sync::Arc;

use super::effect::{ClientError, Clients, Entry, Shared};
use crate::settings::Settings;
use crate::storage::Storage;

/// The effects, in the order their steps run: a step may wait only for steps planned before it.
pub const EFFECTS: &[&Entry] = &[
    &super::issue::EFFECT,
    &super::copy::EFFECT,
    &super::report::EFFECT,
    &super::cdn::EFFECT,
    &super::email::EFFECT,
    &super::webhook::EFFECT,
];

/// Whether a configured effect's client is made from the AWS SDK's configuration.
pub fn needs_aws(settings: &Settings) -> bool {
    EFFECTS
        .iter()
        .filter_map(|e| e.client.as_ref())
        .any(|c| c.aws && (c.wanted)(settings))
}

/// The clients: the buckets, and the client of each configured effect that has one.
pub fn clients(
    settings: &Settings,
    storage: Arc<dyn Storage>,
    shared: &Shared<'_>,
) -> Result<Clients, ClientError> {
    let mut clients = Clients::new(storage);
    for maker in EFFECTS.iter().filter_map(|e| e.client.as_ref()) {
        if (maker.wanted)(settings) {
            clients.insert((maker.make)(settings, shared)?);
        }
    }
    Ok(clients)
}
