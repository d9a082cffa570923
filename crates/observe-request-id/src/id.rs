use std::{fmt, str::FromStr};

use arrayvec::ArrayString;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use uuid::Uuid;

use crate::{DEFAULT_HEADER_NAME, MAX_REQUEST_ID_LEN};

/// The id of one request.
///
/// It is always 1 to [`MAX_REQUEST_ID_LEN`] bytes of visible ASCII, so it is
/// safe to echo in a header and to write in a log line. Cloning is cheap (a
/// reference count).
///
/// As an axum extractor it never rejects: without [`RequestIdLayer`] in
/// front, it makes a fresh id and stores it in the request extensions so every
/// extractor of the same request sees the same one.
///
/// [`RequestIdLayer`]: crate::RequestIdLayer
#[derive(Clone)]
pub struct RequestId(Repr);

#[derive(Clone)]
enum Repr {
    /// A hyphenated UUID kept inline: cloning it copies 36 bytes instead of
    /// touching a shared reference count, and nothing is allocated until a
    /// header needs it. Text already, so reading it checks nothing.
    Uuid(UuidText),
    /// A valid id that arrived in a header, sharing the request's buffer.
    Header(HeaderValue),
}

/// A hyphenated UUID as text.
type UuidText = ArrayString<{ uuid::fmt::Hyphenated::LENGTH }>;

/// [`UuidText`] as the owner of a header's bytes.
struct UuidBytes(UuidText);

impl AsRef<[u8]> for UuidBytes {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// The error for a value that is not a valid request id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidRequestId(());

impl fmt::Display for InvalidRequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a request id must be 1 to {MAX_REQUEST_ID_LEN} visible ASCII characters (0x21 to 0x7E)"
        )
    }
}

impl std::error::Error for InvalidRequestId {}

impl RequestId {
    /// Makes a fresh UUID v7 id.
    pub fn new_v7() -> Self {
        Self::from_uuid(crate::v7::now_v7())
    }

    /// The id of a UUID, in its lower-case hyphenated form.
    pub fn from_uuid(uuid: Uuid) -> Self {
        let mut buffer = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let mut text = ArrayString::new();
        text.push_str(uuid.hyphenated().encode_lower(&mut buffer));
        Self(Repr::Uuid(text))
    }

    /// Takes a header value as an id if it is a valid one.
    pub fn from_header_value(value: &HeaderValue) -> Result<Self, InvalidRequestId> {
        if is_valid(value.as_bytes()) {
            Ok(Self(Repr::Header(value.clone())))
        } else {
            Err(InvalidRequestId(()))
        }
    }

    /// The id as bytes: visible ASCII.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Uuid(text) => text.as_bytes(),
            Repr::Header(value) => value.as_bytes(),
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Uuid(text) => text,
            // Validated as visible ASCII on the way in, so never the fallback.
            Repr::Header(value) => std::str::from_utf8(value.as_bytes()).unwrap_or_default(),
        }
    }

    /// The id as a header value.
    pub fn to_header_value(&self) -> HeaderValue {
        match &self.0 {
            Repr::Uuid(text) => Self::uuid_header(*text),
            Repr::Header(value) => value.clone(),
        }
    }

    /// The id as a header value, without a copy when it came from one.
    pub fn into_header_value(self) -> HeaderValue {
        match self.0 {
            Repr::Uuid(text) => Self::uuid_header(text),
            Repr::Header(value) => value,
        }
    }

    fn uuid_header(text: UuidText) -> HeaderValue {
        // `from_owner` moves the text into a buffer whose clones share one
        // count; a hyphenated UUID is always a valid header value.
        HeaderValue::from_maybe_shared(Bytes::from_owner(UuidBytes(text)))
            .unwrap_or_else(|_| unreachable!("a hyphenated UUID is visible ASCII"))
    }
}

impl PartialEq for RequestId {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for RequestId {}

impl std::hash::Hash for RequestId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

/// Whether `bytes` is a request id this crate keeps: 1 to
/// [`MAX_REQUEST_ID_LEN`] bytes, each visible ASCII.
pub(crate) fn is_valid(bytes: &[u8]) -> bool {
    // No early exit, so the loop compiles to a few vector compares.
    let visible = bytes.iter().fold(true, |visible, byte| {
        visible & (byte.wrapping_sub(0x21) < 0x5e)
    });
    visible && !bytes.is_empty() && bytes.len() <= MAX_REQUEST_ID_LEN
}

impl FromStr for RequestId {
    type Err = InvalidRequestId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if is_valid(text.as_bytes()) {
            HeaderValue::from_str(text)
                .map(|value| Self(Repr::Header(value)))
                .map_err(|_| InvalidRequestId(()))
        } else {
            Err(InvalidRequestId(()))
        }
    }
}

