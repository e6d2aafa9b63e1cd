<?php
// Conformance handler (PHP): answers every case of runtimes/conformance/cases.json, selected
// by ?case=NAME. PHP strings are bytes, so "bytes" bodies are strings that are not UTF-8.

const B5 = 'AAEC//4=';

function handler(array $event, array $params)
{
    $case = $event['query']['case'];
    return match ($case) {
        'text_body' => ['status' => 200, 'body' => 'hello'],
        'json_object' => ['status' => 200, 'body' => ['a' => 1, 'b' => [true, null], 'c' => 'x']],
        'json_array' => ['body' => [1, 'two', ['three' => 3]]],
        'bare_object' => ['hello' => 'world'],
        'bare_array' => [1, 2],
        'bare_string' => 'plain',
        'bare_html' => '<!doctype html><p>hi</p>',
        'bare_number' => 42,
        'bare_null' => null,
        'bytes_body' => ['status' => 200, 'body' => "\x00\x01\x02\xff\xfe"],
        'nested_base64' => ['status' => 200, 'body' => ['is_base64' => true, 'body' => B5]],
        'is_base64_body_base64' => ['status' => 200, 'is_base64' => true, 'body_base64' => B5, 'headers' => ['content-type' => 'image/png']],
        'is_base64_body' => ['is_base64' => true, 'body' => B5],
        'isBase64Encoded' => ['statusCode' => 200, 'isBase64Encoded' => true, 'body' => B5],
        'status_and_headers' => [
            'status' => 201,
            'headers' => ['x-one' => '1', 'x-num' => 7, 'set-cookie' => ['a=1', 'b=2'], 'content-type' => 'text/csv'],
            'body' => "a,b\n1,2\n",
        ],
        'statusCode_alias' => ['statusCode' => 202, 'body' => 'accepted'],
        'status_only' => ['status' => 204],
        'empty_body' => ['status' => 200, 'body' => ''],
        'binary_echo' => [
            'status' => 200,
            'headers' => ['x-body-null' => $event['body'] === null ? 'true' : 'false'],
            'body' => base64_decode($event['body_base64'], true),
        ],
        'utf8_echo' => [
            'status' => 200,
            'headers' => ['x-length' => count(preg_split('//u', $event['body'], -1, PREG_SPLIT_NO_EMPTY))],
            'body' => $event['body'],
        ],
        'path_param' => ['body' => ['id' => $event['params']['id']]],
        'param_argument' => ['body' => ['id' => $params['id']]],
        'repeated_query' => ['body' => ['tag' => $event['query']['tag']]],
        'request_headers' => ['body' => ['x-conf' => $event['headers']['x-conf'], 'method' => $event['method']]],
        'raised_error' => throw new RuntimeException('conformance: raised on purpose'),
        'bad_status' => ['status' => 700],
        'bad_header_value' => ['status' => 200, 'headers' => ['x-a' => ['nested' => 1]], 'body' => 'x'],
        'bad_body_type' => ['status' => 200, 'body' => static fn () => 1],
        'bad_base64' => ['is_base64' => true, 'body_base64' => '%%%'],
        'large_response' => ['status' => 200, 'body' => str_repeat('0123456789abcdef', 262144)],
        'large_request_echo' => ['status' => 200, 'body' => $event['body']],
    };
}
