"""Conformance handler (Python): answers every case of runtimes/conformance/cases.json,
selected by ?case=NAME. Each case says in cases.json what it returns."""

import binascii

B5 = "AAEC//4="

CASES = {
    "text_body": lambda e, i: {"status": 200, "body": "hello"},
    "json_object": lambda e, i: {"status": 200, "body": {"a": 1, "b": [True, None], "c": "x"}},
    "json_array": lambda e, i: {"body": [1, "two", {"three": 3}]},
    "bare_object": lambda e, i: {"hello": "world"},
    "bare_array": lambda e, i: [1, 2],
    "bare_string": lambda e, i: "plain",
    "bare_html": lambda e, i: "<!doctype html><p>hi</p>",
    "bare_number": lambda e, i: 42,
    "bare_null": lambda e, i: None,
    "bytes_body": lambda e, i: {"status": 200, "body": bytes([0, 1, 2, 255, 254])},
    "nested_base64": lambda e, i: {"status": 200, "body": {"is_base64": True, "body": B5}},
    "is_base64_body_base64": lambda e, i: {
        "status": 200,
        "is_base64": True,
        "body_base64": B5,
        "headers": {"content-type": "image/png"},
    },
    "is_base64_body": lambda e, i: {"is_base64": True, "body": B5},
    "isBase64Encoded": lambda e, i: {"statusCode": 200, "isBase64Encoded": True, "body": B5},
    "status_and_headers": lambda e, i: {
        "status": 201,
        "headers": {"x-one": "1", "x-num": 7, "set-cookie": ["a=1", "b=2"], "content-type": "text/csv"},
        "body": "a,b\n1,2\n",
    },
    "statusCode_alias": lambda e, i: {"statusCode": 202, "body": "accepted"},
    "status_only": lambda e, i: {"status": 204},
    "empty_body": lambda e, i: {"status": 200, "body": ""},
    "binary_echo": lambda e, i: {
        "status": 200,
        "headers": {"x-body-null": "true" if e["body"] is None else "false"},
        "body": binascii.a2b_base64(e["body_base64"]),
    },
    "utf8_echo": lambda e, i: {"status": 200, "headers": {"x-length": len(e["body"])}, "body": e["body"]},
    "path_param": lambda e, i: {"body": {"id": e["params"]["id"]}},
    "param_argument": lambda e, i: {"body": {"id": i}},
    "repeated_query": lambda e, i: {"body": {"tag": e["query"]["tag"]}},
    "request_headers": lambda e, i: {"body": {"x-conf": e["headers"]["x-conf"], "method": e["method"]}},
    "raised_error": lambda e, i: 1 / 0,
    "bad_status": lambda e, i: {"status": 700},
    "bad_header_value": lambda e, i: {"status": 200, "headers": {"x-a": {"nested": 1}}, "body": "x"},
    "bad_body_type": lambda e, i: {"status": 200, "body": object()},
    "bad_base64": lambda e, i: {"is_base64": True, "body_base64": "%%%"},
    "large_response": lambda e, i: {"status": 200, "body": "0123456789abcdef" * 262144},
    "large_request_echo": lambda e, i: {"status": 200, "body": e["body"]},
    "tuple_response": lambda e, i: ("made", 201, {"x-t": "1"}),
    "tuple_body_only": lambda e, i: ("just",),
}


def handler(event, id=None):
    return CASES[event["query"]["case"]](event, id)
