//! Projections by name, for `/api/v1/projections`: each registered read
//! model behind one object-safe trait, so the API lists, shows, rebuilds,
//! verifies and retries any of them without knowing its type.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use logbook::projection::{
    AccountBalances, AccountSummaries, CatchUp, PoisonPolicy, ProjectionError, Projector,
    ProjectorOptions, ReadModel, ShipsByPort, Status,
};
use logbook_ports::Stores;
use serde_json::{Value, json};

/// One read model, by name.
#[async_trait]
pub trait RegisteredProjection: Send + Sync {
    /// Its name.
    fn name(&self) -> &'static str;
    /// Checkpoint, head, lag, parked count.
    ///
    /// # Errors
    /// Store failures, an unreadable document.
    async fn status(&self, stores: &Stores) -> Result<Status, ProjectionError>;
    /// Catches up, then returns the model and the parked events as JSON.
    ///
    /// # Errors
    /// As [`Projector::catch_up`].
    async fn show(&self, stores: &Stores) -> Result<Value, ProjectionError>;
    /// Rebuilds from the whole log.
    ///
    /// # Errors
    /// As [`Projector::rebuild`].
    async fn rebuild(&self, stores: &Stores) -> Result<CatchUp, ProjectionError>;
    /// Differences between the live model and a fresh fold.
    ///
    /// # Errors
    /// As [`Projector::verify`].
    async fn verify(&self, stores: &Stores) -> Result<Vec<String>, ProjectionError>;
    /// Applies the parked events again: (applied, still parked).
    ///
    /// # Errors
    /// As [`Projector::retry_parked`].
    async fn retry_parked(&self, stores: &Stores) -> Result<(usize, usize), ProjectionError>;
}

/// The projection of read model `R`, parking events it cannot apply (so a
/// poison event shows up in the console instead of stopping the model).
pub struct Projections<R>(std::marker::PhantomData<fn() -> R>);

impl<R> Default for Projections<R> {
    fn default() -> Self {
        Self(std::marker::PhantomData)
    }
}

fn projector<R: ReadModel>(stores: &Stores) -> Projector<R> {
    Projector::with_options(
        stores,
        ProjectorOptions {
            policy: PoisonPolicy::Park,
            ..ProjectorOptions::default()
        },
    )
}

#[async_trait]
impl<R: ReadModel> RegisteredProjection for Projections<R> {
    fn name(&self) -> &'static str {
        R::NAME
    }

    async fn status(&self, stores: &Stores) -> Result<Status, ProjectionError> {
        projector::<R>(stores).status().await
    }

    async fn show(&self, stores: &Stores) -> Result<Value, ProjectionError> {
        let projector = projector::<R>(stores);
        projector.catch_up().await?;
        let state = projector.state().await?;
        Ok(json!({
            "checkpoint": state.checkpoint,
            "model": serde_json::to_value(&state.model).unwrap_or_default(),
            "parked": serde_json::to_value(&state.parked).unwrap_or_default(),
        }))
    }

    async fn rebuild(&self, stores: &Stores) -> Result<CatchUp, ProjectionError> {
        projector::<R>(stores).rebuild(|_| {}).await
    }

    async fn verify(&self, stores: &Stores) -> Result<Vec<String>, ProjectionError> {
        projector::<R>(stores).verify().await
    }

    async fn retry_parked(&self, stores: &Stores) -> Result<(usize, usize), ProjectionError> {
        projector::<R>(stores).retry_parked().await
    }
}

/// Projections by name.
#[derive(Clone, Default)]
pub struct ProjectionRegistry {
    projections: BTreeMap<&'static str, Arc<dyn RegisteredProjection>>,
}

impl ProjectionRegistry {
    /// No projections.
    pub fn new() -> Self {
        Self::default()
    }

    /// The seeds' read models: `account-summary`, `account-balances`,
    /// `ships-by-port`.
    pub fn with_seed_read_models() -> Self {
        Self::new()
            .register(Projections::<AccountSummaries>::default())
            .register(Projections::<AccountBalances>::default())
            .register(Projections::<ShipsByPort>::default())
    }

    /// Adds a projection.
    pub fn register(mut self, projection: impl RegisteredProjection + 'static) -> Self {
        self.projections
            .insert(projection.name(), Arc::new(projection));
        self
    }

    /// The projection called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn RegisteredProjection>> {
        self.projections.get(name)
    }

    /// Every projection, by name.
    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn RegisteredProjection>> {
        self.projections.values()
    }

    /// Their names.
    pub fn names(&self) -> Vec<&'static str> {
        self.projections.keys().copied().collect()
    }
}
