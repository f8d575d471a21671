//! Read models by name, so front ends (the command line's `projection`
//! commands, the HTTP server) can list, show, rebuild and verify any
//! registered read model, a team's own as well as the seeds'.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use logbook_ports::Stores;

use super::ReadModel;
use super::read_models::{AccountBalances, AccountSummaries, ShipsByPort, UserDirectory};
use super::runner::{
    CatchUp, ParkedEvent, Progress, ProjectionError, Projector, ProjectorOptions, Status,
};

/// A read model as front ends reach it by name. Every call builds a
/// [`Projector`] over `stores` with `options`.
#[async_trait]
pub trait RegisteredProjection: Send + Sync {
    /// The projection's name.
    fn name(&self) -> &'static str;

    /// Checkpoint, head, lag and parked count.
    ///
    /// # Errors
    /// As [`Projector::status`].
    async fn status(
        &self,
        stores: &Stores,
        options: ProjectorOptions,
    ) -> Result<Status, ProjectionError>;

    /// Catches up (reporting progress after each batch), then returns what
    /// the catch-up did and the model as JSON.
    ///
    /// # Errors
    /// As [`Projector::catch_up`].
    async fn show(
        &self,
        stores: &Stores,
        options: ProjectorOptions,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<(CatchUp, serde_json::Value), ProjectionError>;

    /// Rebuilds beside the live model, reporting progress after each batch.
    ///
    /// # Errors
    /// As [`Projector::rebuild`].
    async fn rebuild(
        &self,
        stores: &Stores,
        options: ProjectorOptions,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<CatchUp, ProjectionError>;

    /// The differences between the live model and a fresh fold.
    ///
    /// # Errors
    /// As [`Projector::verify`].
    async fn verify(
        &self,
        stores: &Stores,
        options: ProjectorOptions,
    ) -> Result<Vec<String>, ProjectionError>;

    /// The events set aside.
    ///
    /// # Errors
    /// As [`Projector::state`].
    async fn parked(
        &self,
        stores: &Stores,
        options: ProjectorOptions,
    ) -> Result<Vec<ParkedEvent>, ProjectionError>;

    /// Applies the parked events again: (applied, still parked).
    ///
    /// # Errors
    /// As [`Projector::retry_parked`].
    async fn retry_parked(
        &self,
        stores: &Stores,
        options: ProjectorOptions,
    ) -> Result<(usize, usize), ProjectionError>;
}

/// The registration of read model `R`.
pub struct ProjectionRegistration<R>(std::marker::PhantomData<fn() -> R>);

impl<R> Default for ProjectionRegistration<R> {
    fn default() -> Self {
        Self(std::marker::PhantomData)
    }
}

#[async_trait]
impl<R: ReadModel> RegisteredProjection for ProjectionRegistration<R> {
    fn name(&self) -> &'static str {
        R::NAME
    }

    async fn status(
        &self,
        stores: &Stores,
        options: ProjectorOptions,
    ) -> Result<Status, ProjectionError> {
        Projector::<R>::with_options(stores, options).status().await
    }

    async fn show(
        &self,
        stores: &Stores,
        options: ProjectorOptions,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<(CatchUp, serde_json::Value), ProjectionError> {
        let projector = Projector::<R>::with_options(stores, options);
        let done = projector.catch_up_reporting(progress).await?;
        let state = projector.state().await?;
        let model = serde_json::to_value(&state.model).unwrap_or_default();
        Ok((done, model))
    }

    async fn rebuild(
        &self,
        stores: &Stores,
        options: ProjectorOptions,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<CatchUp, ProjectionError> {
        Projector::<R>::with_options(stores, options)
            .rebuild(progress)
            .await
    }

    async fn verify(
        &self,
        stores: &Stores,
        options: ProjectorOptions,
    ) -> Result<Vec<String>, ProjectionError> {
        Projector::<R>::with_options(stores, options).verify().await
    }

    async fn parked(
        &self,
        stores: &Stores,
        options: ProjectorOptions,
    ) -> Result<Vec<ParkedEvent>, ProjectionError> {
        let state = Projector::<R>::with_options(stores, options)
            .state()
            .await?;
        Ok(state.parked)
    }

    async fn retry_parked(
        &self,
        stores: &Stores,
        options: ProjectorOptions,
    ) -> Result<(usize, usize), ProjectionError> {
        Projector::<R>::with_options(stores, options)
            .retry_parked()
            .await
    }
}

/// Why a projection name could not be used.
#[derive(Debug, thiserror::Error)]
#[error("unknown projection {name:?}; known: {}", known.join(", "))]
pub struct UnknownProjection {
    /// The name given.
    pub name: String,
    /// The registered names.
    pub known: Vec<&'static str>,
}

/// Read models by name, in the order registered.
#[derive(Clone, Default)]
pub struct ProjectionRegistry {
    projections: BTreeMap<usize, Arc<dyn RegisteredProjection>>,
}

impl std::fmt::Debug for ProjectionRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl ProjectionRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The seeds' read models: `account-summary`, `account-balances`,
    /// `ships-by-port`, `user-directory`.
    pub fn with_seed_read_models() -> Self {
        Self::new()
            .with::<AccountSummaries>()
            .with::<AccountBalances>()
            .with::<ShipsByPort>()
            .with::<UserDirectory>()
    }

    /// Adds read model `R` (a later registration of the same name replaces
    /// an earlier one).
    #[must_use]
    pub fn with<R: ReadModel>(self) -> Self {
        self.register(ProjectionRegistration::<R>::default())
    }

    /// Adds a registration of one's own.
    #[must_use]
    pub fn register(self, projection: impl RegisteredProjection + 'static) -> Self {
        self.insert(Arc::new(projection))
    }

    /// Adds every registration of `other`, after this registry's own.
    #[must_use]
    pub fn merge(self, other: &Self) -> Self {
        other.iter().cloned().fold(self, Self::insert)
    }

    fn insert(mut self, projection: Arc<dyn RegisteredProjection>) -> Self {
        let name = projection.name();
        let slot = self
            .projections
            .iter()
            .find(|(_, p)| p.name() == name)
            .map_or(self.projections.len(), |(slot, _)| *slot);
        self.projections.insert(slot, projection);
        self
    }

    /// The registered names, in registration order.
    pub fn names(&self) -> Vec<&'static str> {
        self.projections.values().map(|p| p.name()).collect()
    }

    /// Every registration, in registration order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn RegisteredProjection>> {
        self.projections.values()
    }

    /// The projection named `name`.
    ///
    /// # Errors
    /// [`UnknownProjection`] listing the known names.
    pub fn get(&self, name: &str) -> Result<&Arc<dyn RegisteredProjection>, UnknownProjection> {
        self.projections
            .values()
            .find(|p| p.name() == name)
            .ok_or_else(|| UnknownProjection {
                name: name.to_owned(),
                known: self.names(),
            })
    }
}
