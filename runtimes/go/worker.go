// edgefn's Go worker (runtimes/PROTOCOL.md, version 2), compiled with the user's handler
// into one binary by the gateway (gateway/src/pool/go_build.rs). The gateway generates
// `func main() { edgefnServe(edgefnWrap(handler)) }` beside these files; `handler` is
// FastFN's Go handler, `func handler(event map[string]interface{}) T` for any T.
//
// Data flow: connect to the socket named by argv[1] → `init` (env set with os.Setenv,
// as FastFN's wrapper does, once) → `ready` → one reading goroutine decodes each frame;
// a `req` becomes a goroutine that waits for one of the `concurrency` slots (argv[3]),
// builds FastFN's event map, calls the handler and writes `res` or `err`. edgefnTracker
// (no IO) decides what a `cancel` means for a request in each state.
//
// Standard library only: the gateway builds this with no module proxy.
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
)

const edgefnProtocol = 2

// The largest request frame the gateway may send (64 MiB body + 1 MiB header).
const edgefnMaxFrame = (64 << 20) + (1 << 20)

// A handler with its answer boxed: what edgefnServe calls.
type edgefnHandler func(map[string]interface{}) interface{}

// edgefnWrap accepts FastFN's handler shape with any result type; a handler of another
// shape is a compile error naming both types.
func edgefnWrap[T any](f func(map[string]interface{}) T) edgefnHandler {
	return func(event map[string]interface{}) interface{} { return f(event) }
}

// One decoded frame header (fields of every message type the gateway sends).
type edgefnFrame struct {
	Type    string                 `json:"type"`
	ID      uint64                 `json:"id"`
	Binary  bool                   `json:"binary"`
	Version json.RawMessage        `json:"version"`
	Env     map[string]interface{} `json:"env"`
	Event   map[string]interface{} `json:"event"`
}

func edgefnServe(handler edgefnHandler) {
	if len(os.Args) < 4 {
		fmt.Fprintln(os.Stderr, "usage: <worker> <socket> <handler path> <concurrency>")
		os.Exit(2)
	}
	conn, err := net.Dial("unix", os.Args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "edgefn: cannot connect to the gateway: %v\n", err)
		os.Exit(1)
	}
	concurrency, err := strconv.Atoi(os.Args[3])
	if err != nil || concurrency < 1 {
		concurrency = 1
	}
	reader := bufio.NewReaderSize(conn, 64<<10)
	out := &edgefnWriter{conn: conn}
	init, _, err := edgefnRead(reader)
	if err != nil || init.Type != "init" {
		fmt.Fprintf(os.Stderr, "edgefn: no init frame from the gateway: %v\n", err)
		os.Exit(1)
	}
	if string(init.Version) != "2" {
		sent := string(init.Version)
		if sent == "" {
			sent = "null"
		}
		out.send(map[string]interface{}{"type": "fatal",
			"error": "edgefn worker speaks protocol 2; the gateway sent version " + sent}, nil)
		os.Exit(1)
	}
	env := make(map[string]string, len(init.Env))
	for k, v := range init.Env {
		text, ok := v.(string)
		if !ok {
			raw, _ := json.Marshal(v)
			text = string(raw)
		}
		env[k] = text
		os.Setenv(k, text)
	}
	out.send(map[string]interface{}{"type": "ready", "version": edgefnProtocol, "pid": os.Getpid()}, nil)

	s := &edgefnServer{handler: handler, out: out, env: env,
		slots: make(chan struct{}, concurrency), tracker: edgefnTracker{}}
	for {
		frame, body, err := edgefnRead(reader)
		if err == io.EOF {
			os.Exit(0)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "edgefn: %v\n", err)
			os.Exit(1)
		}
		switch frame.Type {
		case "req":
			s.lock.Lock()
			s.tracker.queue(frame.ID)
			s.lock.Unlock()
			go s.run(frame, body)
		case "cancel":
			s.lock.Lock()
			now := s.tracker.cancel(frame.ID) == edgefnAckNow
			s.lock.Unlock()
			if now {
				out.send(map[string]interface{}{"type": "cancelled", "id": frame.ID}, nil)
			}
		}
	}
}

type edgefnServer struct {
	handler edgefnHandler
	out     *edgefnWriter
	env     map[string]string
	slots   chan struct{}
	lock    sync.Mutex
	tracker edgefnTracker
}

func (s *edgefnServer) run(frame *edgefnFrame, body []byte) {
	s.slots <- struct{}{}
	defer func() { <-s.slots }()
	s.lock.Lock()
	start := s.tracker.start(frame.ID)
	s.lock.Unlock()
	if !start {
		return
	}
	resp, kind, detail := edgefnCall(s.handler, edgefnEvent(frame, body, s.env))
	s.lock.Lock()
	done := s.tracker.finish(frame.ID)
	s.lock.Unlock()
	switch {
	case done == edgefnCancelled:
		s.out.send(map[string]interface{}{"type": "cancelled", "id": frame.ID}, nil)
	case kind != "":
		s.out.send(map[string]interface{}{"type": "err", "id": frame.ID, "kind": kind, "detail": detail}, nil)
	default:
		header := map[string]interface{}{"type": "res", "id": frame.ID,
			"status": resp.status, "headers": resp.headers}
		if resp.proxy != nil {
			header["proxy"] = resp.proxy
		}
		s.out.send(header, resp.body)
	}
}

