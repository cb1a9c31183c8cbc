//! The edge ↔ core protocol: how an edge process (`reroute edge`) hands a
//! validated payment to the core (`reroute serve --edge-socket`) over a unix
//! stream socket, and gets the answer to send back. Only `POST /payments`
//! travels this way; every other request is proxied to the core's HTTP
//! socket as it came.
//!
//! One connection per edge carries many payments at once; answers come back
//! in any order, matched by a tag. All integers are big-endian.
//!
//! ```text
//! hello (each way, once):  "RRC" version:u8                      (version 2)
//!   core → edge, then:     table_len:u16 table                   (0: none)
//! payment (edge → core):   len:u32 tag:u32 kind:u8=1 id:[16] amount:i64
//!                          method_len:u8 method country_len:u8 country
//! answer (core → edge):    len:u32 tag:u32 status:u16 body
//! ```
//!
//! `len` counts the bytes after itself. A method or country of length 0 is
//! absent (the edge refuses empty ones). The answer's body is the JSON the
//! core would have sent over HTTP; its content type is always JSON. A core
//! that speaks another version answers the hello with its own and closes:
//! the edge reports both versions and accepts nothing.
//!
//! `table` is the path of the core's accept table ([`crate::accepts`]), if
//! it has one: an edge that maps it accepts payments there itself, and the
//! core finds them there; nothing about them crosses the socket.

use reroute_core::{CorrelationId, Money, Timestamp};
use reroute_store::NewPayment;

/// This build's protocol version.
pub const VERSION: u8 = 2;

/// The four bytes each side sends first.
pub const HELLO: [u8; 4] = [b'R', b'R', b'C', VERSION];

const KIND_PAYMENT: u8 = 1;

/// The largest frame either side accepts (a payment is under 100 bytes, an
/// answer's JSON well under 1 KiB): a corrupt length cannot make a side
/// allocate gigabytes.
pub const MAX_FRAME: u32 = 64 * 1024;

/// What a hello says about the other side.
#[derive(Debug, PartialEq, Eq)]
pub enum Hello {
    Compatible,
    /// Speaks the protocol at another version.
    Version(u8),
    /// Not this protocol at all.
    Foreign,
}

pub fn check_hello(bytes: [u8; 4]) -> Hello {
    match bytes {
        HELLO => Hello::Compatible,
        [b'R', b'R', b'C', v] => Hello::Version(v),
        _ => Hello::Foreign,
    }
}

/// Appends a payment frame to `out`.
pub fn encode_payment(out: &mut Vec<u8>, tag: u32, payment: &NewPayment) {
    let method = payment.payment_method.as_deref().unwrap_or("").as_bytes();
    let country = payment.country.as_deref().unwrap_or("").as_bytes();
    // The edge validated them: 1-32 characters, 2 for a country.
    debug_assert!(method.len() <= 32 && country.len() <= 32);
    let len = 4 + 1 + 16 + 8 + 1 + method.len() + 1 + country.len();
    out.extend_from_slice(&(len as u32).to_be_bytes());
    out.extend_from_slice(&tag.to_be_bytes());
    out.push(KIND_PAYMENT);
    out.extend_from_slice(payment.id.as_bytes());
    out.extend_from_slice(&payment.amount.minor().to_be_bytes());
    out.push(method.len() as u8);
    out.extend_from_slice(method);
    out.push(country.len() as u8);
    out.extend_from_slice(country);
}

/// Why a frame could not be read: the connection is then of no more use.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame too short")]
    Short,
    #[error("unknown frame kind {0}")]
    Kind(u8),
    #[error("frame field is not UTF-8")]
    Text,
    #[error("frame of {0} bytes is over the limit")]
    TooLarge(u32),
}

/// Reads a payment frame's body (the bytes after `len`): its tag and the
/// payment, accepted at `now`.
pub fn decode_payment(frame: &[u8], now: Timestamp) -> Result<(u32, NewPayment), FrameError> {
    let mut r = Reader(frame);
    let tag = u32::from_be_bytes(r.take()?);
    let kind = r.take::<1>()?[0];
    if kind != KIND_PAYMENT {
        return Err(FrameError::Kind(kind));
    }
    let id = CorrelationId::from_bytes(r.take()?);
    let amount = Money::from_minor(i64::from_be_bytes(r.take()?));
    let payment_method = r.text()?;
    let country = r.text()?;
    Ok((
        tag,
        NewPayment {
            id,
            amount,
            payment_method,
            country,
            accepted_at: now,
        },
    ))
}

