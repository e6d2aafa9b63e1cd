//! Fixed tables that turn a request's method and status into an index, so the hot path
//! finds its pre-built counter with two array lookups instead of building a label set.
//!
//! Methods: the nine standard methods plus `OTHER` for extension methods (bounded
//! cardinality whatever clients send). Statuses: the codes a gateway and its functions
//! commonly answer; any other code is "rare" and takes the slower registration path.

use http::{Method, StatusCode};

use super::names::OTHER_METHOD;

/// Method label values, indexed by [`method_index`].
pub const METHODS: [&str; 10] = [
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "PATCH",
    "OPTIONS",
    "CONNECT",
    "TRACE",
    OTHER_METHOD,
];

/// Index into [`METHODS`]; extension methods map to `OTHER`.
pub fn method_index(m: &Method) -> usize {
    // `Method` compares standard methods by enum tag: no string work here.
    const STANDARD: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    STANDARD
        .iter()
        .position(|s| s == m)
        .unwrap_or(METHODS.len() - 1)
}

/// Status codes with a pre-computed slot, and their label text.
pub const STATUSES: [(u16, &str); 26] = [
    (200, "200"),
    (201, "201"),
    (202, "202"),
    (204, "204"),
    (206, "206"),
    (301, "301"),
    (302, "302"),
    (304, "304"),
    (307, "307"),
    (308, "308"),
    (400, "400"),
    (401, "401"),
    (403, "403"),
    (404, "404"),
    (405, "405"),
    (408, "408"),
    (409, "409"),
    (413, "413"),
    (415, "415"),
    (422, "422"),
    (429, "429"),
    (500, "500"),
    (501, "501"),
    (502, "502"),
    (503, "503"),
    (504, "504"),
];

const NO_SLOT: u8 = u8::MAX;

/// Status code (100..=999) → slot in [`STATUSES`], built at compile time.
static STATUS_SLOT: [u8; 1000] = {
    let mut table = [NO_SLOT; 1000];
    let mut i = 0;
    while i < STATUSES.len() {
        table[STATUSES[i].0 as usize] = i as u8;
        i += 1;
    }
    table
};

/// Slot of a common status, `None` for a rare one.
pub fn status_slot(s: StatusCode) -> Option<usize> {
    match STATUS_SLOT[usize::from(s.as_u16())] {
        NO_SLOT => None,
        slot => Some(usize::from(slot)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_standard_method_has_its_own_label() {
        for (i, name) in METHODS.iter().enumerate().take(9) {
            let m = Method::from_bytes(name.as_bytes()).unwrap();
            assert_eq!(method_index(&m), i, "{name}");
        }
        let ext = Method::from_bytes(b"PURGE").unwrap();
        assert_eq!(METHODS[method_index(&ext)], "OTHER");
    }

    #[test]
    fn status_slots_round_trip_and_rare_codes_have_none() {
        for (code, text) in STATUSES {
            let slot = status_slot(StatusCode::from_u16(code).unwrap()).unwrap();
            assert_eq!(STATUSES[slot].1, text);
            assert_eq!(text, code.to_string());
        }
        assert_eq!(status_slot(StatusCode::IM_A_TEAPOT), None);
        assert_eq!(status_slot(StatusCode::from_u16(999).unwrap()), None);
        assert_eq!(status_slot(StatusCode::from_u16(100).unwrap()), None);
    }
}
