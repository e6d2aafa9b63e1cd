<?php
// edgefn PHP worker: loads one FastFN-style handler once and serves framed requests (protocol
// v2, runtimes/PROTOCOL.md), one at a time. Started as
//   php edgefn-worker.php <socket> <handler.php> <concurrency>
// Data flow: init frame → env applied once (getenv, $_ENV, event.env) → handler file required
// once (a `handler` function, or the `invoke.handler` name) → for each req frame: event built
// around the one body string → handler($event[, $params]) → response normalised → res frame.
// Frames that arrive while a request runs wait in the socket; before each request every frame
// already readable is drained, so a cancel for a queued request drops it unrun.
// stdout/stderr belong to the handler (the gateway captures and masks them); what the handler
// echoes becomes the response body when it returns nothing, as in FastFN.

declare(strict_types=1);

const EDGEFN_PROTOCOL = 2;
const EDGEFN_MAX_FRAME = (64 << 20) + (1 << 20);

final class EdgefnBadResponse extends Exception
{
}

final class EdgefnChannel
{
    /** @var resource */
    private $sock;
    /** @var array<int, array{0: array, 1: string}> frames read ahead of the running request */
    public array $queued = [];

    public function __construct(string $path)
    {
        $sock = @stream_socket_client('unix://' . $path, $errno, $errstr, 10.0);
        if ($sock === false) {
            fwrite(STDERR, "edgefn worker: cannot connect to {$path}: {$errstr}\n");
            exit(1);
        }
        stream_set_timeout($sock, 86400 * 365);
        $this->sock = $sock;
    }

    /** One whole frame, or null when the gateway closed the socket. */
    public function read(): ?array
    {
        $head = $this->exactly(8);
        if ($head === null) {
            return null;
        }
        ['t' => $total, 'h' => $hlen] = unpack('Nt/Nh', $head);
        if ($total > EDGEFN_MAX_FRAME || $total < 4 || $hlen > $total - 4) {
            fwrite(STDERR, "edgefn worker: oversized or malformed frame from the gateway\n");
            exit(1);
        }
        $json = $this->exactly($hlen);
        $body = $this->exactly($total - 4 - $hlen);
        if ($json === null || $body === null) {
            return null;
        }
        $header = json_decode($json, true);
        if (!is_array($header)) {
            fwrite(STDERR, "edgefn worker: a frame header is not a JSON object\n");
            exit(1);
        }
        return [$header, $body];
    }

    /** The next frame: one read ahead first, else from the socket. */
    public function next(): ?array
    {
        return array_shift($this->queued) ?? $this->read();
    }

    /** Reads every frame already waiting, without blocking for a new one; a cancel among
     * them drops its queued request at once. */
    public function drain(): void
    {
        while (true) {
            $r = [$this->sock];
            $w = $e = null;
            if (@stream_select($r, $w, $e, 0) < 1) {
                return;
            }
            $frame = $this->read();
            if ($frame === null) {
                return;
            }
            if (($frame[0]['type'] ?? null) === 'cancel') {
                $this->cancel($frame[0]['id'] ?? null);
            } else {
                $this->queued[] = $frame;
            }
        }
    }

    /** A request that is not running (queued, or already answered) is acknowledged at once. */
    public function cancel(mixed $id): void
    {
        $this->queued = array_values(array_filter(
            $this->queued,
            static fn (array $f): bool => !(($f[0]['type'] ?? null) === 'req' && ($f[0]['id'] ?? null) === $id)
        ));
        $this->send(['type' => 'cancelled', 'id' => $id]);
    }

    public function send(array $header, string $body = ''): void
    {
        $h = json_encode($header, JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE);
        $frame = pack('NN', 4 + strlen($h) + strlen($body), strlen($h)) . $h . $body;
        $off = 0;
        $len = strlen($frame);
        while ($off < $len) {
            $n = fwrite($this->sock, $off === 0 ? $frame : substr($frame, $off));
            if ($n === false || $n === 0) {
                exit(1);
            }
            $off += $n;
        }
    }

    private function exactly(int $n): ?string
    {
        if ($n === 0) {
            return '';
        }
        $data = stream_get_contents($this->sock, $n);
        return is_string($data) && strlen($data) === $n ? $data : null;
    }
}

