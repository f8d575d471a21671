//! Crypto-shredding end to end: personal fields are stored sealed, and once a
//! subject is shredded no plaintext of theirs is left in the store's files,
//! while everyone else's data and the log's guarantees are intact.

use std::num::NonZeroU64;
use std::path::Path;
use std::sync::Arc;

use logbook::personal::{Keyring, MasterKey, PersonalDataError, shred};
use logbook::projection::{Projector, UserDirectory};
use logbook::verify::verify_store;
use logbook::{Repository, RepositoryError, RepositoryOptions, StoreUrl};
use logbook_domain::user_wallet::{UserWallet, UserWalletCommand};
use logbook_domain::{SHREDDED_PLACEHOLDER, SubjectId};
use logbook_ports::{Stores, SubjectKeyStore};

const ALICE: &str = "Alice Liddell-7f3a9";
const BOB: &str = "Bob Marley-9c1d2";

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    found.push(path.display().to_string());
                }
            }
        }
    }
    found
}

fn wallets(stores: &Stores, keyring: &Keyring) -> Repository<UserWallet> {
    let options = RepositoryOptions {
        snapshot_every: NonZeroU64::new(2),
        ..RepositoryOptions::default()
    };
    Repository::with_options(stores, options).with_keyring(keyring.clone())
}

fn create(username: &str) -> UserWalletCommand {
    UserWalletCommand::Create {
        username: username.into(),
        balance: "100.00".parse().unwrap(),
    }
}

fn change(amount: &str) -> UserWalletCommand {
    UserWalletCommand::ChangeBalance {
        balance_change: amount.parse().unwrap(),
    }
}

