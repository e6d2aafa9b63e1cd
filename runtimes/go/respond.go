// What a Go handler returns, turned into a `res` frame by the contract every edgefn runtime
// follows (runtimes/PROTOCOL.md, "What the handler returns"): a map (or a struct, through
// its JSON form) with any of `status`, `statusCode`, `headers`, `body`, `is_base64`,
// `isBase64Encoded`, `body_base64`, `proxy` is an envelope; anything else is a bare value
// (string → text or HTML, []byte → octet-stream, number or bool → its text, nil → empty
// 200, a map, slice or struct → JSON).
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

type edgefnResponse struct {
	status  int
	headers [][2]string
	body    []byte
	proxy   map[string]interface{}
}

var edgefnEnvelopeKeys = []string{"status", "statusCode", "headers", "body", "is_base64",
	"isBase64Encoded", "body_base64", "proxy"}

func edgefnRespond(answer interface{}) (*edgefnResponse, error) {
	v, err := edgefnPlain(answer)
	if err != nil {
		return nil, err
	}
	if m, ok := v.(map[string]interface{}); ok {
		for _, k := range edgefnEnvelopeKeys {
			if _, has := m[k]; has {
				return edgefnEnvelope(m)
			}
		}
	}
	return edgefnBare(answer, v)
}

// edgefnPlain unwraps what reflection must: a nil pointer, map or slice is nil; a pointer
// is what it points to; a map with string keys becomes map[string]interface{} (its values
// untouched, so a []byte body stays bytes); a struct becomes its JSON form.
func edgefnPlain(v interface{}) (interface{}, error) {
	switch v.(type) {
	case nil, string, []byte, json.RawMessage, json.Number, bool, map[string]interface{}:
		return v, nil
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Ptr, reflect.Interface:
		if rv.IsNil() {
			return nil, nil
		}
		return edgefnPlain(rv.Elem().Interface())
	case reflect.Map:
		if rv.IsNil() {
			return nil, nil
		}
		if rv.Type().Key().Kind() != reflect.String {
			return v, nil
		}
		m := make(map[string]interface{}, rv.Len())
		iter := rv.MapRange()
		for iter.Next() {
			m[iter.Key().String()] = iter.Value().Interface()
		}
		return m, nil
	case reflect.Slice:
		if rv.IsNil() {
			return nil, nil
		}
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			return rv.Bytes(), nil
		}
	case reflect.String:
		return rv.String(), nil
	case reflect.Bool:
		return rv.Bool(), nil
	case reflect.Struct:
		raw, err := edgefnJSON(v)
		if err != nil {
			return nil, err
		}
		var out interface{}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&out); err != nil {
			return nil, err
		}
		return out, nil
	}
	return v, nil
}

func edgefnEnvelope(m map[string]interface{}) (*edgefnResponse, error) {
	r := &edgefnResponse{status: 200, headers: [][2]string{}}
	status, has := m["status"]
	if !has {
		status, has = m["statusCode"]
	}
	if has {
		n, ok := edgefnInt(status)
		if !ok || n < 100 || n > 599 {
			return nil, fmt.Errorf("status is not an integer from 100 to 599")
		}
		r.status = int(n)
	}
	if p, err := edgefnPlain(m["proxy"]); err != nil {
		return nil, err
	} else if p != nil {
		obj, ok := p.(map[string]interface{})
		if !ok {
			return nil, fmt.Errorf("proxy is not an object")
		}
		r.proxy = obj
	}
	typed, err := r.addHeaders(m["headers"])
	if err != nil {
		return nil, err
	}
	var body []byte
	var kind string
	if m["is_base64"] == true || m["isBase64Encoded"] == true {
		text, _ := m["body_base64"].(string)
		if _, has := m["body_base64"]; !has {
			text, _ = m["body"].(string)
		}
		if body, err = edgefnDecode(text); err != nil {
			return nil, err
		}
		kind = "application/octet-stream"
	} else if body, kind, err = edgefnBody(m["body"]); err != nil {
		return nil, err
	}
	if !typed && kind != "" {
		r.headers = append(r.headers, [2]string{"content-type", kind})
	}
	r.body = body
	return r, nil
}

