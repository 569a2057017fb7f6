//! Frame-level behaviour the broker relies on: golden ApiVersions bytes,
//! header rules, and hostile inputs that must fail cleanly.

use bytes::{BufMut, Bytes, BytesMut};
use sluice_protocol::messages::api_versions::{
    ApiVersion, ApiVersionsRequest, ApiVersionsResponse,
};
use sluice_protocol::messages::metadata::MetadataRequest;
use sluice_protocol::{
    ApiKey, Decode, DecodeError, RequestBody, RequestDecodeError, RequestHeader,
    SUPPORTED_VERSIONS, decode_request, encode_request, encode_response, frame_length,
    response_header_version,
};

fn api_versions_body() -> ApiVersionsResponse {
    ApiVersionsResponse {
        error_code: 0,
        api_keys: SUPPORTED_VERSIONS
            .iter()
            .take(3)
            .map(|&(k, min, max)| ApiVersion {
                api_key: k as i16,
                min_version: min,
                max_version: max,
            })
            .collect(),
        throttle_time_ms: 0,
        ..Default::default()
    }
}

#[test]
fn api_versions_v3_response_writes_no_default_tagged_fields_and_a_v0_header() {
    let body = api_versions_body();
    let header_version = response_header_version(ApiKey::ApiVersions, 3);
    assert_eq!(header_version, 0);
    let frame = encode_response(42, header_version, &body, 3).expect("encodes");
    let mut expected = BytesMut::new();
    expected.put_i32(42); // v0 header: correlation id only, no tag buffer
    expected.put_i16(0); // error_code
    expected.put_u8(4); // compact array: 3 entries + 1
    for &(k, min, max) in SUPPORTED_VERSIONS.iter().take(3) {
        expected.put_i16(k as i16);
        expected.put_i16(min);
        expected.put_i16(max);
        expected.put_u8(0); // per-entry empty tagged fields
    }
    expected.put_i32(0); // throttle_time_ms
    expected.put_u8(0); // body tagged fields: none, because all are default
    assert_eq!(
        frame_length([frame[0], frame[1], frame[2], frame[3]]) as usize,
        expected.len()
    );
    assert_eq!(&frame[4..], &expected[..]);
}

#[test]
fn api_versions_v3_response_writes_non_default_tagged_fields() {
    let mut body = api_versions_body();
    body.finalized_features_epoch = 9;
    let frame = encode_response(1, 0, &body, 3).expect("encodes");
    // count=1, tag=1, size=8, then the i64.
    assert_eq!(
        &frame[frame.len() - 11..],
        &[1, 1, 8, 0, 0, 0, 0, 0, 0, 0, 9]
    );
}

#[test]
fn flexible_request_round_trips_through_a_frame() {
    let header = RequestHeader {
        request_api_key: ApiKey::ApiVersions as i16,
        request_api_version: 3,
        correlation_id: 5,
        client_id: Some("rdkafka".into()),
    };
    let body = ApiVersionsRequest {
        client_software_name: "librdkafka".into(),
        client_software_version: "2.0.2".into(),
    };
    let frame = encode_request(&header, &body).expect("encodes").freeze();
    let (h, b) = decode_request(frame.slice(4..)).expect("decodes");
    assert_eq!(h, header);
    assert_eq!(b, RequestBody::ApiVersions(body));
}

#[test]
fn five_byte_metadata_request_claiming_huge_array_is_rejected_without_allocating() {
    // Header v1 for Metadata v1, then a topics count of 0x7fffffff and
    // nothing else: this is the input that makes a naive decoder try to
    // reserve ~150 GB.
    let mut f = BytesMut::new();
    f.put_i16(3);
    f.put_i16(1);
    f.put_i32(77);
    f.put_i16(-1); // null client id
    f.put_slice(&[0x7f, 0xff, 0xff, 0xff, 0x00]);
    match decode_request(f.freeze()) {
        Err(RequestDecodeError::Body { header, source, .. }) => {
            assert_eq!(header.correlation_id, 77);
            assert!(
                matches!(
                    source,
                    DecodeError::TooLong { .. } | DecodeError::ArrayTooLong { .. }
                ),
                "{source:?}"
            );
        }
        other => panic!("expected body error, got {other:?}"),
    }
    // The same attack on a compact (flexible) array.
    let mut b = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert!(MetadataRequest::decode(&mut b, 12).is_err());
}