/**
 * Lets a FastFN-style handler `require __DIR__ . '/vendor/autoload.php'` although its
 * composer install lives in the cache (nothing is written into the functions tree): while
 * the handler file loads, the `file` wrapper is replaced by this one, which answers that one
 * path with a stub returning the loader already required from the cache, and passes every
 * other file operation to the real filesystem. The real wrapper is back once loading ends.
 */
final class EdgefnVendorShim
{
    public static string $path = '';
    /** @var resource|null */
    public $context;
    /** @var resource|false */
    private $h = false;
    /** @var resource|false */
    private $d = false;

    public static function around(string $fnDir, callable $load): mixed
    {
        $real = realpath($fnDir);
        self::$path = ($real === false ? $fnDir : $real) . '/vendor/autoload.php';
        stream_wrapper_unregister('file');
        stream_wrapper_register('file', self::class);
        try {
            return $load();
        } finally {
            stream_wrapper_restore('file');
        }
    }

    private static function real(callable $op): mixed
    {
        stream_wrapper_restore('file');
        try {
            return $op();
        } finally {
            stream_wrapper_unregister('file');
            stream_wrapper_register('file', self::class);
        }
    }

    private static function isShim(string $path): bool
    {
        return (str_starts_with($path, 'file://') ? substr($path, 7) : $path) === self::$path;
    }

    public function stream_open(string $path, string $mode, int $options, ?string &$opened): bool
    {
        if (self::isShim($path)) {
            $this->h = fopen('php://memory', 'r+');
            fwrite($this->h, "<?php\nreturn \$GLOBALS['__edgefn_composer_loader'];\n");
            rewind($this->h);
            return true;
        }
        $this->h = self::real(static fn () => @fopen($path, $mode));
        return $this->h !== false;
    }

    public function url_stat(string $path, int $flags): array|false
    {
        if (self::isShim($path)) {
            $path = getenv('EDGEFN_PHP_VENDOR') . '/autoload.php';
        }
        $link = ($flags & STREAM_URL_STAT_LINK) !== 0;
        return self::real(static fn () => $link ? @lstat($path) : @stat($path));
    }

    public function stream_read(int $n): string|false { return fread($this->h, $n); }
    public function stream_write(string $data): int|false { return fwrite($this->h, $data); }
    public function stream_eof(): bool { return feof($this->h); }
    public function stream_close(): void { fclose($this->h); }
    public function stream_stat(): array|false { return fstat($this->h); }
    public function stream_seek(int $o, int $w): bool { return fseek($this->h, $o, $w) === 0; }
    public function stream_tell(): int|false { return ftell($this->h); }
    public function stream_flush(): bool { return fflush($this->h); }
    public function stream_lock(int $op): bool { return flock($this->h, $op); }
    public function stream_truncate(int $n): bool { return ftruncate($this->h, $n); }
    public function stream_set_option(int $o, int $a, ?int $b): bool { return false; }
    public function stream_metadata(string $p, int $o, mixed $v): bool
    {
        return self::real(static fn () => match ($o) {
            STREAM_META_TOUCH => touch($p, ...(array) $v),
            STREAM_META_ACCESS => chmod($p, $v),
            STREAM_META_OWNER, STREAM_META_OWNER_NAME => chown($p, $v),
            STREAM_META_GROUP, STREAM_META_GROUP_NAME => chgrp($p, $v),
            default => false,
        });
    }
    public function dir_opendir(string $p, int $o): bool
    {
        $this->d = self::real(static fn () => @opendir($p));
        return $this->d !== false;
    }
    public function dir_readdir(): string|false { return readdir($this->d); }
    public function dir_rewinddir(): bool { rewinddir($this->d); return true; }
    public function dir_closedir(): bool { closedir($this->d); return true; }
    public function unlink(string $p): bool { return self::real(static fn () => @unlink($p)); }
    public function rename(string $a, string $b): bool { return self::real(static fn () => @rename($a, $b)); }
    public function mkdir(string $p, int $m, int $o): bool
    {
        return self::real(static fn () => @mkdir($p, $m, ($o & STREAM_MKDIR_RECURSIVE) !== 0));
    }
    public function rmdir(string $p, int $o): bool { return self::real(static fn () => @rmdir($p)); }
}

