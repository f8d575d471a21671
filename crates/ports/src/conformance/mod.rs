//! The conformance suite: the behaviours every adapter must show, written
//! once and run by each adapter from its own tests.
//!
//! An adapter implements [`Fixture`] for a fresh storage location and calls
//! [`run_all`]:
//!
//! ```no_run
//! use async_trait::async_trait;
//! use logbook_ports::Stores;
//! use logbook_ports::conformance::{self, Fixture};
//!
//! /// One fresh location; `open` opens (or reopens) the stores there.
//! struct MyFixture(Stores);
//!
//! #[async_trait]
//! impl Fixture for MyFixture {
//!     async fn open(&self) -> Stores {
//!         self.0.clone()
//!     }
//! }
//!
//! // In the adapter's tests/conformance.rs, under
//! // #[tokio::test(flavor = "multi_thread", worker_threads = 2)], with a
//! // function making fresh stores at a new location:
//! async fn passes_the_conformance_suite(fresh: fn() -> Stores) {
//!     conformance::run_all(|| MyFixture(fresh())).await;
//! }
//! ```
//!
//! Each behaviour runs on its own fresh fixture; failures are collected and
//! reported together, each under its behaviour's name.

mod checkpoints;
mod concurrency;
mod deletion;
mod events;
mod paging;
mod projections;
mod retention;
mod snapshots;
mod subject_keys;
mod support;
mod visits;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;

use crate::Stores;

pub use support::{event, event_with_id, payload};

/// One fresh storage location for one behaviour.
#[async_trait]
pub trait Fixture: Send + Sync + 'static {
    /// Opens the stores at this fixture's location. The suite may drop every
    /// handle it got and call `open` again: what was written must still be
    /// there (for an in-memory store, the fixture keeps the same instance).
    async fn open(&self) -> Stores;

    /// True when `open` may be called again while stores it gave out are
    /// still in use, each answer a separate connection to the same location
    /// (another SQLite connection, another pool): the races then run across
    /// those. False (the default) for a store that only one open may write
    /// at a time, such as the locked file store; its races share one open.
    fn opens_side_by_side(&self) -> bool {
        false
    }
}

type Behaviour = fn(Arc<dyn Fixture>) -> Pin<Box<dyn Future<Output = ()> + Send>>;

macro_rules! behaviours {
    ($($module:ident :: $name:ident),* $(,)?) => {
        /// Every behaviour of the suite, by name.
        const BEHAVIOURS: &[(&str, Behaviour)] = &[
            $((stringify!($name), |fixture| Box::pin($module::$name(fixture)))),*
        ];
    };
}

