//! The client's pure parts: URLs, retry and conflict rules, backoff, errors, decoding.

use super::*;

#[test]
fn ws_urls_swap_the_scheme_and_keep_host_port_and_path() {
    assert_eq!(
        ws_url("http://127.0.0.1:8080", "/v1/officer/ws"),
        "ws://127.0.0.1:8080/v1/officer/ws"
    );
    assert_eq!(ws_url("http://h:1/", "/x"), "ws://h:1/x");
    assert_eq!(ws_url("https://h", "/x?after=3"), "wss://h/x?after=3");
    assert_eq!(ws_url("ws://h:2", "/x"), "ws://h:2/x");
    let api = Api::with_pool("http://localhost:9/", 4).unwrap();
    assert_eq!(api.base, "http://localhost:9");
    assert_eq!(
        api.ws_url("/v1/officer/ws"),
        "ws://localhost:9/v1/officer/ws"
    );
}

#[test]
fn only_overload_and_server_failures_are_retried() {
    for s in [500, 502, 503, 504, 429] {
        assert!(retryable(StatusCode::from_u16(s).unwrap()), "{s}");
    }
    for s in [200, 201, 204, 400, 401, 403, 404, 409, 422] {
        assert!(!retryable(StatusCode::from_u16(s).unwrap()), "{s}");
    }
}

#[test]
fn a_conflict_is_done_only_where_the_call_says_so() {
    assert!(!accepts_conflict(Conflict::Fail, true));
    assert!(!accepts_conflict(Conflict::ExistsIfRetried, false));
    assert!(accepts_conflict(Conflict::ExistsIfRetried, true));
    assert!(accepts_conflict(Conflict::Done, false));
}

#[test]
fn backoff_doubles_from_100_ms_with_bounded_jitter() {
    for attempt in 1..MAX_ATTEMPTS {
        let base = 100u128 << (attempt - 1);
        for _ in 0..20 {
            let ms = backoff(attempt).as_millis();
            assert!((base..=base * 3 / 2).contains(&ms), "{attempt}: {ms}");
        }
    }
    let total: u128 = (1..MAX_ATTEMPTS).map(|a| 100u128 << (a - 1)).sum();
    assert_eq!(total, 1500, "four waits of 100, 200, 400 and 800 ms");
}

#[test]
fn errors_name_the_call_and_keep_the_body_short() {
    let err = ApiError::Status {
        method: Method::PUT,
        path: "/v1/supervisees/x/device".into(),
        expected: 200,
        status: 409,
        body: cut(r#"{"error":"conflict","message":"the device is revoked"}"#),
    };
    assert_eq!(
        err.to_string(),
        r#"PUT /v1/supervisees/x/device: expected 200, got 409: {"error":"conflict","message":"the device is revoked"}"#
    );
    assert_eq!(err.status(), Some(409));
    let long = "é".repeat(BODY_LIMIT + 5);
    let short = cut(&long);
    assert_eq!(short.chars().count(), BODY_LIMIT + 1);
    assert!(short.ends_with('…'));
    assert_eq!(cut("short"), "short");
}

#[test]
fn replies_decode_empty_bodies_as_null_and_report_bad_ones() {
    let call = Call::new(Method::POST, "/v1/zones", StatusCode::CREATED);
    let () = decode(&call, StatusCode::NO_CONTENT, "").unwrap();
    let v: Value = decode(&call, StatusCode::CREATED, r#"{"id":"a"}"#).unwrap();
    assert_eq!(v["id"], "a");
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Id {
        id: Uuid,
    }
    let err = decode::<Id>(&call, StatusCode::CREATED, r#"{"id":"a"}"#).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("POST /v1/zones: unreadable 201 reply ("),
        "{text}"
    );
    assert!(text.ends_with(r#": {"id":"a"}"#), "{text}");
}

#[test]
fn retry_after_is_read_in_seconds_and_capped() {
    let mut headers = reqwest::header::HeaderMap::new();
    assert_eq!(retry_after(&headers), None);
    headers.insert(reqwest::header::RETRY_AFTER, "2".parse().unwrap());
    assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
    headers.insert(reqwest::header::RETRY_AFTER, "3600".parse().unwrap());
    assert_eq!(retry_after(&headers), Some(MAX_RETRY_AFTER));
}

#[test]
fn base_urls_are_checked() {
    assert_eq!(
        Api::new("http://127.0.0.1:8080").unwrap().base,
        "http://127.0.0.1:8080"
    );
    assert_eq!(
        check_base("https://gw.example.org/").unwrap(),
        "https://gw.example.org"
    );
    for bad in [
        "",
        "127.0.0.1:8080",
        "ftp://h",
        "http://h:1/v1",
        "http://h:1?x=1",
        "ws://h:1",
    ] {
        let err = check_base(bad).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{bad:?} is not a base URL")),
            "{err}"
        );
    }
}