function edgefn_fatal(EdgefnChannel $ch, string $error): never
{
    $ch->send(['type' => 'fatal', 'error' => $error]);
    exit(1);
}

/** Requires the handler file once; returns the callable's name, or null for a script that
 * answers by what it prints (FastFN's "magic" mode, re-run per request). */
function edgefn_load(string $path, ?string $wanted): ?string
{
    $before = array_flip(array_map('strtolower', get_defined_functions()['user']));
    ob_start();
    try {
        (static function () use ($path): void {
            // A script without a handler function reads these; at load they are empty.
            $event = [];
            $params = [];
            require $path;
        })();
    } finally {
        ob_end_clean();
    }
    if ($wanted !== null) {
        if (!function_exists($wanted)) {
            throw new RuntimeException("{$path} defines no function `{$wanted}` (invoke.handler)");
        }
        return $wanted;
    }
    $new = array_values(array_filter(
        get_defined_functions()['user'],
        static fn (string $f): bool => !isset($before[strtolower($f)])
    ));
    for ($i = count($new) - 1; $i >= 0; $i--) {
        $parts = explode('\\', $new[$i]);
        if (strtolower(end($parts)) === 'handler') {
            return $new[$i];
        }
    }
    return function_exists('handler') ? 'handler' : null;
}

function edgefn_has_header(array $headers, string $name): bool
{
    foreach ($headers as $k => $_) {
        if (strcasecmp((string) $k, $name) === 0) {
            return true;
        }
    }
    return false;
}

function edgefn_default_type(array &$headers, string $type): void
{
    if (!edgefn_has_header($headers, 'content-type')) {
        $headers['content-type'] = $type;
    }
}

function edgefn_json(mixed $value): string
{
    $s = json_encode($value, JSON_UNESCAPED_SLASHES | JSON_PRESERVE_ZERO_FRACTION);
    if (!is_string($s)) {
        throw new EdgefnBadResponse('body cannot be encoded as JSON: ' . json_last_error_msg());
    }
    return $s;
}

function edgefn_base64(mixed $data): string
{
    if (!is_string($data)) {
        throw new EdgefnBadResponse('is_base64 body is not a string');
    }
    $bytes = base64_decode($data, true);
    if ($bytes === false) {
        throw new EdgefnBadResponse('is_base64 body is not valid base64');
    }
    return $bytes;
}

/** Body forms of the contract: text (bytes that are not UTF-8 default to octet-stream), a
 * JSON value, or `['is_base64' => true, 'body' => …]`; `$bare` is a value returned without
 * an envelope, whose scalars are sent as text. */
function edgefn_body(mixed $body, array &$headers, bool $bare): string
{
    if ($body === null) {
        return '';
    }
    if (is_string($body)) {
        $utf8 = preg_match('//u', $body) === 1;
        edgefn_default_type($headers, match (true) {
            !$utf8 => 'application/octet-stream',
            $bare && edgefn_looks_html($body) => 'text/html; charset=utf-8',
            default => 'text/plain; charset=utf-8',
        });
        return $body;
    }
    if (is_array($body) && ($body['is_base64'] ?? null) === true) {
        edgefn_default_type($headers, 'application/octet-stream');
        return edgefn_base64($body['body'] ?? '');
    }
    if ($bare && (is_int($body) || is_float($body) || is_bool($body))) {
        edgefn_default_type($headers, 'text/plain; charset=utf-8');
        return edgefn_json($body);
    }
    $sendable = is_array($body) || is_int($body) || is_float($body) || is_bool($body)
        || $body instanceof stdClass || $body instanceof JsonSerializable;
    if ($sendable) {
        edgefn_default_type($headers, 'application/json');
        return edgefn_json($body);
    }
    throw new EdgefnBadResponse('body of type ' . get_debug_type($body) . ' cannot be sent');
}

function edgefn_looks_html(string $s): bool
{
    $t = strtolower(substr(ltrim(substr($s, 0, 4096)), 0, 15));
    return str_starts_with($t, '<!doctype html') || str_starts_with($t, '<html');
}

