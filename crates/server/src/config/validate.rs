//! The checks a value passes before it enters [`super::ServeConfig`]: ranges,
//! URLs, codes, and the lease rule that keeps two instances from sending
//! one payment at once. Each returns the problem in words; the caller adds
//! where the value came from.

use std::fmt;
use std::time::Duration;

use super::settings::{LEASE_MS, PROCESSOR_TIMEOUT_MS};

pub(super) fn at_least<T: PartialOrd + fmt::Display>(
    min: T,
) -> impl FnOnce(T) -> Result<T, String> {
    move |v| {
        if v >= min {
            Ok(v)
        } else {
            Err(format!("must be at least {min}"))
        }
    }
}

pub(super) fn between<T: PartialOrd + fmt::Display>(
    min: T,
    max: T,
) -> impl FnOnce(T) -> Result<T, String> {
    move |v| {
        if v >= min && v <= max {
            Ok(v)
        } else {
            Err(format!("must be between {min} and {max}"))
        }
    }
}

pub(super) fn not_empty(v: String) -> Result<String, String> {
    if v.trim().is_empty() {
        Err("must not be empty when set".into())
    } else {
        Ok(v)
    }
}

pub(super) fn millis_i64(ms: u64) -> Result<i64, String> {
    i64::try_from(ms)
        .ok()
        .filter(|ms| *ms >= 1)
        .ok_or_else(|| "must be at least 1 ms".to_owned())
}

/// A duration in ms where 0 means "off".
pub(super) fn millis_or_off(ms: u64) -> Result<i64, String> {
    i64::try_from(ms).map_err(|_| "is too large".to_owned())
}

/// How often an instance renews its leases on shared storage: every third
/// of the lease, so that one failed renewal still leaves time for another.
pub fn lease_renewal_interval(lease: Duration) -> Duration {
    lease / 3
}

/// Refuses a lease that could run out while a send is in flight. A holder
/// checks its lease before a send; the lease was last renewed up to one
/// renewal interval earlier, so it may have only `lease - renewal` left;
/// the send may take the processor timeout (a send waiting for a longer
/// announced delay is capped below `lease - renewal`:
/// [`crate::resolution::longest_send_wait`]). Unless the lease outlasts
/// `timeout + renewal`, another instance could take the payment over (and
/// send it elsewhere) while this send may still land: a double charge.
/// `timeout_from` says where the timeout was set.
pub(super) fn check_lease(
    lease_ms: u64,
    timeout_ms: u64,
    timeout_from: &str,
) -> Result<(), String> {
    let lease = Duration::from_millis(lease_ms);
    let renewal = lease_renewal_interval(lease);
    let outlasts = Duration::from_millis(timeout_ms)
        .checked_add(renewal)
        .is_some_and(|needed| lease > needed);
    if outlasts {
        return Ok(());
    }
    // The shortest lease with lease - lease/3 > timeout, and the longest
    // timeout below 2/3 of this lease.
    let least_lease = timeout_ms.saturating_mul(3) / 2 + 1;
    let longest_timeout = lease_ms.saturating_mul(2).saturating_sub(1) / 3;
    Err(format!(
        "a lease of {lease_ms} ms does not outlast the processor timeout ({timeout_ms} ms, \
         {timeout_from}) plus the lease renewal interval ({} ms, a third of the lease): \
         another instance could take a payment over while a send of it is still in flight. \
         Set the lease ({} / {} / storage.lease_ms) to at least {least_lease} ms, or the \
         processor timeout ({} / {} / routing.processor_timeout_ms) to at most \
         {longest_timeout} ms",
        renewal.as_millis(),
        LEASE_MS.flag,
        LEASE_MS.env,
        PROCESSOR_TIMEOUT_MS.flag,
        PROCESSOR_TIMEOUT_MS.env,
    ))
}

/// A processor's base URL: `http://` with a host, trailing slashes trimmed.
pub(super) fn check_url(url: String) -> Result<String, String> {
    let trimmed = url.trim_end_matches('/');
    let uri: hyper::Uri = trimmed
        .parse()
        .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    if uri.scheme_str() != Some("http") || uri.host().is_none() {
        return Err(format!("{url:?} must be an http:// URL with a host"));
    }
    Ok(trimmed.to_owned())
}

/// A two-letter country code.
pub fn is_country(code: &str) -> bool {
    code.len() == 2 && code.bytes().all(|b| b.is_ascii_alphabetic())
}

/// A payment method name: 1-32 letters, digits, `_` or `-`.
pub fn is_method(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_takes_its_bounds_and_names_them_when_refusing() {
        assert_eq!(between(8u32, 100_000)(8), Ok(8));
        assert_eq!(between(8u32, 100_000)(100_000), Ok(100_000));
        assert_eq!(
            between(8u32, 100_000)(7),
            Err("must be between 8 and 100000".to_owned())
        );
        assert_eq!(
            between(1usize, 100_000)(100_001),
            Err("must be between 1 and 100000".to_owned())
        );
    }
}
