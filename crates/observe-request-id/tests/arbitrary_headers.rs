//! Arbitrary header bytes never panic the layer and always give a valid id.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;

use futures_util::FutureExt;
use http::{HeaderValue, Request, Response};
use observe_request_id::{MAX_REQUEST_ID_LEN, RequestId, RequestIdLayer};
use proptest::prelude::*;
use tower::{Layer, ServiceExt, service_fn};

fn visible_ascii(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes.len() <= MAX_REQUEST_ID_LEN
        && bytes.iter().all(|byte| (0x21..=0x7e).contains(byte))
}

/// Sends `values` as `x-request-id` headers; returns the response's one id
/// and the id the inner service saw.
fn round_trip(values: &[Vec<u8>], always_generate: bool) -> (String, String) {
    let mut request = Request::new(());
    for value in values {
        // Bytes that HTTP itself forbids (CR, LF, NUL...) cannot reach a
        // service: hyper refuses them before any layer runs.
        if let Ok(value) = HeaderValue::from_bytes(value) {
            request.headers_mut().append("x-request-id", value);
        }
    }
    let service = RequestIdLayer::new()
        .always_generate(always_generate)
        .layer(service_fn(|request: Request<()>| async move {
            let seen = request.extensions().get::<RequestId>().unwrap().to_string();
            Ok::<_, Infallible>(Response::new(seen))
        }));
    let response = service
        .oneshot(request)
        .now_or_never()
        .expect("the service is ready at once")
        .unwrap();
    let mut ids = response.headers().get_all("x-request-id").iter();
    let id = ids.next().expect("an id on the response");
    assert!(ids.next().is_none(), "one id on the response");
    (id.to_str().unwrap().to_owned(), response.into_body())
}

fn assert_v7(id: &str) {
    let uuid = uuid::Uuid::parse_str(id).unwrap();
    assert_eq!(uuid.get_version_num(), 7);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_single_value(value in proptest::collection::vec(any::<u8>(), 0..200)) {
        let (id, seen) = round_trip(std::slice::from_ref(&value), false);
        prop_assert_eq!(&id, &seen);
        prop_assert!(visible_ascii(id.as_bytes()));
        if visible_ascii(&value) {
            prop_assert_eq!(id.as_bytes(), &value[..]);
        } else {
            assert_v7(&id);
        }
    }

    #[test]
    fn ascii_heavy_values(value in "[\\x00-\\x7f]{0,140}") {
        let (id, seen) = round_trip(&[value.clone().into_bytes()], false);
        prop_assert_eq!(&id, &seen);
        if visible_ascii(value.as_bytes()) {
            prop_assert_eq!(id, value);
        } else {
            assert_v7(&id);
        }
    }

    #[test]
    fn several_values_are_never_echoed(
        values in proptest::collection::vec("[!-~]{1,20}", 2..5),
    ) {
        let bytes: Vec<Vec<u8>> = values.iter().map(|value| value.clone().into_bytes()).collect();
        let (id, seen) = round_trip(&bytes, false);
        prop_assert_eq!(&id, &seen);
        assert_v7(&id);
    }

    #[test]
    fn always_generate_never_echoes(value in "[!-~]{1,128}") {
        let (id, _) = round_trip(&[value.into_bytes()], true);
        assert_v7(&id);
    }
}
