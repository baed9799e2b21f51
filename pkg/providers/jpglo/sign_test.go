package jpglo_test

import (
	"encoding/json"
	"testing"

	"github.com/payhook/payhook/pkg/providers/internal/vectorstest"
	"github.com/payhook/payhook/pkg/providers/jpglo"
)

type vector struct {
	Name   string         `json:"name"`
	Key    string         `json:"key"`
	Params map[string]any `json:"params"`
	Sign   string         `json:"sign"`
}

// TestSignVectors reproduces every jpglo vector: the package's copy always,
// and the shared file beside the work tree when it is there (it must then
// hold the same vectors, so the copy cannot drift).
func TestSignVectors(t *testing.T) {
	local := vectorstest.Local[vector](t, "jpglo")
	if len(local) != 8 {
		t.Errorf("testdata has %d jpglo vectors, want the 8 consistent seed examples", len(local))
	}
	sets := map[string][]vector{"testdata": local}
	if shared, ok := vectorstest.Shared[vector](t, "jpglo"); ok { // errors when it differs from local
		sets["shared"] = shared
	}
	for src, vs := range sets {
		for _, v := range vs {
			t.Run(src+"/"+v.Name, func(t *testing.T) {
				if got := jpglo.Sign(v.Params, v.Key); got != v.Sign {
					t.Errorf("Sign = %s, want %s\nsigning string: %s", got, v.Sign, jpglo.SigningString(v.Params, "KEY"))
				}
				// A body's own sign field never feeds the signature.
				with := map[string]any{"sign": "X"}
				for k, p := range v.Params {
					with[k] = p
				}
				if got := jpglo.Sign(with, v.Key); got != v.Sign {
					t.Errorf("Sign with a sign field = %s, want %s", got, v.Sign)
				}
			})
		}
	}
}

func TestSigningString(t *testing.T) {
	tests := []struct {
		name   string
		params map[string]any
		want   string
	}{
		{"seed signing example", map[string]any{
			"mch_id": 1, "mch_order_no": "111123456789", "apply_amount": 10000000, "pay_type": "bankcard",
			"order_type": "normal", "remark": "", "user_id": "123456", "device_type": "ios", "device_ip": "1.1.1.1",
			"real_name": "Thomas", "bank_code": "VCB", "timestamp": 1630000000,
		}, "apply_amount=10000000&bank_code=VCB&device_ip=1.1.1.1&device_type=ios&mch_id=1&mch_order_no=111123456789&order_type=normal&pay_type=bankcard&real_name=Thomas&remark=&timestamp=1630000000&user_id=123456&key=K"},
		{"nil skipped, empty kept", map[string]any{"b": nil, "a": "", "c": json.Number("7")}, "a=&c=7&key=K"},
		{"ASCII order puts upper case first", map[string]any{"b": 1, "B": 2, "_": 3}, "B=2&_=3&b=1&key=K"},
		{"typed nil slice skipped", map[string]any{"r": []string(nil), "a": "x"}, "a=x&key=K"},
		{"list and bools", map[string]any{"r": []string{"u1", "u2"}, "t": true, "f": false}, "f=False&r=['u1', 'u2']&t=True&key=K"},
		{"no fields", map[string]any{}, "key=K"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := jpglo.SigningString(tt.params, "K"); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

// TestPyStr pins the rendering to what CPython 3 prints (each want was
// produced by python3 -c 'print(str(v))').
func TestPyStr(t *testing.T) {
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"string as is", "I've paid!", "I've paid!"},
		{"unicode string as is", "已完成充值", "已完成充值"},
		{"empty string", "", ""},
		{"int", 1657004710, "1657004710"},
		{"negative int64", int64(-2), "-2"},
		{"uint", uint16(7), "7"},
		{"json integer", json.Number("10000000"), "10000000"},
		{"json integer beyond int64", json.Number("123456789012345678901234567890"), "123456789012345678901234567890"},
		{"json minus zero", json.Number("-0"), "0"},
		{"json float", json.Number("1.5"), "1.5"},
		{"json float integral", json.Number("100.0"), "100.0"},
		{"json exponent", json.Number("1E5"), "100000.0"},
		{"json big exponent", json.Number("1e16"), "1e+16"},
		{"json small", json.Number("0.00001"), "1e-05"},
		{"json overflow", json.Number("1e400"), "inf"},
		{"float64 rounding", 123456789.123456789, "123456789.12345679"},
		{"true", true, "True"},
		{"false", false, "False"},
		{"nil", nil, "None"},
		{"list of strings", []string{"a", "b"}, "['a', 'b']"},
		{"seed receipt", []any{"https://imgur.com/gallery/VWjRf"}, "['https://imgur.com/gallery/VWjRf']"},
		{"list with quote", []string{"it's"}, `["it's"]`},
		{"list with both quotes", []string{`say "hi" it's`}, `['say "hi" it\'s']`},
		{"list with backslash", []string{`back\slash`}, `['back\\slash']`},
		{"list with tab and newline", []string{"tab\tnl\n"}, `['tab\tnl\n']`},
		{"list with controls", []string{"\x01\x7f"}, `['\x01\x7f']`},
		{"list with unicode", []string{"é中文"}, "['é中文']"},
		{"list with unprintable", []string{"\u00a0\u200b\u2028"}, `['\xa0\u200b\u2028']`},
		{"list with astral", []string{"\U0001F600", "\U000E0001"}, `['😀', '\U000e0001']`},
		{"mixed list", []any{json.Number("1"), -2, true, false, nil, 1.5, 1e16, 1e15, 0.0001, 0.00001, 100.0},
			"[1, -2, True, False, None, 1.5, 1e+16, 1000000000000000.0, 0.0001, 1e-05, 100.0]"},
		{"nested list", []any{[]any{1, "x"}, []any{}}, "[[1, 'x'], []]"},
		{"dict keys sorted", map[string]any{"b": 1, "a": "x"}, "{'a': 'x', 'b': 1}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := jpglo.PyStr(tt.v); got != tt.want {
				t.Errorf("PyStr(%#v) = %s, want %s", tt.v, got, tt.want)
			}
		})
	}
}
