//! `cart-totals`: what every open cart holds, and what was sold.

use std::collections::BTreeMap;

use logbook::codec::Decoder;
use logbook::projection::ReadModel;
use logbook_domain::{Aggregate, Money, RecordedEvent};
use logbook_ports::EventFilter;
use serde::{Deserialize, Serialize};

use crate::cart::{Cart, CartEvent};

/// The read model.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartTotals {
    /// Units in each open cart, by cart id.
    pub open_carts: BTreeMap<String, u32>,
    /// Carts checked out.
    pub checkouts: u64,
    /// What they came to.
    pub revenue: Money,
}

impl ReadModel for CartTotals {
    const NAME: &'static str = "cart-totals";

    fn filter() -> EventFilter {
        EventFilter::stream_prefix(format!("{}-", Cart::TYPE))
    }

    fn apply(&mut self, event: &RecordedEvent) -> Result<(), String> {
        let id = event.stream.as_str()[Cart::TYPE.len() + 1..].to_owned();
        if logbook_ports::append::is_tombstone(&event.event_type) {
            self.open_carts.remove(&id);
            return Ok(());
        }
        let decoded: CartEvent = Decoder::new().decode(event).map_err(|e| e.to_string())?;
        match decoded {
            CartEvent::ItemAdded { quantity, .. } => {
                let units = self.open_carts.entry(id).or_default();
                *units = units.saturating_add(quantity);
            }
            // The units of the removed line are not in the event: a read
            // model needing them would keep lines, as the aggregate does.
            CartEvent::ItemRemoved { .. } => {
                self.open_carts.entry(id).or_default();
            }
            CartEvent::CheckedOut { total } => {
                self.open_carts.remove(&id);
                self.checkouts += 1;
                self.revenue = self.revenue.saturating_add(total);
            }
        }
        Ok(())
    }
}