/** [status, [[name, value], …], body bytes, proxy or null]; `$printed` is what the handler
 * echoed, the body when it returned none (FastFN's convention); `$scoped` the
 * `$FASTFN_STATUS` and `$FASTFN_HEADERS` a script set, used when it returned no envelope (as
 * FastFN does: an invalid status or a non-scalar header value is ignored). A `proxy` array is
 * FastFN's edge proxy: the gateway fetches it (checked against the function's `edge` config). */
function edgefn_response(mixed $result, string $printed, array $scoped = [null, null]): array
{
    $contract = ['status', 'statusCode', 'headers', 'body', 'is_base64', 'isBase64Encoded', 'body_base64', 'proxy'];
    $explicit = is_array($result) && !array_is_list($result) && array_intersect($contract, array_keys($result)) !== [];
    $bare = false;
    if ($explicit) {
        $status = $result['status'] ?? $result['statusCode'] ?? 200;
        $headers = $result['headers'] ?? [];
        $body = $result['body'] ?? null;
        if (($result['is_base64'] ?? $result['isBase64Encoded'] ?? false) === true) {
            $body = ['is_base64' => true, 'body' => $result['body_base64'] ?? $body ?? ''];
        } elseif (($body === null || $body === '') && $printed !== '') {
            $body = $printed;
        }
    } else {
        [$status, $headers, $bare] = [200, [], true];
        [$scopedStatus, $scopedHeaders] = $scoped;
        if (is_int($scopedStatus) && $scopedStatus >= 100 && $scopedStatus <= 599) {
            $status = $scopedStatus;
        }
        foreach (is_array($scopedHeaders) ? $scopedHeaders : [] as $k => $v) {
            if (is_string($k) && trim($k) !== '' && is_scalar($v)) {
                $headers[$k] = (string) $v;
            }
        }
        $body = match (true) {
            $result === null => $printed === '' ? null : $printed,
            is_string($result) => $printed . $result,
            default => $result,
        };
    }
    if (!is_int($status) || $status < 100 || $status > 599) {
        throw new EdgefnBadResponse('status must be a valid HTTP code');
    }
    if (!is_array($headers)) {
        throw new EdgefnBadResponse('headers must be an object');
    }
    $proxy = $explicit ? ($result['proxy'] ?? null) : null;
    if ($proxy !== null && (!is_array($proxy) || ($proxy !== [] && array_is_list($proxy)))) {
        throw new EdgefnBadResponse('proxy must be an object when provided');
    }
    $payload = edgefn_body($body, $headers, $bare);
    $pairs = [];
    foreach ($headers as $name => $value) {
        if (!is_string($name) || $name === '') {
            throw new EdgefnBadResponse('a header name is not a string');
        }
        if (is_array($value) && !array_is_list($value)) {
            throw new EdgefnBadResponse("header {$name} is an object, not a value or a list");
        }
        foreach (is_array($value) ? $value : [$value] as $item) {
            if (!is_string($item) && !is_int($item) && !is_float($item)) {
                throw new EdgefnBadResponse('a header value is not a string or number');
            }
            $pairs[] = [$name, (string) $item];
        }
    }
    // An empty PHP array would encode as a JSON list; the gateway reads an object.
    return [$status, $pairs, $payload, $proxy === null ? null : (object) $proxy];
}

