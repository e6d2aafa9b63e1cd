//! The HTTP/1 front's request screening (`server/h1.rs`): whatever httparse accepts and the
//! front takes must also be a target hyper's URI parser accepts (the front answers only a
//! subset of what hyper would), and the raw header view must read the same values as the
//! `HeaderMap` hyper would have built.
#![no_main]

use std::str::FromStr;

use gateway::auth::headers::{Headers, One};
use gateway::server::h1;
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut fields = [httparse::EMPTY_HEADER; 48];
    let mut req = httparse::Request::new(&mut fields);
    let Ok(httparse::Status::Complete(_)) = req.parse(data) else {
        return;
    };
    let Some(plain) = h1::screen(&req) else {
        return;
    };
    let target = req.path.unwrap();
    let pq = http::uri::PathAndQuery::from_str(target).expect("hyper accepts every target the front takes");
    assert_eq!(pq.path(), plain.path);
    assert_eq!(pq.query(), plain.query);
    assert_eq!(req.method.unwrap(), plain.method.as_str());

    let mut map = HeaderMap::new();
    for h in req.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).expect("httparse names are tokens");
        // hyper keeps values unchecked; `from_bytes` refuses a few it would keep.
        let Ok(value) = HeaderValue::from_bytes(h.value) else { return };
        map.append(name, value);
    }
    let raw = Headers::Raw(req.headers);
    for h in req.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).unwrap();
        assert_eq!(raw.one(&name), Headers::Map(&map).one(&name));
        assert!(!matches!(raw.one(&name), One::Missing));
    }
});
