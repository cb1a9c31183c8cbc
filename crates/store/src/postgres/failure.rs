//! What PostgreSQL's failures mean to the store: a misconfiguration (waiting
//! will not help), a transient conflict (retry the statement), or the
//! database being unavailable (the caller answers 503 and tries later);
//! and the client-side bound every operation runs under.

use std::future::Future;
use std::time::Duration;

use tokio_postgres::error::SqlState;

use crate::{StoreError, StoreResult};

/// Waits at most `bound` for `op`.
pub(super) async fn bounded<T>(
    bound: Duration,
    op: impl Future<Output = StoreResult<T>>,
) -> StoreResult<T> {
    tokio::time::timeout(bound, op).await.unwrap_or_else(|_| {
        Err(StoreError::Unavailable(format!(
            "no answer from PostgreSQL within {} ms",
            bound.as_millis()
        )))
    })
}

/// PostgreSQL refused who or where we are (SQLSTATE class 28: invalid
/// authorization; 3D000: no such database): waiting will not help.
pub(super) fn misconfigured(e: &tokio_postgres::Error) -> Option<StoreError> {
    let db = e.as_db_error()?;
    let code = db.code().code();
    (code.starts_with("28") || code == "3D000")
        .then(|| StoreError::Misconfigured(format!("PostgreSQL {code}: {}", db.message())))
}

pub(super) fn unavailable(e: tokio_postgres::Error) -> StoreError {
    if let Some(refused) = misconfigured(&e) {
        return refused;
    }
    match e.as_db_error() {
        Some(db) => {
            StoreError::Unavailable(format!("PostgreSQL {}: {}", db.code().code(), db.message()))
        }
        None => StoreError::Unavailable(format!("PostgreSQL: {}", with_causes(&e))),
    }
}

pub(super) fn unavailable_pool(e: deadpool_postgres::PoolError) -> StoreError {
    if let deadpool_postgres::PoolError::Backend(backend) = &e
        && let Some(refused) = misconfigured(backend)
    {
        return refused;
    }
    StoreError::Unavailable(format!("no PostgreSQL connection: {}", with_causes(&e)))
}

/// An error and what caused it ("error connecting to server: Connection
/// refused"), which the outer message alone does not say.
pub(super) fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// Failures that say nothing about the data: trying again may succeed.
pub(super) fn is_transient(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
    )
}
