// `runtimes` scenario: the same small JSON answer in every runtime.
use edgefn_sdk::{Event, Response};

fn handler(_event: Event) -> Response {
    Response::text("{\"ok\":true}").header("content-type", "application/json")
}
