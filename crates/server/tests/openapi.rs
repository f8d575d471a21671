//! The OpenAPI document against the routes: every route of the router is
//! documented, every documented operation exists, and the served document
//! is the one checked.

mod support;

use std::collections::BTreeSet;

use logbook_server::{OPENAPI, Server};
use serde_json::Value;
use support::TestServer;

fn documented() -> BTreeSet<(String, String)> {
    let doc: Value = serde_json::from_str(OPENAPI).expect("the OpenAPI document is JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    let mut operations = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            operations.insert((method.to_uppercase(), path.clone()));
        }
    }
    operations
}

#[test]
fn every_route_is_documented_and_every_documented_route_exists() {
    let routes: BTreeSet<(String, String)> = Server::api_routes()
        .into_iter()
        .map(|(method, path)| (method.to_owned(), path.to_owned()))
        .collect();
    let documented = documented();
    let undocumented: Vec<_> = routes.difference(&documented).collect();
    let missing: Vec<_> = documented.difference(&routes).collect();
    assert!(
        undocumented.is_empty(),
        "routes without documentation: {undocumented:?}"
    );
    assert!(missing.is_empty(), "documented but not routed: {missing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_answers_every_documented_operation_and_serves_the_document() {
    // Given a running server
    let server = TestServer::start("memory").await;

    // Then every documented operation is routed: with placeholders for the
    // path parameters it may answer 4xx, but never "no route" or 405
    for (method, path) in documented() {
        let concrete = path
            .replace("{stream}", "Probe-1")
            .replace("{aggregate}", "BankAccount")
            .replace("{id}", "probe")
            .replace("{command}", "close")
            .replace("{name}", "account-summary");
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = server.client.request(method.clone(), server.url(&concrete));
        if concrete.ends_with("/subscribe") {
            request = request.query(&[("from", "1")]);
        }
        let response = tokio::time::timeout(std::time::Duration::from_secs(10), request.send())
            .await
            .expect("answered")
            .unwrap();
        let status = response.status().as_u16();
        assert_ne!(status, 405, "{method} {concrete}");
        if status == 404 {
            let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
            assert_ne!(
                body["error"], "not_found",
                "{method} {concrete} has no route"
            );
        }
    }

    // And the served document is this one
    let (status, served) = server.get("/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(served, serde_json::from_str::<Value>(OPENAPI).unwrap());
    server.stop().await;
}