/// The core's words after its hello: the accept table's path, if any.
pub fn encode_table(out: &mut Vec<u8>, table: Option<&std::path::Path>) {
    let path = table.map_or(&[][..], |p| p.as_os_str().as_encoded_bytes());
    out.extend_from_slice(&(path.len() as u16).to_be_bytes());
    out.extend_from_slice(path);
}

/// Appends an answer frame to `out`.
pub fn encode_answer(out: &mut Vec<u8>, tag: u32, status: u16, body: &[u8]) {
    let len = 4 + 2 + body.len();
    out.extend_from_slice(&(len as u32).to_be_bytes());
    out.extend_from_slice(&tag.to_be_bytes());
    out.extend_from_slice(&status.to_be_bytes());
    out.extend_from_slice(body);
}

/// Reads an answer frame's body: tag, status, JSON body.
pub fn decode_answer(frame: &[u8]) -> Result<(u32, u16, &[u8]), FrameError> {
    let mut r = Reader(frame);
    let tag = u32::from_be_bytes(r.take()?);
    let status = u16::from_be_bytes(r.take()?);
    Ok((tag, status, r.0))
}

/// Checks a frame's announced length before anything is allocated for it.
pub fn check_len(len: u32) -> Result<usize, FrameError> {
    if len > MAX_FRAME {
        Err(FrameError::TooLarge(len))
    } else {
        Ok(len as usize)
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], FrameError> {
        let (head, rest) = self.0.split_first_chunk::<N>().ok_or(FrameError::Short)?;
        self.0 = rest;
        Ok(*head)
    }

    fn text(&mut self) -> Result<Option<String>, FrameError> {
        let len = self.take::<1>()?[0] as usize;
        if self.0.len() < len {
            return Err(FrameError::Short);
        }
        let (text, rest) = self.0.split_at(len);
        self.0 = rest;
        if len == 0 {
            return Ok(None);
        }
        std::str::from_utf8(text)
            .map(|t| Some(t.to_owned()))
            .map_err(|_| FrameError::Text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(method: Option<&str>, country: Option<&str>) -> NewPayment {
        NewPayment {
            id: "4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3".parse().unwrap(),
            amount: Money::from_minor(1990),
            payment_method: method.map(str::to_owned),
            country: country.map(str::to_owned),
            accepted_at: Timestamp::from_millis(0),
        }
    }

    #[test]
    fn a_payment_reads_back_as_written_with_the_cores_clock() {
        let now = Timestamp::from_millis(1_752_150_896_000);
        for sent in [payment(None, None), payment(Some("pix"), Some("BR"))] {
            let mut out = Vec::new();
            encode_payment(&mut out, 7, &sent);
            let len = u32::from_be_bytes(out[..4].try_into().unwrap());
            assert_eq!(len as usize, out.len() - 4);
            let (tag, read) = decode_payment(&out[4..], now).unwrap();
            assert_eq!(tag, 7);
            assert_eq!(
                read,
                NewPayment {
                    accepted_at: now,
                    ..sent
                }
            );
        }
    }

    #[test]
    fn an_answer_reads_back_as_written() {
        let mut out = Vec::new();
        encode_answer(&mut out, u32::MAX, 202, br#"{"status":"accepted"}"#);
        assert_eq!(
            decode_answer(&out[4..]).unwrap(),
            (u32::MAX, 202, &br#"{"status":"accepted"}"#[..])
        );
    }

    #[test]
    fn a_cut_or_foreign_frame_is_an_error_not_a_payment() {
        let mut out = Vec::new();
        encode_payment(&mut out, 1, &payment(Some("pix"), None));
        let now = Timestamp::from_millis(0);
        for cut in 4..out.len() - 1 {
            assert_eq!(
                decode_payment(&out[4..cut], now).unwrap_err(),
                FrameError::Short
            );
        }
        out[8] = 9;
        assert_eq!(
            decode_payment(&out[4..], now).unwrap_err(),
            FrameError::Kind(9)
        );
        assert_eq!(
            check_len(MAX_FRAME + 1),
            Err(FrameError::TooLarge(MAX_FRAME + 1))
        );
    }

    #[test]
    fn a_hello_tells_a_version_apart_from_another_protocol() {
        assert_eq!(check_hello(HELLO), Hello::Compatible);
        assert_eq!(check_hello(*b"RRC\x07"), Hello::Version(7));
        assert_eq!(check_hello(*b"GET "), Hello::Foreign);
    }
}