// edgefnCall runs the handler; a panic is a handler_error (its stack to stderr), an answer
// outside the contract a bad_response.
func edgefnCall(handler edgefnHandler, event map[string]interface{}) (resp *edgefnResponse, kind, detail string) {
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintf(os.Stderr, "edgefn: the handler panicked: %v\n%s", p, debug.Stack())
			resp, kind, detail = nil, "handler_error", "go handler panicked"
		}
	}()
	answer := handler(event)
	resp, err := edgefnRespond(answer)
	if err != nil {
		fmt.Fprintf(os.Stderr, "edgefn: handler returned an invalid response: %v\n", err)
		return nil, "bad_response", err.Error()
	}
	return resp, "", ""
}

// edgefnEvent is FastFN's Go event: the gateway's event object with `body` (text, left
// out when empty; null and `body_base64` for binary), `env` (a copy per request: handlers
// run concurrently) and the route parameters also at the top level (`event["id"]`) where
// no field of that name exists.
func edgefnEvent(frame *edgefnFrame, body []byte, env map[string]string) map[string]interface{} {
	event := frame.Event
	if event == nil {
		event = map[string]interface{}{}
	}
	if frame.Binary {
		event["body"] = nil
		event["body_base64"] = edgefnBase64(body)
	} else if len(body) > 0 {
		event["body"] = string(body)
	}
	own := make(map[string]interface{}, len(env))
	for k, v := range env {
		own[k] = v
	}
	event["env"] = own
	if params, ok := event["params"].(map[string]interface{}); ok {
		for k, v := range params {
			if _, taken := event[k]; !taken && k != "body" && k != "body_base64" {
				event[k] = v
			}
		}
	}
	return event
}

// edgefnRead reads one frame, checking its size before allocating; io.EOF when the gateway
// closed the socket between frames.
func edgefnRead(r *bufio.Reader) (*edgefnFrame, []byte, error) {
	var head [8]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			return nil, nil, fmt.Errorf("the gateway closed the socket inside a frame")
		}
		return nil, nil, err
	}
	total := binary.BigEndian.Uint32(head[:4])
	hlen := binary.BigEndian.Uint32(head[4:])
	if total < 4 || total > edgefnMaxFrame || hlen > total-4 {
		return nil, nil, fmt.Errorf("oversized or malformed frame from the gateway (%d bytes)", total)
	}
	payload := make([]byte, total-4)
	if _, err := io.ReadFull(r, payload); err != nil {
		return nil, nil, fmt.Errorf("reading a frame: %v", err)
	}
	frame := &edgefnFrame{}
	if err := json.Unmarshal(payload[:hlen], frame); err != nil {
		return nil, nil, fmt.Errorf("frame header: %v", err)
	}
	return frame, payload[hlen:], nil
}

// edgefnWriter writes whole frames (one writev each) under one lock, so answers from
// several goroutines never interleave.
type edgefnWriter struct {
	lock sync.Mutex
	conn net.Conn
}

func (w *edgefnWriter) send(header map[string]interface{}, body []byte) {
	h, err := json.Marshal(header)
	if err != nil {
		fmt.Fprintf(os.Stderr, "edgefn: cannot encode a frame header: %v\n", err)
		os.Exit(1)
	}
	prefix := make([]byte, 8, 8+len(h))
	binary.BigEndian.PutUint32(prefix[:4], uint32(4+len(h)+len(body)))
	binary.BigEndian.PutUint32(prefix[4:], uint32(len(h)))
	bufs := net.Buffers{append(prefix, h...)}
	if len(body) > 0 {
		bufs = append(bufs, body)
	}
	w.lock.Lock()
	defer w.lock.Unlock()
	if _, err := bufs.WriteTo(w.conn); err != nil {
		os.Exit(1)
	}
}

type edgefnSlot int

const (
	edgefnQueued edgefnSlot = iota
	edgefnRunning
	edgefnAbandoned
)

type edgefnCancel int

const (
	edgefnAckNow edgefnCancel = iota
	edgefnAckWhenDone
)

type edgefnDone int

const (
	edgefnAnswer edgefnDone = iota
	edgefnCancelled
)

// edgefnTracker: a queued request cancelled is dropped and acknowledged at once; a running
// one is abandoned and acknowledged when the handler returns; an unknown id at once.
type edgefnTracker map[uint64]edgefnSlot

func (t edgefnTracker) queue(id uint64) { t[id] = edgefnQueued }

func (t edgefnTracker) cancel(id uint64) edgefnCancel {
	slot, known := t[id]
	switch {
	case !known:
		return edgefnAckNow
	case slot == edgefnQueued:
		delete(t, id)
		return edgefnAckNow
	default:
		t[id] = edgefnAbandoned
		return edgefnAckWhenDone
	}
}

// start is false when the request was cancelled while queued: it never runs.
func (t edgefnTracker) start(id uint64) bool {
	if slot, known := t[id]; known && slot == edgefnQueued {
		t[id] = edgefnRunning
		return true
	}
	return false
}

func (t edgefnTracker) finish(id uint64) edgefnDone {
	slot := t[id]
	delete(t, id)
	if slot == edgefnAbandoned {
		return edgefnCancelled
	}
	return edgefnAnswer
}