behaviours![
    events::append_with_no_stream_creates_the_stream_at_version_1,
    events::no_stream_on_an_existing_stream_conflicts_and_writes_nothing,
    events::stream_exists_on_a_missing_stream_conflicts,
    events::stream_exists_on_an_existing_stream_appends,
    events::exact_version_appends_when_it_matches,
    events::exact_stale_version_conflicts_naming_stream_and_versions,
    events::exact_future_version_conflicts,
    events::exact_zero_means_no_stream,
    events::any_appends_whatever_the_version,
    events::versions_continue_contiguously_across_batches,
    events::global_positions_are_gap_free_across_streams,
    events::a_conflicting_batch_writes_none_of_its_events,
    events::a_batch_repeating_an_id_is_rejected_whole,
    events::a_batch_reusing_another_streams_id_is_rejected_whole,
    events::reusing_a_recorded_id_in_the_same_stream_is_a_duplicate_not_a_conflict,
    events::an_overlong_event_type_is_rejected,
    events::an_empty_event_type_is_rejected,
    events::an_empty_batch_checks_the_version_and_writes_nothing,
    events::retrying_a_recorded_batch_with_exact_writes_nothing_twice,
    events::retrying_a_recorded_batch_with_any_or_no_stream_writes_nothing_twice,
    events::a_different_batch_at_a_taken_place_conflicts,
    events::a_batch_that_only_starts_like_a_recorded_one_conflicts,
    events::retries_are_recognised_after_reopening,
    events::everything_recorded_reads_back_exactly,
    events::recorded_at_is_stamped_or_kept,
    events::events_survive_reopening,
    events::reading_a_missing_stream_is_empty_and_versionless,
    events::read_stream_forward_pages_from_a_version,
    events::read_stream_backward_from_the_end_and_from_a_version,
    events::read_stream_never_returns_other_streams_events,
    events::read_all_pages_in_position_order,
    events::read_all_filters_by_event_type,
    events::read_all_filters_by_stream_prefix,
    events::read_all_past_the_head_is_empty,
    events::a_zero_limit_reads_nothing,
    events::head_position_follows_appends,
    events::commits_are_signalled_with_the_new_head,
    events::a_signal_taken_after_commits_starts_at_the_head,
    events::large_and_unicode_payloads_round_trip,
    paging::a_page_is_short_only_at_the_end,
    paging::the_page_helpers_read_everything_once_in_order,
    visits::visiting_a_stream_lends_what_reading_it_returns,
    visits::visiting_a_deleted_stream_is_refused_lending_nothing,
    visits::visiting_leaves_out_what_retention_hides,
    visits::the_page_helper_visits_a_stream_once_in_order,
    deletion::deleting_a_stream_records_a_tombstone_in_the_global_log,
    deletion::a_deleted_stream_can_be_neither_read_nor_appended_to,
    deletion::deleting_checks_the_expected_version,
    deletion::deleting_a_missing_stream_with_any_reserves_the_name,
    deletion::reserved_event_types_are_refused,
    deletion::a_deletion_survives_reopening,
    retention::max_count_hides_all_but_the_latest_events,
    retention::truncate_before_hides_earlier_versions,
    retention::max_age_hides_old_events_and_an_expired_stream_still_exists,
    retention::limits_combine_and_the_strictest_wins,
    retention::a_policy_survives_reopening_and_never_reveals_what_it_hid,
    retention::invalid_policies_are_refused_and_deleted_streams_take_none,
    retention::scavenge_reclaims_hidden_events_and_changes_no_read,
    retention::pages_are_filled_across_hidden_events,
    retention::a_reader_past_a_reclaimed_range_goes_on_at_the_next_surviving_event,
    concurrency::concurrent_appenders_on_one_stream_win_each_version_once,
    concurrency::concurrent_appenders_on_many_streams_leave_no_gap,
    concurrency::concurrent_retries_of_one_batch_write_it_once,
    snapshots::a_missing_snapshot_is_none,
    snapshots::a_snapshot_round_trips,
    snapshots::a_newer_snapshot_replaces_an_older_one_never_the_reverse,
    snapshots::a_snapshot_at_the_same_version_replaces_the_stored_one,
    snapshots::snapshots_are_per_stream_and_deletable,
    snapshots::snapshots_survive_reopening,
    projections::a_missing_projection_document_is_none,
    projections::a_projection_document_round_trips_whole,
    projections::each_save_moves_the_generation_on_and_a_stale_one_is_refused,
    projections::two_savers_racing_on_one_generation_exactly_one_wins,
    projections::an_advancing_save_never_moves_the_checkpoint_back,
    projections::a_replacing_save_may_move_the_checkpoint_back_but_checks_the_generation,
    projections::projection_documents_are_per_name,
    projections::projection_documents_survive_reopening,
    checkpoints::a_missing_checkpoint_is_none,
    checkpoints::checkpoints_are_saved_overwritten_and_reset,
    checkpoints::checkpoints_are_per_projection,
    checkpoints::checkpoints_survive_reopening,
    subject_keys::an_unknown_subject_has_no_key,
    subject_keys::get_or_create_stores_the_candidate_and_returns_it,
    subject_keys::a_second_get_or_create_returns_the_first_key,
    subject_keys::a_shred_leaves_a_tombstone_that_get_returns,
    subject_keys::get_or_create_after_a_shred_returns_the_tombstone,
    subject_keys::shredding_again_returns_the_first_tombstone,
    subject_keys::shredding_an_unknown_subject_records_a_tombstone,
    subject_keys::list_pages_in_subject_order_short_only_at_the_end,
    subject_keys::rewrap_is_a_compare_and_set,
    subject_keys::keys_and_tombstones_survive_reopening,
    subject_keys::concurrent_creators_of_one_subject_all_get_one_key,
];

/// The names of every behaviour, in the order [`run_all`] runs them.
pub fn behaviour_names() -> Vec<&'static str> {
    BEHAVIOURS.iter().map(|(name, _)| *name).collect()
}

/// Runs every behaviour, each on a fresh fixture from `make`, and panics at
/// the end listing each behaviour that failed and why.
///
/// Run it on a multi-threaded runtime: the concurrency behaviours need real
/// parallelism to mean anything.
pub async fn run_all<F, M>(make: M)
where
    F: Fixture,
    M: Fn() -> F,
{
    let mut failures = Vec::new();
    for (name, behaviour) in BEHAVIOURS {
        let fixture: Arc<dyn Fixture> = Arc::new(make());
        // Each behaviour in its own task, so a panic fails that one alone.
        match tokio::spawn(behaviour(fixture)).await {
            Ok(()) => println!("conformance: {name} ... ok"),
            Err(error) => {
                let reason = match error.try_into_panic() {
                    Ok(panic) => panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                        .unwrap_or_else(|| "panicked".to_owned()),
                    Err(error) => error.to_string(),
                };
                println!("conformance: {name} ... FAILED");
                failures.push(format!("{name}: {reason}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} conformance behaviours failed:\n  {}",
        failures.len(),
        BEHAVIOURS.len(),
        failures.join("\n  ")
    );
}
