//! The HTTP API over real HTTP, on every store: appends, conflicts,
//! idempotent retries, paging, filters, long-polling, stream listing,
//! deletion, commands by name, aggregate state, projections, and the one
//! error shape for everything a client can get wrong.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{STORES, TestServer, error_code};

fn versions(body: &Value) -> Vec<u64> {
    body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["version"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_answer_versions_and_positions_conflicts_and_idempotent_retries() {
    for kind in STORES {
        // Given an empty store behind the server
        let server = TestServer::start(kind).await;

        // When two events are appended to a new stream
        let (status, body) = server
            .append("Order-1", json!("no_stream"), &["Placed", "Paid"])
            .await;

        // Then they get versions 1-2 and positions 1-2
        assert_eq!(status, 201, "{kind}: {body}");
        assert_eq!(body["first_version"], 1);
        assert_eq!(body["version"], 2);
        assert_eq!(body["first_position"], 1);
        assert_eq!(body["last_position"], 2);
        assert_eq!(body["events"][1]["position"], 2);
        assert_eq!(body["already_recorded"], false);

        // When a writer appends expecting a stale version (in the body)
        let (status, body) = server.append("Order-1", json!(1), &["Shipped"]).await;
        // Then it is refused with the current version, and nothing written
        assert_eq!(status, 409, "{kind}: {body}");
        assert_eq!(error_code(&body), "wrong_expected_version");
        assert_eq!(body["current_version"], 2);
        assert_eq!(body["expected_version"], 1);

        // And the same through the Expected-Version header
        let (status, body) = server
            .send(
                server
                    .client
                    .post(server.url("/api/v1/streams/Order-1"))
                    .header("expected-version", "no_stream")
                    .body(json!({"events": [{"type": "Shipped", "payload": {}}]}).to_string()),
            )
            .await;
        assert_eq!(status, 409, "{kind}: {body}");
        assert_eq!(body["current_version"], 2);

        // When a batch with ids is sent twice (a client retrying after a
        // lost answer)
        let batch = json!({
            "expected_version": 2,
            "events": [
                {"id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "type": "Shipped",
                 "payload": {"carrier": "post"}, "metadata": {"user": "ann",
                 "correlation_id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a50"}}
            ]
        });
        let (first_status, first) = server.post("/api/v1/streams/Order-1", &batch).await;
        let (retry_status, retry) = server.post("/api/v1/streams/Order-1", &batch).await;

        // Then the retry is answered like the first, with nothing written
        assert_eq!(first_status, 201, "{kind}: {first}");
        assert_eq!(retry_status, 200, "{kind}: {retry}");
        assert_eq!(retry["already_recorded"], true);
        assert_eq!(retry["last_position"], first["last_position"]);
        let (_, read) = server.get("/api/v1/streams/Order-1").await;
        assert_eq!(versions(&read), [1, 2, 3]);
        assert_eq!(read["events"][2]["metadata"]["user"], "ann");
        assert_eq!(
            read["events"][2]["metadata"]["correlation_id"],
            "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a50"
        );
        assert_eq!(read["events"][2]["payload"]["carrier"], "post");

        // And the metrics count appends, events and conflicts
        let text = server
            .client
            .get(server.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(text.contains("logbook_appends_total 2\n"), "{text}");
        assert!(text.contains("logbook_events_appended_total 3\n"), "{text}");
        assert!(text.contains("logbook_conflicts_total 2\n"), "{text}");
        assert!(text.contains("logbook_http_request_duration_seconds_bucket{method=\"POST\",route=\"/api/v1/streams/{stream}\""));
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_reads_page_forward_and_backward_by_their_links() {
    for kind in STORES {
        // Given a stream of five events
        let server = TestServer::start(kind).await;
        server
            .append("Ship-a", json!("any"), &["A", "B", "C", "D", "E"])
            .await;

        // When it is read forward two at a time, following the links
        let mut seen = Vec::new();
        let mut next = Some("/api/v1/streams/Ship-a?limit=2".to_owned());
        while let Some(link) = next {
            let (status, page) = server.get(&link).await;
            assert_eq!(status, 200, "{kind}: {page}");
            seen.extend(versions(&page));
            next = page["links"]["next"].as_str().map(str::to_owned);
        }
        // Then every version comes once, in order
        assert_eq!(seen, [1, 2, 3, 4, 5], "{kind}");

        // And backward from the end
        let mut seen = Vec::new();
        let mut next = Some("/api/v1/streams/Ship-a?direction=backward&limit=2".to_owned());
        while let Some(link) = next {
            let (_, page) = server.get(&link).await;
            seen.extend(versions(&page));
            next = page["links"]["next"].as_str().map(str::to_owned);
        }
        assert_eq!(seen, [5, 4, 3, 2, 1], "{kind}");

        // And a stream that does not exist is 404
        let (status, body) = server.get("/api/v1/streams/Ship-zz").await;
        assert_eq!(status, 404);
        assert_eq!(error_code(&body), "stream_not_found");
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_global_log_filters_by_type_and_category_pages_and_long_polls() {
    for kind in STORES {
        // Given events of two categories
        let server = TestServer::start(kind).await;
        server
            .append("Cart-1", json!("any"), &["Added", "Removed", "Added"])
            .await;
        server.append("Order-1", json!("any"), &["Placed"]).await;
        server.append("Cart-2", json!("any"), &["Added"]).await;

        // When the log is read by type
        let (_, page) = server.get("/api/v1/log?type=Added").await;
        // Then only that type comes, in position order
        let positions: Vec<u64> = page["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["position"].as_u64().unwrap())
            .collect();
        assert_eq!(positions, [1, 3, 5], "{kind}");

        // And by category
        let (_, page) = server.get("/api/v1/log?category=Order").await;
        assert_eq!(page["events"].as_array().unwrap().len(), 1);
        assert_eq!(page["events"][0]["stream"], "Order-1");

        // When the whole log is paged two at a time by next_from
        let mut all = Vec::new();
        let mut from = 1;
        loop {
            let (_, page) = server
                .get(&format!("/api/v1/log?from={from}&limit=2"))
                .await;
            let events = page["events"].as_array().unwrap();
            if events.is_empty() {
                break;
            }
            all.extend(events.iter().map(|e| e["position"].as_u64().unwrap()));
            from = page["next_from"].as_u64().unwrap();
        }
        // Then every position comes once
        assert_eq!(all, [1, 2, 3, 4, 5], "{kind}");

        // When a reader long-polls past the head and an event is appended
        let waiting = {
            let client = server.client.clone();
            let url = server.url("/api/v1/log?from=6&wait=10");
            tokio::spawn(async move {
                let started = std::time::Instant::now();
                let body: Value = serde_json::from_slice(
                    &client.get(url).send().await.unwrap().bytes().await.unwrap(),
                )
                .unwrap();
                (body, started.elapsed())
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        server.append("Order-2", json!("any"), &["Placed"]).await;
        let (body, took) = waiting.await.unwrap();
        // Then the poll answers with that event, well before its wait ends
        assert_eq!(body["events"][0]["position"], 6, "{kind}: {body}");
        assert!(took < Duration::from_secs(8), "{kind}: {took:?}");

        // And a poll with nothing new answers empty after its wait
        let (status, body) = server.get("/api/v1/log?from=7&wait=1").await;
        assert_eq!(status, 200);
        assert_eq!(body["events"], json!([]));
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_listed_by_category_and_prefix_with_counts_in_pages() {
    for kind in STORES {
        // Given three streams of one category and one of another
        let server = TestServer::start(kind).await;
        for stream in ["Acc-1", "Acc-2", "Acc-3"] {
            server.append(stream, json!("any"), &["Opened"]).await;
        }
        server
            .append("Bin-1", json!("any"), &["Made", "Used"])
            .await;

        // When the category is listed two per page
        let (_, first) = server.get("/api/v1/streams?category=Acc&limit=2").await;
        let (_, second) = server
            .get(first["links"]["next"].as_str().expect("a next link"))
            .await;

        // Then the pages hold all three once, with the total
        assert_eq!(first["total"], 3, "{kind}: {first}");
        let names: Vec<&str> = first["streams"]
            .as_array()
            .unwrap()
            .iter()
            .chain(second["streams"].as_array().unwrap())
            .map(|s| s["stream"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["Acc-1", "Acc-2", "Acc-3"]);
        assert_eq!(second["links"]["next"], Value::Null);

        // And a prefix finds the other with its count and last activity
        let (_, page) = server.get("/api/v1/streams?prefix=Bin-").await;
        assert_eq!(page["streams"][0]["events"], 2);
        assert_eq!(page["streams"][0]["last_position"], 5);
        assert!(page["streams"][0]["last_recorded_at"].is_string());
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_checks_the_expected_version_and_leaves_a_tombstone() {
    for kind in STORES {
        // Given a stream of two events
        let server = TestServer::start(kind).await;
        server.append("Doc-1", json!("any"), &["A", "B"]).await;

        // When it is deleted expecting the wrong version
        let (status, body) = server
            .send(
                server
                    .client
                    .delete(server.url("/api/v1/streams/Doc-1"))
                    .header("expected-version", "5"),
            )
            .await;
        // Then nothing is deleted
        assert_eq!(status, 409, "{kind}: {body}");
        assert_eq!(body["current_version"], 2);
        assert_eq!(server.get("/api/v1/streams/Doc-1").await.0, 200);

        // When it is deleted at its version
        let (status, body) = server
            .delete("/api/v1/streams/Doc-1?expected_version=2")
            .await;
        assert_eq!(status, 200, "{kind}: {body}");
        assert_eq!(body["tombstone_version"], 3);

        // Then it reads and appends as gone, and is listed only on request
        let (status, body) = server.get("/api/v1/streams/Doc-1").await;
        assert_eq!((status, error_code(&body)), (410, "stream_deleted"));
        let (status, _) = server.append("Doc-1", json!("any"), &["C"]).await;
        assert_eq!(status, 410);
        let (_, listed) = server.get("/api/v1/streams?prefix=Doc").await;
        assert_eq!(listed["total"], 0);
        let (_, listed) = server.get("/api/v1/streams?prefix=Doc&deleted=true").await;
        assert_eq!(listed["streams"][0]["deleted"], true);
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_run_by_name_and_state_reads_at_a_version_or_time() {
    for kind in STORES {
        let server = TestServer::start(kind).await;
        let open = "/api/v1/aggregates/BankAccount/acc-1/open";

        // When an account is opened and money deposited by name
        let (status, body) = server
            .post(open, &json!({"owner": "ann", "initial_balance": "10.00"}))
            .await;
        assert_eq!(status, 200, "{kind}: {body}");
        assert_eq!(body["version"], 1);
        let before = chrono::Utc::now();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (status, body) = server
            .post(
                "/api/v1/aggregates/bank-account/acc-1/deposit",
                &json!({"amount": "5.00"}),
            )
            .await;
        assert_eq!(status, 200, "{kind}: {body}");
        assert_eq!(body["events"], json!(["MoneyDeposited"]));

        // Then its state reads now, at version 1 and as of a time
        let (_, now) = server.get("/api/v1/aggregates/BankAccount/acc-1").await;
        assert_eq!(now["version"], 2);
        let (_, then) = server
            .get("/api/v1/aggregates/BankAccount/acc-1?version=1")
            .await;
        assert_eq!(then["version"], 1);
        assert_ne!(then["state"], now["state"]);
        let at = before.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let (_, as_of) = server
            .get(&format!("/api/v1/aggregates/BankAccount/acc-1?at={at}"))
            .await;
        assert_eq!(as_of["state"], then["state"], "{kind}");

        // When the aggregate refuses (opening twice): 422 with its reason
        let (status, body) = server.post(open, &json!({"owner": "bob"})).await;
        assert_eq!((status, error_code(&body)), (422, "command_refused"));
        assert!(body["message"].as_str().unwrap().contains("already exists"));

        // A mistyped field: 400 naming it
        let (status, body) = server
            .post(
                "/api/v1/aggregates/BankAccount/acc-1/deposit",
                &json!({"amount": 5}),
            )
            .await;
        assert_eq!((status, error_code(&body)), (400, "invalid_arguments"));
        assert_eq!(body["field"], "amount", "{body}");

        // Unknown aggregate or command: 404; a missing aggregate: 404
        let (status, body) = server
            .post("/api/v1/aggregates/Spaceship/x/launch", &json!({}))
            .await;
        assert_eq!((status, error_code(&body)), (404, "unknown_aggregate"));
        let (status, body) = server
            .post("/api/v1/aggregates/BankAccount/acc-1/fly", &json!({}))
            .await;
        assert_eq!((status, error_code(&body)), (404, "unknown_command"));
        let (status, body) = server.get("/api/v1/aggregates/BankAccount/nobody").await;
        assert_eq!((status, error_code(&body)), (404, "aggregate_not_found"));

        // And the registry lists the aggregates with their commands
        let (_, list) = server.get("/api/v1/aggregates").await;
        assert!(list["aggregates"].as_array().unwrap().iter().any(|a| {
            a["name"] == "BankAccount"
                && a["commands"]
                    .as_array()
                    .unwrap()
                    .contains(&json!("deposit"))
        }));
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projections_are_listed_shown_rebuilt_verified_and_retried() {
    for kind in STORES {
        // Given an account opened through the API
        let server = TestServer::start(kind).await;
        server
            .post(
                "/api/v1/aggregates/BankAccount/acc-9/open",
                &json!({"owner": "cy", "initial_balance": "3.00"}),
            )
            .await;

        // When the projections are listed
        let (status, list) = server.get("/api/v1/projections").await;
        assert_eq!(status, 200, "{kind}: {list}");
        let summary = list["projections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "account-summary")
            .expect("account-summary listed")
            .clone();
        // Then the new one lags by the whole log
        assert_eq!(summary["lag"], 1, "{summary}");
        assert_eq!(summary["parked"], 0);

        // When it is shown it catches up and holds the account
        let (status, shown) = server.get("/api/v1/projections/account-summary").await;
        assert_eq!(status, 200, "{shown}");
        assert_eq!(shown["status"]["lag"], 0);
        assert!(shown["model"].to_string().contains("acc-9"), "{shown}");

        // And rebuild, verify and retry answer what they did
        let (status, rebuilt) = server
            .post_raw("/api/v1/projections/account-summary/rebuild", "")
            .await;
        assert_eq!(status, 200, "{rebuilt}");
        assert_eq!(rebuilt["checkpoint"], 1);
        let (_, verified) = server
            .post_raw("/api/v1/projections/account-summary/verify", "")
            .await;
        assert_eq!(verified["matches"], true, "{verified}");
        let (_, retried) = server
            .post_raw("/api/v1/projections/account-summary/retry", "")
            .await;
        assert_eq!(retried["still_parked"], 0);

        // And the metrics show its lag
        let text = server
            .client
            .get(server.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            text.contains("logbook_projection_lag{projection=\"account-summary\"} 0\n"),
            "{text}"
        );

        // And an unknown projection is 404
        let (status, body) = server.get("/api/v1/projections/nope").await;
        assert_eq!((status, error_code(&body)), (404, "unknown_projection"));
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_mistake_gets_the_one_error_shape_and_changes_nothing() {
    for kind in STORES {
        let server = TestServer::with_options(kind, |o| {
            o.max_body_bytes = 4 * 1024;
            o.max_batch = 3;
        })
        .await;
        let stream = "/api/v1/streams/Err-1";
        let cases: Vec<(&str, u16, &str, reqwest::RequestBuilder)> = vec![
            (
                "malformed JSON",
                400,
                "malformed_json",
                server.client.post(server.url(stream)).body("{\"events\": [")
            ),
            (
                "wrong type",
                400,
                "invalid_body",
                server.client.post(server.url(stream)).body(r#"{"events": "many"}"#),
            ),
            (
                "unknown field",
                400,
                "invalid_body",
                server.client.post(server.url(stream)).body(r#"{"events": [], "expected": 1}"#),
            ),
            (
                "no events",
                400,
                "invalid_body",
                server.client.post(server.url(stream)).body(r#"{"events": []}"#),
            ),
            (
                "bad expected version",
                400,
                "invalid_expected_version",
                server.client.post(server.url(stream)).body(
                    r#"{"expected_version": "soon", "events": [{"type": "A", "payload": 1}]}"#,
                ),
            ),
            (
                "reserved type",
                400,
                "invalid_event",
                server.client.post(server.url(stream)).body(
                    r#"{"events": [{"type": "$Mine", "payload": {}}]}"#,
                ),
            ),
            (
                "non-string metadata",
                400,
                "invalid_body",
                server.client.post(server.url(stream)).body(
                    r#"{"events": [{"type": "A", "payload": {}, "metadata": {"n": 1}}]}"#,
                ),
            ),
            (
                "oversize body",
                413,
                "payload_too_large",
                server.client.post(server.url(stream)).body(format!(
                    r#"{{"events": [{{"type": "A", "payload": "{}"}}]}}"#,
                    "x".repeat(8 * 1024)
                )),
            ),
            (
                "oversize batch",
                413,
                "batch_too_large",
                server.client.post(server.url(stream)).body(
                    json!({"events": (0..4).map(|_| json!({"type": "A", "payload": {}})).collect::<Vec<_>>()}).to_string(),
                ),
            ),
            (
                "bad query value",
                400,
                "invalid_query",
                server.client.get(server.url("/api/v1/log?limit=many")),
            ),
            (
                "unknown query field",
                400,
                "invalid_query",
                server.client.get(server.url("/api/v1/log?form=1")),
            ),
            (
                "unknown route",
                404,
                "not_found",
                server.client.get(server.url("/api/v1/nothing/here")),
            ),
            (
                "wrong method",
                405,
                "method_not_allowed",
                server.client.put(server.url(stream)),
            ),
            (
                "invalid stream id",
                400,
                "invalid_stream_id",
                server.client.get(server.url("/api/v1/streams/a%01b")),
            ),
        ];
        for (what, want_status, want_code, request) in cases {
            // When the server is sent the mistake
            let (status, body) = server.send(request).await;
            // Then it answers with the status and code, as JSON
            assert_eq!(status, want_status, "{kind}, {what}: {body}");
            assert_eq!(error_code(&body), want_code, "{kind}, {what}: {body}");
            if what == "wrong type" {
                // naming the field at fault
                assert_eq!(body["field"], "events", "{body}");
            }
        }
        // And nothing was written
        let (_, info) = server.get("/api/v1/info").await;
        assert_eq!(info["head"], Value::Null, "{kind}: {info}");
        server.stop().await;
    }
}
