// Conformance handler (Rust): answers every case of runtimes/conformance/cases.json, selected
// by ?case=NAME. A Rust handler returns a `Response`, so the "bare" cases answer with the
// response the other runtimes derive from a bare value, and the cases of unsendable values
// (a nested header object, a function body, bad base64) answer with a response the SDK
// refuses (a header value holding a line break): the gateway must answer 502 for each.

use edgefn_sdk::{Event, Response};
use serde_json::json;

const B5: [u8; 5] = [0, 1, 2, 255, 254];

fn handler(event: Event) -> Response {
    let invalid = || Response::text("x").header("x-a", "line\nbreak");
    match event.query("case").unwrap_or("") {
        "text_body" => Response::text("hello"),
        "json_object" => Response::json(&json!({"a": 1, "b": [true, null], "c": "x"})),
        "json_array" => Response::json(&json!([1, "two", {"three": 3}])),
        "bare_object" => Response::json(&json!({"hello": "world"})),
        "bare_array" => Response::json(&json!([1, 2])),
        "bare_string" => Response::text("plain"),
        "bare_html" => Response::text("<!doctype html><p>hi</p>").header("content-type", "text/html; charset=utf-8"),
        "bare_number" => Response::text("42"),
        "bare_null" | "empty_body" => Response::new(200),
        "bytes_body" | "nested_base64" | "is_base64_body" | "isBase64Encoded" => Response::bytes(B5),
        "is_base64_body_base64" => Response::bytes(B5).header("content-type", "image/png"),
        "status_and_headers" => Response::text("a,b\n1,2\n")
            .status(201)
            .header("x-one", "1")
            .header("x-num", 7.to_string())
            .header("set-cookie", "a=1")
            .header("set-cookie", "b=2")
            .header("content-type", "text/csv"),
        "statusCode_alias" => Response::text("accepted").status(202),
        "status_only" => Response::new(204),
        "binary_echo" => Response::bytes(event.body.clone()).header("x-body-null", event.binary.to_string()),
        "utf8_echo" => {
            let text = event.body_text().unwrap_or("").to_owned();
            Response::text(text.clone()).header("x-length", text.chars().count().to_string())
        }
        "path_param" | "param_argument" => Response::json(&json!({"id": event.param("id")})),
        // `Event::query` flattens values to text; the array FastFN sends is in `raw`.
        "repeated_query" => Response::json(&json!({"tag": event.raw["query"]["tag"]})),
        "request_headers" => Response::text(format!(
            r#"{{"x-conf":{},"method":{}}}"#,
            json!(event.header("x-conf")),
            json!(event.method)
        )),
        "raised_error" => panic!("conformance: raised on purpose"),
        "bad_status" => Response::new(700),
        "bad_header_value" | "bad_body_type" | "bad_base64" => invalid(),
        "large_response" => Response::text("0123456789abcdef".repeat(262_144)),
        "large_request_echo" => Response::new(200).body(event.body),
        other => Response::text(format!("unknown case {other}")).status(400),
    }
}
