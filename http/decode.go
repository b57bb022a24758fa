package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	nethttp "net/http"
	"reflect"
	"slices"
	"strings"

	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/errclass"
)

// MaxBodySize bounds request bodies.
const MaxBodySize = 1 << 20

// decode reads a JSON request body into v: at most MaxBodySize bytes, no
// unknown fields (a typo such as "singal" must not be a silent no-op),
// nothing after the object. An empty body is {}.
func decode(w nethttp.ResponseWriter, r *nethttp.Request, v any) error {
	body, err := io.ReadAll(nethttp.MaxBytesReader(w, r.Body, MaxBodySize))
	if err != nil {
		var tooLarge *nethttp.MaxBytesError
		if errors.As(err, &tooLarge) {
			return fmt.Errorf("request body is larger than %d bytes: %w", MaxBodySize, errBodyTooLarge)
		}
		return fmt.Errorf("read request body: %v: %w", err, errclass.InvalidArgument)
	}
	return decodeBytes(body, v)
}

// decodeBytes is decode's parsing, separate so that it can be fuzzed.
func decodeBytes(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %w", describeJSONError(err), errclass.InvalidArgument)
	}
	if dec.More() {
		return fmt.Errorf("malformed JSON: more than one value in the body: %w", errclass.InvalidArgument)
	}
	// encoding/json matches keys to fields ignoring case, so
	// DisallowUnknownFields lets {"bundlepath": ...} through, and in
	// {"signal": 15, "SIGNAL": 9} the last one silently wins. The
	// contract's field names are exact.
	var raw any
	if err := json.Unmarshal(body, &raw); err != nil {
		return fmt.Errorf("%s: %w", describeJSONError(err), errclass.InvalidArgument)
	}
	if err := exactFields(raw, reflect.TypeOf(v)); err != nil {
		return fmt.Errorf("%w: %w", err, errclass.InvalidArgument)
	}
	return nil
}

// unmarshaler is the interface of types that decode themselves.
var unmarshaler = reflect.TypeFor[json.Unmarshaler]()

// exactFields checks that every object key in v, the generic decoding of a
// body that decoded into a value of type t, is spelled exactly as the json
// name of a field of t.
func exactFields(v any, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshaler) {
		return nil // its own rules, such as Signal's
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, _ := v.(map[string]any)
		for _, key := range slices.Sorted(maps.Keys(obj)) {
			f, ok := fieldNamed(t, key)
			if !ok {
				return unknownField(t, key)
			}
			if err := exactFields(obj[key], f.Type); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		elems, _ := v.([]any)
		for _, e := range elems {
			if err := exactFields(e, t.Elem()); err != nil {
				return err
			}
		}
	}
	return nil
}

// fieldNamed returns the field of struct t whose json name is exactly name.
func fieldNamed(t reflect.Type, name string) (reflect.StructField, bool) {
	for _, f := range jsonFields(t) {
		if jsonName(f) == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// jsonFields are the fields of struct t as encoding/json sees them: an
// embedded struct without a json name (StartRequest's ImageStart) gives
// its own fields, which sit beside the others in the JSON object.
func jsonFields(t reflect.Type) []reflect.StructField {
	var out []reflect.StructField
	for f := range t.Fields() {
		if f.Anonymous && f.Type.Kind() == reflect.Struct && f.Tag.Get("json") == "" {
			out = append(out, jsonFields(f.Type)...)
			continue
		}
		if f.IsExported() {
			out = append(out, f)
		}
	}
	return out
}

// unknownField is the error for key, which names no field of struct t
// exactly; it suggests the field it names in another case.
func unknownField(t reflect.Type, key string) error {
	for _, f := range jsonFields(t) {
		if strings.EqualFold(jsonName(f), key) {
			return fmt.Errorf("unknown field %q (did you mean %q?)", key, jsonName(f))
		}
	}
	return fmt.Errorf("unknown field %q", key)
}

// jsonName is the key encoding/json uses for f.
func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" {
		return f.Name
	}
	return name
}

// describeJSONError turns encoding/json's errors into messages for a
// client: which field, what was wrong.
func describeJSONError(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("malformed JSON at byte %d: %v", syntax.Offset, syntax)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("field %q: cannot use a JSON %s as %s", typ.Field, typ.Value, typ.Type)
		}
		return fmt.Sprintf("body: cannot use a JSON %s as %s", typ.Value, typ.Type)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON: unexpected end of body"
	case errors.As(err, new(*api.ValueError)):
		return err.Error()
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return "malformed JSON: " + strings.TrimPrefix(err.Error(), "json: ")
}
