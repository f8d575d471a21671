//! The example's own `logbook`, run as a user would: its aggregate, its read
//! model and a subscription, through the extended command line on a real
//! SQLite store.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

fn shop(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shop"))
        .arg("--store")
        .arg(format!("sqlite:{}", db.display()))
        .args(args)
        .env_remove("LOGBOOK_STORE")
        .output()
        .expect("the shop binary runs")
}

#[track_caller]
fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[track_caller]
fn refused(output: Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "expected a refusal");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
}

#[test]
fn the_extended_command_line_runs_the_cart_and_its_read_model() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shop.db");
    // Given a cart filled and bought through `exec`.
    ok(shop(
        &db,
        &[
            "exec",
            "Cart",
            "c1",
            "add_item",
            r#"{"sku": "tea", "quantity": 2, "unit_price": "3.50"}"#,
        ],
    ));
    ok(shop(
        &db,
        &[
            "exec",
            "cart",
            "c1",
            "add_item",
            r#"{"sku": "cup", "quantity": 1, "unit_price": "12.00"}"#,
        ],
    ));
    let done: serde_json::Value =
        serde_json::from_str(&ok(shop(&db, &["exec", "Cart", "c1", "check_out"]))).unwrap();
    assert_eq!(done["events"][0], "CheckedOut");
    assert_eq!(done["version"], 3);
    // When its state is shown, now and in the past.
    let now: serde_json::Value =
        serde_json::from_str(&ok(shop(&db, &["show", "Cart", "c1", "--json"]))).unwrap();
    assert_eq!(now["state"]["checked_out"], true);
    assert_eq!(now["version"], 3);
    let before: serde_json::Value = serde_json::from_str(&ok(shop(
        &db,
        &["show", "Cart", "c1", "--at-version", "1", "--json"],
    )))
    .unwrap();
    assert_eq!(before["state"]["items"]["tea"]["quantity"], 2);
    assert_eq!(before["state"]["checked_out"], false);
    // Then the read model counts the sale.
    let totals: serde_json::Value =
        serde_json::from_str(&ok(shop(&db, &["projection", "show", "cart-totals"]))).unwrap();
    assert_eq!(totals["checkouts"], 1);
    assert_eq!(totals["revenue"], "19.00");
    assert!(ok(shop(&db, &["projection", "list"])).contains("cart-totals"));
    // And the domain's refusal, the seed domains' absence and bad arguments
    // are one clear line each.
    refused(
        shop(&db, &["exec", "Cart", "c1", "check_out"]),
        "checked out already",
    );
    refused(
        shop(&db, &["exec", "BankAccount", "a1", "close"]),
        "unknown aggregate \"BankAccount\"; known: Cart",
    );
    refused(
        shop(
            &db,
            &[
                "exec",
                "Cart",
                "c2",
                "add_item",
                r#"{"sku": "x", "quantity": 1}"#,
            ],
        ),
        "field `unit_price`: required, but missing",
    );
    let seeds = shop(&db, &["account", "show", "a1"]);
    assert_eq!(seeds.status.code(), Some(2), "a usage error");
    assert!(String::from_utf8_lossy(&seeds.stderr).contains("unrecognized subcommand 'account'"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_sees_checkouts_another_process_commits() {
    // Given a subscriber on the store, from the start.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shop.db");
    let stores = logbook::open_stores(&format!("sqlite:{}", db.display())).unwrap();
    let watching =
        tokio::spawn(async move { logbook_example_shop::checkouts(&stores, 1, 2).await });
    // When two carts are bought by the command line, in other processes.
    for cart in ["c1", "c2"] {
        ok(shop(
            &db,
            &[
                "exec",
                "Cart",
                cart,
                "add_item",
                r#"{"sku": "tea", "quantity": 1, "unit_price": "3.50"}"#,
            ],
        ));
        ok(shop(&db, &["exec", "Cart", cart, "check_out"]));
    }
    // Then the subscriber receives both checkouts, in order, and nothing else.
    let seen = tokio::time::timeout(Duration::from_secs(30), watching)
        .await
        .expect("the checkouts arrive")
        .unwrap()
        .unwrap();
    let streams: Vec<&str> = seen.iter().map(|e| e.stream.as_str()).collect();
    assert_eq!(streams, ["Cart-c1", "Cart-c2"]);
    assert!(seen.iter().all(|e| &*e.event_type == "CheckedOut"));
}