impl TryFrom<&str> for RequestId {
    type Error = InvalidRequestId;

    fn try_from(text: &str) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl TryFrom<HeaderValue> for RequestId {
    type Error = InvalidRequestId;

    fn try_from(value: HeaderValue) -> Result<Self, Self::Error> {
        if is_valid(value.as_bytes()) {
            Ok(Self(Repr::Header(value)))
        } else {
            Err(InvalidRequestId(()))
        }
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RequestId").field(&self.as_str()).finish()
    }
}

impl AsRef<str> for RequestId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// Sets the [`current`](crate::current) request id on `headers` under
/// [`DEFAULT_HEADER_NAME`], for an outgoing call. Returns whether there was
/// one to set.
pub fn propagate_current(headers: &mut HeaderMap) -> bool {
    match crate::current() {
        Some(id) => {
            headers.insert(DEFAULT_HEADER_NAME, id.into_header_value());
            true
        }
        None => false,
    }
}

#[cfg(feature = "axum")]
impl<S: Send + Sync> axum_core::extract::FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        if let Some(id) = parts.extensions.get::<RequestId>() {
            return Ok(id.clone());
        }
        let id = crate::current().unwrap_or_else(RequestId::new_v7);
        parts.extensions.insert(id.clone());
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v7_ids_parse_back_as_v7_uuids_and_are_time_ordered() {
        let first = RequestId::new_v7();
        let second = RequestId::new_v7();
        let uuid = Uuid::parse_str(first.as_str()).unwrap();
        assert_eq!(uuid.get_version_num(), 7);
        assert_eq!(first.as_str().len(), 36);
        assert!(first.as_str() < second.as_str());
    }

    #[test]
    fn from_uuid_is_the_lower_case_hyphenated_form() {
        for _ in 0..100 {
            let uuid = crate::v7::now_v7();
            assert_eq!(
                RequestId::from_uuid(uuid).as_str(),
                uuid.hyphenated().to_string()
            );
        }
        let max = Uuid::from_u128(u128::MAX);
        assert_eq!(
            RequestId::from_uuid(max).as_str(),
            "ffffffff-ffff-ffff-ffff-ffffffffffff"
        );
    }

    #[test]
    fn validation_bounds() {
        assert!("a".parse::<RequestId>().is_ok());
        assert!("x".repeat(128).parse::<RequestId>().is_ok());
        assert!("x".repeat(129).parse::<RequestId>().is_err());
        assert!("".parse::<RequestId>().is_err());
        assert!("has space".parse::<RequestId>().is_err());
        assert!("tab\there".parse::<RequestId>().is_err());
        assert!("caf\u{e9}".parse::<RequestId>().is_err());
        assert!("del\u{7f}".parse::<RequestId>().is_err());
        assert!("!~".parse::<RequestId>().is_ok());
        let obs_text = HeaderValue::from_bytes(b"abc\xff").unwrap();
        assert!(RequestId::from_header_value(&obs_text).is_err());
    }

    #[test]
    fn display_and_debug_show_the_id() {
        let id: RequestId = "abc-123".parse().unwrap();
        assert_eq!(id.to_string(), "abc-123");
        assert_eq!(format!("{id:?}"), "RequestId(\"abc-123\")");
    }

    #[tokio::test]
    async fn propagate_current_inside_scope_only() {
        assert!(crate::current().is_none());
        let id: RequestId = "scoped".parse().unwrap();
        let seen = crate::scope(id, async {
            let mut headers = HeaderMap::new();
            assert!(propagate_current(&mut headers));
            (crate::current(), headers)
        })
        .await;
        assert_eq!(seen.0.unwrap().as_str(), "scoped");
        assert_eq!(seen.1.get("x-request-id").unwrap(), "scoped");
        let mut headers = HeaderMap::new();
        assert!(!propagate_current(&mut headers));
        assert!(headers.is_empty());
    }
}
