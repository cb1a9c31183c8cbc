//! The API description: the fixed parts of the OpenAPI 3.1 document that
//! [`super::routes`] completes from the handlers and serves at
//! `GET /openapi.json`, and the schemas of the core's types on the wire.
//!
//! It is generated from the code: each handler carries a
//! `#[utoipa::path]` attribute and each wire type a `ToSchema` derive, and
//! [`super::routes`] registers the handlers with `utoipa_axum::routes!`, which
//! both mounts a handler on the axum router and adds its operation to the
//! document. A route therefore cannot be served without being described, nor
//! described without being served.
//!
//! The domain types of `reroute-core` carry no schema of their own (the core
//! stays free of HTTP concerns); the [`wire`] module says how each of them
//! looks on the wire, and fields point at it with `value_type`. The error
//! answers that one piece of code gives to several operations (the rate
//! limit, the body read, the admin token, the store) are described once, in
//! [`errors`], and each operation lists them by name.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The document's fixed parts; the paths and schemas come from
/// [`super::routes`].
#[derive(OpenApi)]
#[openapi(
    info(
        title = "reroute",
        description = "A payment failover router: the Rinha-compatible payments API, the \
                       failover-intelligence API, and the operations endpoints. Errors are \
                       answered as `{\"error\": \"...\", \"field\": \"...\"}` (see `ApiError`).",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    modifiers(&AdminToken),
    tags(
        (name = "payments", description = "Surface 1: the Rinha-compatible payments API."),
        (name = "intelligence", description = "Surface 2: failover intelligence (health, alerts, routing recommendations)."),
        (name = "operations", description = "Surface 3: metrics, liveness, readiness and this document."),
        (name = "dashboard", description = "Surface 3: the live dashboard and its data."),
    )
)]
pub struct ApiDoc;

/// The admin token's two accepted forms, named by the operations that need it.
struct AdminToken;

impl Modify for AdminToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "rinha_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Rinha-Token"))),
        );
        components.add_security_scheme(
            "token_query",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::new("token"))),
        );
    }
}

/// How the core's domain types look on the wire. Never built: they exist
/// for their schemas.
#[allow(dead_code)]
pub mod wire {
    use utoipa::ToSchema;

    /// A processor's (or segment's) health.
    #[derive(ToSchema)]
    #[schema(rename_all = "UPPERCASE")]
    pub enum Status {
        Healthy,
        Degraded,
        Down,
    }

    /// A transaction's outcome: `approved`, `declined` (a business refusal),
    /// `error` or `timeout` (technical failures).
    #[derive(ToSchema)]
    #[schema(rename_all = "lowercase")]
    pub enum Outcome {
        Approved,
        Declined,
        Error,
        Timeout,
    }

    /// Whose health a recommendation line is based on: the segment (enough
    /// data) or the processor as a whole.
    #[derive(ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub enum Scope {
        Segment,
        Processor,
    }

    /// A UTC instant, ISO-8601 with millisecond precision.
    #[derive(ToSchema)]
    #[schema(value_type = String, format = DateTime, example = "2025-07-10T12:34:56.000Z")]
    pub struct Timestamp(String);

    /// An amount of money as a JSON number, exact to the cent.
    #[derive(ToSchema)]
    #[schema(value_type = f64, example = 19.9)]
    pub struct Money(f64);
}

/// The error answers several operations share, each given by one piece of
/// code: an operation names the set (`responses(errors::RateLimited, ...)`)
/// rather than repeating its lines, so that their wording cannot drift
/// apart. Never built: they exist for their descriptions.
#[allow(dead_code)]
pub mod errors {
    use utoipa::IntoResponses;

    use crate::api::error::ErrorBody;

    /// The rate limit's refusal ([`crate::ratelimit`]), in front of the
    /// payments and intelligence endpoints.
    #[derive(IntoResponses)]
    #[response(
        status = 429,
        description = "Over this client's rate limit (only when one is configured); `Retry-After` says when to ask again."
    )]
    pub struct RateLimited(ErrorBody<'static>);

    /// What [`crate::api::request::read_configured_body`] refuses, for the
    /// operations that read a body.
    #[derive(IntoResponses)]
    pub enum BodyRefused {
        #[response(
            status = 408,
            description = "The body did not arrive whole within the body read timeout (30 s); the connection is closed."
        )]
        Timeout(ErrorBody<'static>),
        #[response(
            status = 413,
            description = "The body is larger than the configured limit."
        )]
        TooLarge(ErrorBody<'static>),
    }

    /// What [`crate::api::request::require_token`] refuses, for
    /// `POST /purge-payments` and the dashboard's data.
    #[derive(IntoResponses)]
    #[response(
        status = 401,
        description = "A token is configured and was not presented."
    )]
    pub struct TokenMissing(ErrorBody<'static>);

    /// A store error ([`crate::api::error::ApiError::Unavailable`]), for
    /// the operations that read or purge the store.
    #[derive(IntoResponses)]
    #[response(status = 503, description = "The store is unavailable.")]
    pub struct StoreUnavailable(ErrorBody<'static>);
}