// addHeaders takes an object whose values are a string, a number or a list of them (a
// repeated header), in name order; true when it names a content type.
func (r *edgefnResponse) addHeaders(raw interface{}) (bool, error) {
	plain, err := edgefnPlain(raw)
	if err != nil || plain == nil {
		return false, err
	}
	h, ok := plain.(map[string]interface{})
	if !ok {
		return false, fmt.Errorf("headers is not an object")
	}
	names := make([]string, 0, len(h))
	for name := range h {
		names = append(names, name)
	}
	sort.Strings(names)
	typed := false
	for _, name := range names {
		values := []interface{}{h[name]}
		if rv := reflect.ValueOf(h[name]); rv.Kind() == reflect.Slice || rv.Kind() == reflect.Array {
			values = make([]interface{}, rv.Len())
			for i := range values {
				values[i] = rv.Index(i).Interface()
			}
		}
		for _, v := range values {
			text, ok := edgefnHeaderText(v)
			if !ok {
				return false, fmt.Errorf("header %s is not a string, a number or a list of them", name)
			}
			typed = typed || strings.EqualFold(name, "content-type")
			r.headers = append(r.headers, [2]string{name, text})
		}
	}
	return typed, nil
}

func edgefnHeaderText(v interface{}) (string, bool) {
	switch t := v.(type) {
	case string:
		return t, true
	case json.Number:
		return t.String(), true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String:
		return rv.String(), true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(rv.Int(), 10), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(rv.Uint(), 10), true
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(rv.Float(), 'f', -1, 64), true
	}
	return "", false
}

// edgefnBody is an envelope's `body` and its default content type. JSON is encoded from
// the value as returned, so a struct keeps its field order.
func edgefnBody(raw interface{}) ([]byte, string, error) {
	v, err := edgefnPlain(raw)
	if err != nil {
		return nil, "", err
	}
	switch t := v.(type) {
	case nil:
		return nil, "", nil
	case string:
		return []byte(t), "text/plain; charset=utf-8", nil
	case []byte:
		return t, "application/octet-stream", nil
	case json.RawMessage:
		return t, "application/json", nil
	case map[string]interface{}:
		if t["is_base64"] == true {
			text, _ := t["body"].(string)
			b, err := edgefnDecode(text)
			return b, "application/octet-stream", err
		}
	}
	b, err := edgefnJSON(raw)
	return b, "application/json", err
}

// edgefnBare answers a value that is not an envelope; `v` is its plain form.
func edgefnBare(answer, v interface{}) (*edgefnResponse, error) {
	r := &edgefnResponse{status: 200, headers: [][2]string{}}
	var kind string
	switch t := v.(type) {
	case nil:
		return r, nil
	case string:
		head := strings.ToLower(strings.TrimLeft(t, " \t\r\n"))
		kind = "text/plain; charset=utf-8"
		if strings.HasPrefix(head, "<!doctype html") || strings.HasPrefix(head, "<html") {
			kind = "text/html; charset=utf-8"
		}
		r.body = []byte(t)
	case bool:
		r.body, kind = []byte(strconv.FormatBool(t)), "text/plain; charset=utf-8"
	default:
		var err error
		if r.body, kind, err = edgefnBody(answer); err != nil {
			return nil, err
		}
		if _, number := edgefnNumber(v); number {
			kind = "text/plain; charset=utf-8"
		}
	}
	r.headers = append(r.headers, [2]string{"content-type", kind})
	return r, nil
}

// edgefnNumber: an integer or float kind, or a json.Number.
func edgefnNumber(v interface{}) (float64, bool) {
	if n, ok := v.(json.Number); ok {
		f, err := n.Float64()
		return f, err == nil
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(rv.Int()), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return float64(rv.Uint()), true
	case reflect.Float32, reflect.Float64:
		return rv.Float(), true
	}
	return 0, false
}

// edgefnInt: a number with an integral value (a status decoded from JSON is a float64).
func edgefnInt(v interface{}) (int64, bool) {
	if n, ok := v.(json.Number); ok {
		i, err := n.Int64()
		return i, err == nil
	}
	f, ok := edgefnNumber(v)
	if !ok || f != math.Trunc(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return int64(f), true
}

// edgefnJSON encodes without escaping <, > and & (the body is not embedded in HTML).
func edgefnJSON(v interface{}) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("the body cannot be sent as JSON: %v", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func edgefnDecode(text string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		b, err = base64.RawStdEncoding.DecodeString(text)
	}
	if err != nil {
		return nil, fmt.Errorf("is_base64 body is not valid base64")
	}
	return b, nil
}

func edgefnBase64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
