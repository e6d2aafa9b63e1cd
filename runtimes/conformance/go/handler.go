// Conformance handler (Go): answers every case of runtimes/conformance/cases.json, selected
// by ?case=NAME, in FastFN's Go shape: the event is a map, the answer any value.
package main

import (
	"encoding/base64"
	"strings"
	"unicode/utf8"
)

var b5 = []byte{0, 1, 2, 255, 254}

func handler(event map[string]interface{}) interface{} {
	query, _ := event["query"].(map[string]interface{})
	params, _ := event["params"].(map[string]interface{})
	headers, _ := event["headers"].(map[string]interface{})
	text, _ := event["body"].(string)
	name, _ := query["case"].(string)
	switch name {
	case "text_body":
		return map[string]interface{}{"status": 200, "body": "hello"}
	case "json_object":
		return map[string]interface{}{"status": 200, "body": map[string]interface{}{"a": 1, "b": []interface{}{true, nil}, "c": "x"}}
	case "json_array":
		return map[string]interface{}{"body": []interface{}{1, "two", map[string]int{"three": 3}}}
	case "bare_object":
		return map[string]string{"hello": "world"}
	case "bare_array":
		return []int{1, 2}
	case "bare_string":
		return "plain"
	case "bare_html":
		return "<!doctype html><p>hi</p>"
	case "bare_number":
		return 42
	case "bare_null":
		return nil
	case "bytes_body":
		return map[string]interface{}{"body": b5}
	case "nested_base64":
		return map[string]interface{}{"body": map[string]interface{}{"is_base64": true, "body": "AAEC//4="}}
	case "is_base64_body_base64":
		return map[string]interface{}{"is_base64": true, "body_base64": "AAEC//4=", "headers": map[string]string{"content-type": "image/png"}}
	case "is_base64_body":
		return map[string]interface{}{"is_base64": true, "body": "AAEC//4="}
	case "isBase64Encoded":
		return map[string]interface{}{"statusCode": 200, "isBase64Encoded": true, "body": "AAEC//4="}
	case "status_and_headers":
		return map[string]interface{}{
			"status": 201,
			"headers": map[string]interface{}{"x-one": "1", "x-num": 7,
				"set-cookie": []string{"a=1", "b=2"}, "content-type": "text/csv"},
			"body": "a,b\n1,2\n",
		}
	case "statusCode_alias":
		return map[string]interface{}{"statusCode": 202, "body": "accepted"}
	case "status_only":
		return map[string]interface{}{"status": 204}
	case "empty_body":
		return map[string]interface{}{"status": 200, "body": ""}
	case "binary_echo":
		raw, _ := base64.StdEncoding.DecodeString(event["body_base64"].(string))
		null := "false"
		if event["body"] == nil {
			null = "true"
		}
		return map[string]interface{}{"body": raw, "headers": map[string]string{"x-body-null": null}}
	case "utf8_echo":
		return map[string]interface{}{"body": text, "headers": map[string]int{"x-length": utf8.RuneCountInString(text)}}
	case "path_param", "param_argument":
		// FastFN merges parameters into the event only where no field has the name; `id`
		// is the request id there, so the parameter is read from `params`.
		return map[string]interface{}{"body": map[string]interface{}{"id": params["id"]}}
	case "repeated_query":
		return map[string]interface{}{"body": map[string]interface{}{"tag": query["tag"]}}
	case "request_headers":
		// A struct keeps its field order in JSON (a map's keys are sorted).
		return map[string]interface{}{"body": struct {
			Conf   interface{} `json:"x-conf"`
			Method interface{} `json:"method"`
		}{headers["x-conf"], event["method"]}}
	case "raised_error":
		panic("conformance: raised on purpose")
	case "bad_status":
		return map[string]interface{}{"status": 700}
	case "bad_header_value":
		return map[string]interface{}{"status": 200, "headers": map[string]interface{}{"x-a": map[string]int{"nested": 1}}, "body": "x"}
	case "bad_body_type":
		return map[string]interface{}{"body": func() {}}
	case "bad_base64":
		return map[string]interface{}{"is_base64": true, "body_base64": "%%%"}
	case "large_response":
		return map[string]interface{}{"status": 200, "body": strings.Repeat("0123456789abcdef", 262144)}
	case "large_request_echo":
		return map[string]interface{}{"status": 200, "body": text}
	}
	return map[string]interface{}{"status": 400, "body": "unknown case " + name}
}
