//! The `from`/`to` query parameters of the summary and listing endpoints.

use reroute_core::{Timestamp, Window};

use super::reply::Refusal;

/// The inclusive window named by `from` and `to`. As in the reference, the
/// filter applies only when both are present; with either missing, every
/// payment counts. An empty value counts as missing.
pub fn window(query: Option<&str>) -> Result<Window, Refusal> {
    let (mut from, mut to) = (None, None);
    for pair in query.unwrap_or("").split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (slot, field) = match key {
            "from" => (&mut from, "from"),
            "to" => (&mut to, "to"),
            _ => continue,
        };
        let value = percent_decode(value);
        if value.is_empty() {
            continue;
        }
        let instant = value
            .parse::<Timestamp>()
            .map_err(|e| Refusal::bad_request(e.to_string(), Some(field)))?;
        *slot = Some(instant);
    }
    Ok(match (from, to) {
        (Some(from), Some(to)) => Window::new(Some(from), Some(to)),
        _ => Window::ALL,
    })
}

/// `%XX` escapes decoded. A `+` stays a `+`: clients often leave the `+` of a
/// UTC offset unescaped, and reading it as a space would only refuse them.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn both_bounds_make_an_inclusive_window() {
        let w = window(Some(
            "from=2025-07-10T12:00:00.000Z&to=2025-07-10T12:00:10.000Z",
        ))
        .unwrap();
        assert_eq!(
            w,
            Window::new(
                Some(at("2025-07-10T12:00:00.000Z")),
                Some(at("2025-07-10T12:00:10.000Z"))
            )
        );
    }

    #[test]
    fn a_missing_bound_means_no_filter_at_all() {
        assert_eq!(
            window(Some("from=2025-07-10T12:00:00.000Z")).unwrap(),
            Window::ALL
        );
        assert_eq!(
            window(Some("to=2025-07-10T12:00:00.000Z&from=")).unwrap(),
            Window::ALL
        );
        assert_eq!(window(None).unwrap(), Window::ALL);
    }

    #[test]
    fn escaped_and_offset_instants_are_understood() {
        let w = window(Some(
            "from=2025-07-10T12%3A00%3A00%2B00%3A00&to=2025-07-10T09:00:10-03:00",
        ))
        .unwrap();
        assert_eq!(w.from, at("2025-07-10T12:00:00Z"));
        assert_eq!(w.to, at("2025-07-10T12:00:10Z"));
        let w = window(Some(
            "from=2025-07-10T12:00:00+00:00&to=2025-07-10T12:00:10",
        ))
        .unwrap();
        assert_eq!(w.from, at("2025-07-10T12:00:00Z"));
    }

    #[test]
    fn a_malformed_bound_is_a_bad_request() {
        let refusal = window(Some("from=yesterday&to=2025-07-10T12:00:10Z")).unwrap_err();
        assert_eq!(
            (refusal.status.as_u16(), refusal.field),
            (400, Some("from"))
        );
    }
}
