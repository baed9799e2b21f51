package strictjson_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/payhook/payhook/pkg/providers/internal/strictjson"
)

func TestDecodeObject(t *testing.T) {
	deep := func(n int) string { return `{"a":` + strings.Repeat("[", n) + strings.Repeat("]", n) + `}` }
	tests := []struct {
		name    string
		in      string
		want    map[string]any
		wantErr error
		text    string // exact error text when set
	}{
		{name: "flat", in: `{"a":"x","n":20000.00,"b":true,"z":null}`, want: map[string]any{"a": "x", "n": json.Number("20000.00"), "b": true, "z": nil}},
		{name: "nested", in: `{"l":[],"o":{"k":[1]}}`, want: map[string]any{"l": []any{}, "o": map[string]any{"k": []any{json.Number("1")}}}},
		{name: "duplicate", in: `{"a":1,"a":1}`, wantErr: strictjson.ErrDuplicate, text: `duplicate key "a"`},
		{name: "nested duplicate", in: `{"o":{"k":1,"k":2}}`, wantErr: strictjson.ErrDuplicate},
		{name: "long duplicate key clipped", in: `{"` + strings.Repeat("k", 40) + `":1,"` + strings.Repeat("k", 40) + `":2}`, wantErr: strictjson.ErrDuplicate, text: `duplicate key "` + strings.Repeat("k", 32) + `…"`},
		{name: "array", in: `[]`, wantErr: strictjson.ErrNotObject, text: "not a JSON object"},
		{name: "string", in: `"x"`, wantErr: strictjson.ErrNotObject},
		{name: "empty", in: ``, wantErr: strictjson.ErrSyntax},
		{name: "garbage", in: `{x}`, wantErr: strictjson.ErrSyntax},
		{name: "unclosed", in: `{"a":1`, wantErr: strictjson.ErrSyntax},
		{name: "trailing", in: `{} {}`, wantErr: strictjson.ErrTrailing, text: "invalid JSON: data after the object"},
		{name: "16 levels", in: deep(15), want: map[string]any{"a": nest(15)}},
		{name: "17 levels", in: deep(16), wantErr: strictjson.ErrTooDeep, text: "nested deeper than 16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := strictjson.DecodeObject([]byte(tt.in), 16)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err %v, want %v", err, tt.wantErr)
				}
				if tt.text != "" && err.Error() != tt.text {
					t.Errorf("error text %q, want %q", err, tt.text)
				}
				if tt.wantErr == strictjson.ErrTrailing && !errors.Is(err, strictjson.ErrSyntax) {
					t.Error("trailing data does not wrap ErrSyntax")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func nest(n int) any {
	v := []any{}
	for i := 1; i < n; i++ {
		v = []any{v}
	}
	return v
}

func TestNumbersAsText(t *testing.T) {
	in := map[string]any{"n": json.Number("2500.0000"), "l": []any{json.Number("1"), "s"}, "o": map[string]any{"m": json.Number("-0")}, "b": false, "z": nil}
	want := map[string]any{"n": "2500.0000", "l": []any{"1", "s"}, "o": map[string]any{"m": "-0"}, "b": false, "z": nil}
	if got := strictjson.NumbersAsText(in); !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v", got)
	}
	if in["n"] != json.Number("2500.0000") {
		t.Error("input modified")
	}
}

// FuzzDecodeObject: never a panic; an error always has exactly one class;
// what decodes re-encodes to JSON that decodes to the same value.
func FuzzDecodeObject(f *testing.F) {
	f.Add([]byte(`{"a":[1,{"b":"c"}],"d":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := strictjson.DecodeObject(b, 16)
		if err != nil {
			n := 0
			for _, c := range []error{strictjson.ErrSyntax, strictjson.ErrNotObject, strictjson.ErrDuplicate, strictjson.ErrTooDeep} {
				if errors.Is(err, c) {
					n++
				}
			}
			if n != 1 || m != nil {
				t.Fatalf("error %v in %d classes, map %v", err, n, m)
			}
			return
		}
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		again, err := strictjson.DecodeObject(out, 16)
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("round trip %s: %v", out, err)
		}
	})
}
