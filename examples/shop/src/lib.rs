//! A worked example of extending logbook: a shopping cart, an aggregate the
//! seeds do not have; `cart-totals`, a read model over every cart; and
//! [`checkouts`], a subscription that follows checkouts as they are
//! committed. `src/main.rs` registers the cart and its read model on a
//! `logbook_cli::Logbook` and gets the whole `logbook` command line for them.
//!
//! Being an example, it depends on the library and the command line as any
//! team's crate would, and nothing depends on it.

pub mod cart;
pub mod totals;

use logbook::Subscription;
use logbook_domain::{Position, RecordedEvent};
use logbook_ports::{EventFilter, StoreError, Stores};

/// The checkouts committed from `from` on, history then live, in order: the
/// first `count` of them. A mailer or a warehouse would run this loop
/// forever, keeping the position it reached.
///
/// # Errors
/// Store failures.
pub async fn checkouts(
    stores: &Stores,
    from: Position,
    count: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let filter = EventFilter {
        event_types: vec!["CheckedOut".into()],
        stream_prefix: Some(format!(
            "{}-",
            <cart::Cart as logbook_domain::Aggregate>::TYPE
        )),
    };
    let mut subscription = Subscription::new(stores.events.clone(), from, filter);
    let mut seen = Vec::with_capacity(count);
    while seen.len() < count {
        seen.push(subscription.next().await?);
    }
    Ok(seen)
}
