//! Parsing for the intelligence API: a request's raw JSON fields become
//! domain values (an upper-case method and country, [`Money`], a registry
//! index) once, at the edge, each problem named by its field; the handlers
//! and the dashboard's selection read only parsed values.

use reroute_core::Money;
use serde_json::value::RawValue;

use crate::api::error::ApiError;
use crate::api::request;
use crate::config::{is_country, is_method};
use crate::state::Shared;

/// Reads a JSON object whose fields are kept raw, so that each problem can
/// be named.
pub(crate) fn object<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    let not_object = |detail: String| ApiError::Invalid {
        field: None,
        message: format!("body must be a JSON object{detail}"),
    };
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(not_object(String::new()));
    }
    serde_json::from_slice(body).map_err(|e| not_object(format!(": {e}")))
}

/// A JSON string field; `null` counts as absent.
pub(crate) fn text(
    raw: Option<&RawValue>,
    field: &'static str,
) -> Result<Option<String>, ApiError> {
    match raw {
        None => Ok(None),
        Some(raw) if raw.get() == "null" => Ok(None),
        Some(raw) => serde_json::from_str::<String>(raw.get())
            .map(Some)
            .map_err(|_| ApiError::invalid(field, format!("{field} must be a string"))),
    }
}

pub(crate) fn required(value: Option<String>, field: &'static str) -> Result<String, ApiError> {
    value
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| ApiError::invalid(field, format!("{field} is required")))
}

pub(crate) fn method(value: String) -> Result<String, ApiError> {
    if is_method(&value) {
        Ok(value.to_ascii_uppercase())
    } else {
        Err(ApiError::invalid(
            "payment_method",
            "payment_method must be 1-32 letters, digits, '_' or '-', e.g. PIX",
        ))
    }
}

pub(crate) fn country(value: String) -> Result<String, ApiError> {
    if is_country(&value) {
        Ok(value.to_ascii_uppercase())
    } else {
        Err(ApiError::invalid(
            "country",
            "country must be an ISO 3166-1 alpha-2 code, e.g. BR",
        ))
    }
}

/// A positive amount, exact to the cent, from a JSON number's text.
pub(crate) fn amount(text: &str) -> Result<Money, ApiError> {
    request::amount(text, "150.00")
}

pub(crate) fn raw_amount(raw: Option<&RawValue>) -> Result<Option<Money>, ApiError> {
    match raw {
        None => Ok(None),
        Some(raw) if raw.get() == "null" => Ok(None),
        Some(raw) => amount(raw.get()).map(Some),
    }
}

pub(crate) fn processor_index(
    shared: &Shared,
    id: &str,
    field: Option<&'static str>,
) -> Result<usize, ApiError> {
    shared
        .registry
        .index_of(id)
        .ok_or_else(|| ApiError::UnknownProcessor {
            id: id.to_owned(),
            field,
        })
}