/** Runs one request; echo output is captured, exceptions become `err` frames. */
function edgefn_serve(EdgefnChannel $ch, int $id, array $event, ?string $fn, string $path): void
{
    $level = ob_get_level();
    ob_start();
    try {
        $scoped = [null, null];
        if ($fn === null) {
            [$result, $scoped] = (static function () use ($path, $event) {
                $params = is_array($event['params'] ?? null) ? $event['params'] : [];
                // FastFN's script mode: the status and headers the script sets here.
                $FASTFN_STATUS = null;
                $FASTFN_HEADERS = null;
                $r = include $path;
                return [$r, [$FASTFN_STATUS, $FASTFN_HEADERS]];
            })();
            $result = $result === 1 ? null : $result;
        } else {
            $params = is_array($event['params'] ?? null) ? $event['params'] : [];
            $result = (new ReflectionFunction($fn))->getNumberOfParameters() > 1
                ? $fn($event, $params)
                : $fn($event);
        }
        $printed = '';
        while (ob_get_level() > $level) {
            $printed = ob_get_clean() . $printed;
        }
        [$status, $pairs, $payload, $proxy] = edgefn_response($result, $printed, $scoped);
    } catch (EdgefnBadResponse $e) {
        while (ob_get_level() > $level) {
            ob_end_clean();
        }
        fwrite(STDERR, 'edgefn: handler returned an invalid response: ' . $e->getMessage() . "\n");
        $ch->send(['type' => 'err', 'id' => $id, 'kind' => 'bad_response', 'status' => 500, 'detail' => $e->getMessage()]);
        return;
    } catch (Throwable $e) {
        while (ob_get_level() > $level) {
            ob_end_clean();
        }
        fwrite(STDERR, $e . "\n");
        // FastFN's daemon answers 500 with the exception's message.
        $ch->send(['type' => 'err', 'id' => $id, 'kind' => 'handler_error', 'status' => 500, 'detail' => $e->getMessage()]);
        return;
    }
    $res = ['type' => 'res', 'id' => $id, 'status' => $status, 'headers' => $pairs];
    if ($proxy !== null) {
        $res['proxy'] = $proxy;
    }
    $ch->send($res, $payload);
}

function edgefn_main(array $argv): void
{
    [, $sockPath, $handlerPath] = $argv + [null, '', '', '1'];
    $ch = new EdgefnChannel($sockPath);
    $first = $ch->read();
    if ($first === null || ($first[0]['type'] ?? null) !== 'init') {
        fwrite(STDERR, "edgefn worker: no init frame from the gateway\n");
        exit(1);
    }
    $init = $first[0];
    $version = $init['version'] ?? null;
    if ($version !== EDGEFN_PROTOCOL) {
        edgefn_fatal($ch, 'edgefn worker speaks protocol 2; the gateway sent version ' . json_encode($version));
    }
    $env = is_array($init['env'] ?? null) ? $init['env'] : [];
    foreach ($env as $k => $v) {
        putenv("{$k}={$v}");
        $_ENV[$k] = $v;
        $_SERVER[$k] = $v;
    }
    set_error_handler(static function (int $severity, string $message, string $file, int $line): bool {
        if (!(error_reporting() & $severity)) {
            return false;
        }
        throw new ErrorException($message, 0, $severity, $file, $line);
    });
    $vendor = getenv('EDGEFN_PHP_VENDOR');
    try {
        $wanted = is_string($init['handler_name'] ?? null) ? $init['handler_name'] : null;
        if (is_string($vendor) && $vendor !== '') {
            $GLOBALS['__edgefn_composer_loader'] = require $vendor . '/autoload.php';
            $fn = EdgefnVendorShim::around(dirname($handlerPath), static fn () => edgefn_load($handlerPath, $wanted));
        } else {
            $fn = edgefn_load($handlerPath, $wanted);
        }
    } catch (Throwable $e) {
        fwrite(STDERR, $e . "\n");
        edgefn_fatal($ch, get_class($e) . ' while loading the handler: ' . $e->getMessage());
    }
    $ch->send(['type' => 'ready', 'version' => EDGEFN_PROTOCOL, 'pid' => getmypid()]);
    while (true) {
        $ch->drain();
        $frame = $ch->next();
        if ($frame === null) {
            return;
        }
        [$header, $body] = $frame;
        $type = $header['type'] ?? null;
        if ($type === 'cancel') {
            $ch->cancel($header['id'] ?? null);
            continue;
        }
        if ($type !== 'req') {
            continue;
        }
        $event = is_array($header['event'] ?? null) ? $header['event'] : [];
        if (($header['binary'] ?? false) === true) {
            $event['body'] = null;
            $event['body_base64'] = base64_encode($body);
        } elseif ($body !== '') {
            // No body, no 'body' key: FastFN's event.
            $event['body'] = $body;
        }
        $event['env'] = $env;
        edgefn_serve($ch, (int) $header['id'], $event, $fn, $handlerPath);
    }
}

edgefn_main($argv);