#[test]
fn unreadable_header_means_close_the_connection() {
    assert!(matches!(
        decode_request(Bytes::from_static(&[0, 3, 0])),
        Err(RequestDecodeError::Header(_))
    ));
}

#[test]
fn unknown_api_key_keeps_the_correlation_id() {
    let mut f = BytesMut::new();
    f.put_i16(999);
    f.put_i16(0);
    f.put_i32(123);
    match decode_request(f.freeze()) {
        Err(RequestDecodeError::UnknownApiKey { header }) => {
            assert_eq!(header.correlation_id, 123);
            assert_eq!(header.request_api_key, 999);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn unsupported_version_keeps_the_header_and_client_id() {
    let mut f = BytesMut::new();
    f.put_i16(ApiKey::ApiVersions as i16);
    f.put_i16(99);
    f.put_i32(8);
    f.put_i16(3);
    f.put_slice(b"abc");
    f.put_u8(0);
    match decode_request(f.freeze()) {
        Err(RequestDecodeError::UnsupportedVersion { header, api_key }) => {
            assert_eq!(api_key, ApiKey::ApiVersions);
            assert_eq!(header.correlation_id, 8);
            assert_eq!(header.client_id.as_deref(), Some("abc"));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn truncated_bodies_fail_at_every_cut_point() {
    let header = RequestHeader {
        request_api_key: ApiKey::ApiVersions as i16,
        request_api_version: 3,
        correlation_id: 5,
        client_id: None,
    };
    let body = ApiVersionsRequest {
        client_software_name: "x".into(),
        client_software_version: "y".into(),
    };
    let frame = encode_request(&header, &body).expect("encodes").freeze();
    for cut in 4..frame.len() {
        assert!(decode_request(frame.slice(4..cut)).is_err(), "cut at {cut}");
    }
}

#[test]
fn unknown_tagged_fields_are_skipped_and_bad_sizes_rejected() {
    // ApiVersionsRequest v3 body: two compact strings then tagged fields.
    let mut body = BytesMut::new();
    body.put_u8(2);
    body.put_u8(b'a');
    body.put_u8(2);
    body.put_u8(b'b');
    body.put_u8(1); // one tagged field
    body.put_u8(77); // unknown tag
    body.put_u8(3); // size 3
    body.put_slice(&[9, 9, 9]);
    let mut b = body.clone().freeze();
    let decoded = ApiVersionsRequest::decode(&mut b, 3).expect("unknown tag skipped");
    assert_eq!(decoded.client_software_name, "a");
    assert!(b.is_empty());
    // A tagged field claiming more bytes than remain.
    let mut bad = body;
    bad.truncate(bad.len() - 4);
    bad.put_u8(0xff);
    bad.put_u8(0xff);
    bad.put_u8(0xff);
    bad.put_u8(0x7f);
    let mut b = bad.freeze();
    assert!(ApiVersionsRequest::decode(&mut b, 3).is_err());
}

#[test]
fn i32_max_lengths_and_negative_lengths_are_errors() {
    use sluice_protocol::messages::produce::ProduceRequest;
    // Produce v3: transactional_id (nullable i16 string), acks, timeout,
    // then topic array count.
    let mut b = BytesMut::new();
    b.put_i16(-1);
    b.put_i16(1);
    b.put_i32(1000);
    b.put_i32(i32::MAX);
    let mut r = b.freeze();
    assert!(ProduceRequest::decode(&mut r, 3).is_err());
    let mut b = BytesMut::new();
    b.put_i16(-7);
    let mut r = b.freeze();
    assert!(matches!(
        ProduceRequest::decode(&mut r, 3),
        Err(DecodeError::NegativeLength { length: -7 })
    ));
}

#[test]
fn supported_versions_cover_the_priority_apis() {
    let get = |k: ApiKey| {
        SUPPORTED_VERSIONS
            .iter()
            .find(|e| e.0 == k)
            .map(|e| (e.1, e.2))
    };
    assert_eq!(get(ApiKey::ApiVersions), Some((0, 4)));
    assert_eq!(get(ApiKey::Metadata), Some((0, 13)));
    assert_eq!(get(ApiKey::Produce), Some((0, 12)));
    assert_eq!(get(ApiKey::Fetch), Some((0, 17)));
    assert_eq!(get(ApiKey::ListOffsets), Some((0, 10)));
    assert_eq!(get(ApiKey::CreateTopics), Some((0, 7)));
    assert_eq!(ApiKey::try_from(3), Ok(ApiKey::Metadata));
    assert_eq!(ApiKey::try_from(-5), Err(-5));
}