async fn shredding_leaves_no_plaintext_of_the_subject(url: StoreUrl, dir: &Path) {
    let master = MasterKey::generate();
    let alice = SubjectId::new("user-1").unwrap();
    {
        // Given two wallets for two subjects, with events, snapshots and a
        // read model holding their names, keys in the store itself
        let stores = url.open().unwrap();
        let keys = Arc::clone(&stores.subject_keys);
        let keyring = Keyring::new(Arc::clone(&keys), Some(master.clone()));
        let repository = wallets(&stores, &keyring);
        for (id, name) in [("1", ALICE), ("2", BOB)] {
            repository.execute(id, &create(name)).await.unwrap();
            repository.execute(id, &change("10.00")).await.unwrap();
            let done = repository.execute(id, &change("-5.00")).await.unwrap();
            assert!(done.snapshot_taken || done.version == 3);
        }
        let snapshot = stores
            .snapshots
            .load(&Repository::<UserWallet>::stream_id("1").unwrap())
            .await
            .unwrap();
        let snapshot = snapshot.expect("a snapshot was taken");
        assert!(snapshot.state.as_str().starts_with(r#"{"$encrypted":"#));
        assert!(!snapshot.state.as_str().contains(ALICE));
        let directory = Projector::<UserDirectory>::new(&stores).with_keyring(keyring.clone());
        directory.catch_up().await.unwrap();
        let model = directory.state().await.unwrap().model;
        assert_eq!(model.users["1"].username, ALICE);
        assert_eq!(model.users["2"].username, BOB);
        // And the events hold no name in plain text, only the rest
        let events = repository.history("1").await.unwrap();
        assert!(!events[0].payload.as_str().contains(ALICE));
        assert!(events[0].payload.as_str().contains("\"$encrypted\""));
        assert!(
            events[0]
                .payload
                .as_str()
                .contains("\"balance\":\"100.00\"")
        );

        // (the search finds her name while the read model holds it)
        assert!(!files_containing(dir, ALICE).is_empty());

        // When alice is shredded and the read model catches up
        let shredded = shred(&*stores.events, &*keys, &alice).await.unwrap();
        assert!(!shredded.already && shredded.position == Some(7));
        directory.catch_up().await.unwrap();
        assert_eq!(directory.verify().await.unwrap(), Vec::<String>::new());
        let model = directory.state().await.unwrap().model;
        assert_eq!(model.users["1"].username, SHREDDED_PLACEHOLDER);
        assert_eq!(model.users["2"].username, BOB);
        // And a second shred records nothing new
        assert!(
            shred(&*stores.events, &*keys, &alice)
                .await
                .unwrap()
                .already
        );
    }
    // Then no file of the store holds alice's name, and bob's data is there
    assert_eq!(files_containing(dir, ALICE), Vec::<String>::new());
    assert!(
        !files_containing(dir, BOB).is_empty(),
        "bob is in the read model"
    );

    // And after reopening, alice's wallet loads with the placeholder and her
    // balance, bob's intact, the log verifies with every position once
    let stores = url.open().unwrap();
    let keyring = Keyring::new(Arc::clone(&stores.subject_keys), Some(master));
    let repository = wallets(&stores, &keyring);
    let loaded = repository.load("1").await.unwrap();
    assert_eq!(
        (loaded.state.username.as_str(), loaded.version),
        (SHREDDED_PLACEHOLDER, 3)
    );
    assert_eq!(loaded.state.balance.to_string(), "105.00");
    let loaded = repository.load("2").await.unwrap();
    assert_eq!((loaded.state.username.as_str(), loaded.version), (BOB, 3));
    // And both wallets, and new ones, go on working
    repository.execute("1", &change("1.00")).await.unwrap();
    repository.execute("3", &create("Carol")).await.unwrap();
    let stores_head = stores.events.head_position().await.unwrap();
    assert_eq!(stores_head, Some(9));
    drop(stores);
    let verification = verify_store(&url, &mut |_| {}).await.unwrap();
    assert!(verification.is_ok(), "{verification:?}");
    assert_eq!(verification.walk.unwrap().events, 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shredded_subject_leaves_no_plaintext_in_a_sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let url = StoreUrl::Sqlite(dir.path().join("logbook.db"));
    shredding_leaves_no_plaintext_of_the_subject(url, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shredded_subject_leaves_no_plaintext_in_a_file_store() {
    let dir = tempfile::tempdir().unwrap();
    let url = StoreUrl::File(dir.path().join("log"));
    shredding_leaves_no_plaintext_of_the_subject(url, dir.path()).await;
}

#[tokio::test]
async fn new_personal_data_of_a_shredded_subject_is_refused_and_nothing_is_appended() {
    let stores = logbook_adapters_memory::stores();
    let keys: Arc<dyn SubjectKeyStore> = Arc::clone(&stores.subject_keys);
    let keyring = Keyring::new(Arc::clone(&keys), Some(MasterKey::generate()));
    shred(&*stores.events, &*keys, &SubjectId::new("user-9").unwrap())
        .await
        .unwrap();
    let err = wallets(&stores, &keyring)
        .execute("9", &create(ALICE))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            RepositoryError::Personal(PersonalDataError::Shredded { .. })
        ),
        "{err}"
    );
    assert_eq!(stores.events.head_position().await.unwrap(), Some(1));
}

#[tokio::test]
async fn a_missing_or_wrong_master_key_is_a_one_line_error_naming_what_is_missing() {
    // Given a wallet written with one master key
    let stores = logbook_adapters_memory::stores();
    let keys: Arc<dyn SubjectKeyStore> = Arc::clone(&stores.subject_keys);
    let written = Keyring::new(Arc::clone(&keys), Some(MasterKey::generate()));
    wallets(&stores, &written)
        .execute("1", &create(ALICE))
        .await
        .unwrap();
    // When it is loaded without a master key, or with another one
    let without = Keyring::new(Arc::clone(&keys), None);
    let err = wallets(&stores, &without)
        .load("1")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no master key is configured") && err.contains("LOGBOOK_MASTER_KEY"),
        "{err}"
    );
    assert!(!err.contains('\n'));
    let other = Keyring::new(Arc::clone(&keys), Some(MasterKey::generate()));
    let err = wallets(&stores, &other)
        .load("1")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("does not open the key of subject user-1"),
        "{err}"
    );
    // And writing personal data without a master key is refused, not stored plain
    let err = wallets(&stores, &without)
        .execute("2", &create(BOB))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no master key is configured"), "{err}");
    assert_eq!(stores.events.head_position().await.unwrap(), Some(1));
}

#[tokio::test]
async fn rotating_the_master_key_rewraps_every_key_and_the_old_key_no_longer_opens_them() {
    let stores = logbook_adapters_memory::stores();
    let keys: Arc<dyn SubjectKeyStore> = Arc::clone(&stores.subject_keys);
    let old = MasterKey::generate();
    let keyring = Keyring::new(Arc::clone(&keys), Some(old.clone()));
    for (id, name) in [("1", ALICE), ("2", BOB)] {
        wallets(&stores, &keyring)
            .execute(id, &create(name))
            .await
            .unwrap();
    }
    shred(&*stores.events, &*keys, &SubjectId::new("user-2").unwrap())
        .await
        .unwrap();
    // When rotated to a new master key (twice: a second run changes nothing)
    let new = MasterKey::generate();
    let rotation = keyring.rotate_master_key(&new).await.unwrap();
    assert_eq!((rotation.rewrapped, rotation.shredded), (1, 1));
    let again = Keyring::new(Arc::clone(&keys), Some(new.clone()));
    assert_eq!(again.rotate_master_key(&new).await.unwrap().already_new, 1);
    // Then the new key reads alice, the old one no longer does
    let loaded = wallets(&stores, &again).load("1").await.unwrap();
    assert_eq!(loaded.state.username, ALICE);
    assert!(wallets(&stores, &keyring).load("1").await.is_err());
}

#[tokio::test]
async fn an_event_with_encrypted_fields_checks_as_its_aggregates_without_a_key() {
    // Given a wallet whose username is stored encrypted (as an export carries it)
    let stores = logbook_adapters_memory::stores();
    let keys: Arc<dyn SubjectKeyStore> = Arc::clone(&stores.subject_keys);
    let keyring = Keyring::new(Arc::clone(&keys), Some(MasterKey::generate()));
    let repository = wallets(&stores, &keyring);
    repository.execute("1", &create(ALICE)).await.unwrap();
    let stored = repository.history("1").await.unwrap().remove(0);
    // When the registry checks it (as import does), then it reads
    let registry = logbook::registry::AggregateRegistry::with_seed_domains();
    assert_eq!(registry.check_event(&stored), Some(Ok(())));
    // And an encrypted value of the wrong shape is reported
    let mut broken = stored.clone();
    broken.payload = logbook_domain::Payload::from_json(
        br#"{"username":{"$encrypted":{"v":9}},"balance":"1.00"}"#.to_vec(),
    )
    .unwrap();
    let err = registry.check_event(&broken).unwrap().unwrap_err();
    assert!(err.to_string().contains("unknown version 9"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_opens_of_one_store_creating_one_new_subjects_key_at_once_end_with_one_key() {
    // Given one SQLite store opened twice (as two processes would)
    let dir = tempfile::tempdir().unwrap();
    let url = StoreUrl::Sqlite(dir.path().join("logbook.db"));
    let master = MasterKey::generate();
    let (one, two) = (url.open().unwrap(), url.open().unwrap());
    let subject = SubjectId::new("user-race").unwrap();
    let (a, b) = (
        Keyring::new(Arc::clone(&one.subject_keys), Some(master.clone())),
        Keyring::new(Arc::clone(&two.subject_keys), Some(master)),
    );
    // When both ask for the new subject's key at once
    let (ka, kb) = tokio::join!(a.key_for_writing(&subject), b.key_for_writing(&subject));
    let (ka, kb) = (ka.unwrap().unwrap(), kb.unwrap().unwrap());
    // Then both hold the same key: what one seals, the other opens
    let sealed = ka.seal(b"alice", b"binding");
    assert_eq!(kb.open(&sealed, b"binding").as_deref(), Some(&b"alice"[..]));
    assert_eq!(one.subject_keys.list(None, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_stream_with_sealed_fields_among_plain_events_loads_alike_whatever_its_pages() {
    use logbook::codec;
    use logbook_domain::Metadata;
    use logbook_domain::user_wallet::UserWalletEvent;
    use logbook_ports::ExpectedVersion;

    // Given a wallet stream whose sealed creation sits between plain
    // balance changes (appended as they are, so that a page holds both)
    let stores = logbook_adapters_memory::stores();
    let keys: Arc<dyn SubjectKeyStore> = Arc::clone(&stores.subject_keys);
    let keyring = Keyring::new(Arc::clone(&keys), Some(MasterKey::generate()));
    let stream = Repository::<UserWallet>::stream_id("7").unwrap();
    let change = |amount: &str| UserWalletEvent::UserBalanceChanged {
        balance_change: amount.parse().unwrap(),
    };
    let events = [
        change("1.00"),
        change("2.00"),
        UserWalletEvent::UserCreated {
            username: ALICE.into(),
            balance: "100.00".parse().unwrap(),
        },
        change("-3.00"),
        change("4.00"),
    ];
    for event in &events {
        let envelope = codec::encode(event, &Metadata::default()).unwrap();
        let sealed = keyring.seal_event(&stream, event, envelope).await.unwrap();
        stores
            .events
            .append(&stream, ExpectedVersion::Any, vec![sealed])
            .await
            .unwrap();
    }
    let mut expected = UserWallet::default();
    use logbook_domain::Aggregate;
    expected.apply_all(&events);
    let mut through_3 = UserWallet::default();
    through_3.apply_all(&events[..3]);
    for page_size in [1, 2, 3, 4, 1_000] {
        // When it is loaded with pages of that size, cold
        let options = RepositoryOptions {
            page_size,
            cache_capacity: 0,
            snapshot_every: None,
            ..RepositoryOptions::default()
        };
        let wallets =
            Repository::<UserWallet>::with_options(&stores, options).with_keyring(keyring.clone());
        let loaded = wallets.load("7").await.unwrap();
        // Then every event is folded once in order, the sealed one opened
        assert_eq!(
            (loaded.state, loaded.version),
            (expected.clone(), 5),
            "page {page_size}"
        );
        // And time travel stops at the same event
        let then = wallets.load_at_version("7", 3).await.unwrap();
        assert_eq!(
            (then.state, then.version),
            (through_3.clone(), 3),
            "page {page_size}"
        );
    }
    // And without a master key the sealed event refuses to load, whatever
    // comes before it in its page
    let without = Keyring::new(Arc::clone(&keys), None);
    let err = Repository::<UserWallet>::with_options(
        &stores,
        RepositoryOptions {
            cache_capacity: 0,
            snapshot_every: None,
            ..RepositoryOptions::default()
        },
    )
    .with_keyring(without)
    .load("7")
    .await
    .unwrap_err();
    assert!(err.to_string().contains("no master key"), "{err}");
}
