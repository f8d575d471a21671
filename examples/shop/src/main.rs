//! `shop`: the whole `logbook` command line for the cart and its read model
//! (no seed domains): `shop exec Cart c1 add_item '{...}'`, `shop show Cart
//! c1`, `shop projection show cart-totals`, `shop follow`, `shop export`...

use logbook_example_shop::cart::Cart;
use logbook_example_shop::totals::CartTotals;

fn main() -> std::process::ExitCode {
    logbook_cli::Logbook::new()
        .aggregate::<Cart>()
        .read_model::<CartTotals>()
        .run()
}
