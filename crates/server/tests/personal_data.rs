//! Personal data over HTTP: a wallet's username is sealed in the log, reads
//! through the API while its subject has a key, and after a shred every
//! route that shows it (state, stream, log, read models) answers with the
//! placeholder, while new personal data of a shredded subject is refused.

mod support;

use logbook::personal::{MasterKey, shred_subject, use_master_key};
use logbook_domain::{SHREDDED_PLACEHOLDER, SubjectId};
use serde_json::json;
use support::{STORES, TestServer};

const ALICE: &str = "Alice Liddell-5d2c";
const BOB: &str = "Bob Marley-8e7f";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_shred_the_api_shows_the_placeholder_and_refuses_new_personal_data() {
    // This test binary's process runs with a master key, as `serve` does
    // when the operator gives one.
    use_master_key(MasterKey::generate());
    for kind in STORES {
        // Given two wallets created through the API
        let server = TestServer::start(kind).await;
        for (id, name) in [("w1", ALICE), ("w2", BOB)] {
            let (status, body) = server
                .post(
                    &format!("/api/v1/aggregates/UserWallet/{id}/create"),
                    &json!({"username": name, "balance": "10.00"}),
                )
                .await;
            assert_eq!(status, 200, "{kind}: {body}");
        }
        let (_, state) = server.get("/api/v1/aggregates/UserWallet/w1").await;
        assert_eq!(state["state"]["username"], ALICE, "{kind}: {state}");
        // And the stored payload holds the name sealed, not in plain text
        let (status, stream) = server.get("/api/v1/streams/UserWallet-w1").await;
        assert_eq!(status, 200, "{kind}: {stream}");
        assert!(!stream.to_string().contains(ALICE), "{kind}: {stream}");
        assert!(
            stream.to_string().contains("$encrypted"),
            "{kind}: {stream}"
        );

        // When alice's subject is shredded
        shred_subject(&server.stores, &SubjectId::new("user-w1").unwrap())
            .await
            .unwrap();

        // Then her state reads with the placeholder, bob's is intact
        let (status, state) = server.get("/api/v1/aggregates/UserWallet/w1").await;
        assert_eq!(status, 200, "{kind}: {state}");
        assert_eq!(state["state"]["username"], SHREDDED_PLACEHOLDER, "{kind}");
        let (_, other) = server.get("/api/v1/aggregates/UserWallet/w2").await;
        assert_eq!(other["state"]["username"], BOB, "{kind}: {other}");
        // And the stream, the global log and the read models still answer
        let (status, _) = server.get("/api/v1/streams/UserWallet-w1").await;
        assert_eq!(status, 200, "{kind}");
        let (status, log) = server.get("/api/v1/log").await;
        assert_eq!(status, 200, "{kind}: {log}");
        assert!(!log.to_string().contains(ALICE), "{kind}");
        assert!(log.to_string().contains("SubjectShredded"), "{kind}: {log}");
        let (status, projections) = server.get("/api/v1/projections").await;
        assert_eq!(status, 200, "{kind}: {projections}");
        // And a wallet whose subject was shredded before it existed cannot
        // be created with a name: a 422, and nothing appended
        shred_subject(&server.stores, &SubjectId::new("user-w3").unwrap())
            .await
            .unwrap();
        let head = server.stores.events.head_position().await.unwrap();
        let (status, body) = server
            .post(
                "/api/v1/aggregates/UserWallet/w3/create",
                &json!({"username": "Carol Ann"}),
            )
            .await;
        assert_eq!(status, 422, "{kind}: {body}");
        assert_eq!(body["error"], "subject_shredded", "{kind}: {body}");
        assert_eq!(server.stores.events.head_position().await.unwrap(), head);
        server.stop().await;
    }
}
