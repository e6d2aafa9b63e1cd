// Conformance handler (TypeScript): answers every case of runtimes/conformance/cases.json,
// selected by ?case=NAME. Each case says in cases.json what it returns.

type Params = Record<string, string>;

interface Event {
  method: string;
  query: Record<string, string>;
  params: Params;
  headers: Record<string, string>;
  body: string | null;
  body_base64?: string;
}

type Case = (event: Event, params: Params) => unknown;

const B5 = 'AAEC//4=';

const CASES: Record<string, Case> = {
  text_body: () => ({ status: 200, body: 'hello' }),
  json_object: () => ({ status: 200, body: { a: 1, b: [true, null], c: 'x' } }),
  json_array: () => ({ body: [1, 'two', { three: 3 }] }),
  bare_object: () => ({ hello: 'world' }),
  bare_array: () => [1, 2],
  bare_string: () => 'plain',
  bare_html: () => '<!doctype html><p>hi</p>',
  bare_number: () => 42,
  bare_null: () => null,
  bytes_body: () => ({ status: 200, body: Buffer.from([0, 1, 2, 255, 254]) }),
  nested_base64: () => ({ status: 200, body: { is_base64: true, body: B5 } }),
  is_base64_body_base64: () => ({ status: 200, is_base64: true, body_base64: B5, headers: { 'content-type': 'image/png' } }),
  is_base64_body: () => ({ is_base64: true, body: B5 }),
  isBase64Encoded: () => ({ statusCode: 200, isBase64Encoded: true, body: B5 }),
  status_and_headers: () => ({
    status: 201,
    headers: { 'x-one': '1', 'x-num': 7, 'set-cookie': ['a=1', 'b=2'], 'content-type': 'text/csv' },
    body: 'a,b\n1,2\n',
  }),
  statusCode_alias: () => ({ statusCode: 202, body: 'accepted' }),
  status_only: () => ({ status: 204 }),
  empty_body: () => ({ status: 200, body: '' }),
  binary_echo: (e: Event) => ({
    status: 200,
    headers: { 'x-body-null': String(e.body === null) },
    body: Buffer.from(e.body_base64, 'base64'),
  }),
  utf8_echo: (e: Event) => ({ status: 200, headers: { 'x-length': [...e.body].length }, body: e.body }),
  path_param: (e: Event) => ({ body: { id: e.params.id } }),
  param_argument: (_e: Event, params: Params) => ({ body: { id: params.id } }),
  repeated_query: (e: Event) => ({ body: { tag: e.query.tag } }),
  request_headers: (e: Event) => ({ body: { 'x-conf': e.headers['x-conf'], method: e.method } }),
  raised_error: () => {
    throw new Error('boom');
  },
  bad_status: () => ({ status: 700 }),
  bad_header_value: () => ({ status: 200, headers: { 'x-a': { nested: 1 } }, body: 'x' }),
  bad_body_type: () => ({ status: 200, body: () => 1 }),
  bad_base64: () => ({ is_base64: true, body_base64: '%%%' }),
  large_response: () => ({ status: 200, body: '0123456789abcdef'.repeat(262144) }),
  large_request_echo: (e: Event) => ({ status: 200, body: e.body }),
};

export const handler = async (event: Event, params: Params): Promise<unknown> =>
  CASES[event.query.case](event, params);
